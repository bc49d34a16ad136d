"""`edgeenhance quantize --qat`: quantization-aware fine-tuning, then export."""

from __future__ import annotations

from pathlib import Path

from edgeenhance.cli.args import FMT, positive
from edgeenhance.cli.export import export_options, run_export
from edgeenhance.errors import UserError


def add(sub):
    q = sub.add_parser("quantize", formatter_class=FMT, help="quantization-aware fine-tuning, then export",
                       description="Fine-tune a model with int8 fake quantization so that post-training int8 keeps\n"
                                   "its accuracy (--qat), write the tuned checkpoint, then export it like `export`.")
    q.add_argument("--model", default="bilateral")
    q.add_argument("--qat", action="store_true", required=True, help="quantization-aware fine-tuning")
    q.add_argument("--steps", type=positive, default=300)
    q.add_argument("--lr", type=float, default=1e-4)
    q.add_argument("--images", type=positive, default=64, help="synthetic training photos")
    q.add_argument("--crop", type=positive, default=256, help="training crop size")
    export_options(q)
    q.set_defaults(func=cmd_quantize, int8=True)


def cmd_quantize(a):
    import re

    from edgeenhance.export.calib import calibration_images
    from edgeenhance.models.registry import ZOO, is_classical, load_model, mark_int8_tuned, save_checkpoint
    from edgeenhance.quantize.qat import per_tensor_start, qat_finetune

    if not 0 < a.lr < float("inf"):  # also refuses nan
        raise UserError(f"--lr must be a positive number, got {a.lr}")
    model = load_model(a.model)
    if is_classical(model):
        raise UserError(f"'{a.model}' is a classical algorithm: nothing to quantize")
    imgs = calibration_images(model, "synthetic" if a.calib == "synthetic" else a.calib, a.images, (256, 256))
    scales = a.weight_scales or "channel"
    start = per_tensor_start(model, imgs) if scales == "tensor" else model
    tuned, hist = qat_finetune(start, imgs, a.steps, a.lr, crop=a.crop, progress=not a.quiet, all_int8=a.all_int8,
                               per_tensor=scales == "tensor", reference=model)
    # Named from what the user typed, never from checkpoint metadata (a name like ../../x would leave OUT).
    base = a.model if a.model in ZOO else Path(a.model).name.removesuffix(".safetensors")
    tuned.name = f"{re.sub(r'[^A-Za-z0-9._+-]', '_', base).lstrip('.') or 'model'}-qat"
    ckpt = a.out / f"{tuned.name}.safetensors"
    save_checkpoint(ckpt, tuned, name=tuned.name, meta={"qat_steps": a.steps, "from": a.model, "all_int8": a.all_int8,
                                                        "weight_granularity": scales})
    mark_int8_tuned(tuned, a.all_int8, scales)  # as load_model(ckpt) would
    print(f"QAT loss {sum(hist[:10]) / 10:.5f} -> {sum(hist[-10:]) / 10:.5f}; checkpoint {ckpt}")
    a.int8 = True
    run_export(a, a.model, int8_model=tuned)  # fp32 files from the float model, int8 from the tuned one
