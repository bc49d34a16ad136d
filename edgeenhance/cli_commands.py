"""Handlers of the data, training and evaluation commands (imports of torch stay inside)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgeenhance.errors import UserError

FMT = argparse.RawDescriptionHelpFormatter


def _progress(args) -> bool:
    return not getattr(args, "quiet", False)


def add_data(sub, positive, parse_size):
    p = sub.add_parser("data", help="make synthetic datasets", description="Make datasets you can inspect.")
    s = p.add_subparsers(dest="data_command", metavar="ACTION")
    q = s.add_parser("synth", formatter_class=FMT, help="render a paired or unpaired exposure dataset",
                     description="Render procedural scenes through a camera model and write them as a dataset.\n"
                                 "  paired:   DIR/input/*.png (badly exposed) + DIR/target/*.png (well exposed)\n"
                                 "  unpaired: DIR/trainA/*.png (over-exposed) + DIR/trainB/*.png (well exposed),\n"
                                 "            from disjoint scenes (for CycleGAN)")
    q.add_argument("--kind", choices=["paired", "unpaired"], required=True)
    q.add_argument("--n", type=positive, default=100, help="images (per domain for unpaired; default 100)")
    q.add_argument("--exposure", choices=["under", "over"], default="under", help="paired inputs: under- (low light) or over-exposed")
    q.add_argument("--size", type=parse_size, default=(256, 256), help="HxW (default 256)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--workers", type=positive, default=None, help="processes (default: all cores)")
    q.add_argument("-o", "--out", required=True, type=Path)
    q.add_argument("--quiet", action="store_true")
    q.set_defaults(func=cmd_data_synth)
    r = s.add_parser("reexpose", help="MSEC-style exposure errors from a folder of good photos",
                     description="Linearize each photo, scale by 2^EV for EV in {-1.5,-1,0,+1,+1.5}, re-apply a "
                                 "response curve, clip and add noise. Writes INPUT_IMAGES/ and GT_IMAGES/ (MSEC layout).")
    r.add_argument("src", type=Path)
    r.add_argument("-o", "--out", required=True, type=Path)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_data_reexpose)
    p.set_defaults(func=lambda a: p.print_help())


def cmd_data_synth(a):
    from edgeenhance.data.synth import write_dataset

    out = write_dataset(a.out, a.kind, a.n, a.exposure, a.size, a.seed, a.workers, _progress(a))
    print(f"wrote {a.kind} dataset to {out}")


def cmd_data_reexpose(a):
    from edgeenhance.data.synth import exposure_errors_from_folder

    out = exposure_errors_from_folder(a.src, a.out, a.seed, _progress(a))
    print(f"wrote MSEC-style dataset to {out}")


def _common_train(q, positive):
    q.add_argument("--resume", action="store_true", help="continue from OUT/last.safetensors")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--device", default="auto", help="cpu, cuda or auto (default: cuda when present)")
    q.add_argument("--skip-bad", action="store_true", help="warn about and skip unreadable or unmatched files")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.add_argument("-o", "--out", required=True, type=Path, help="run folder (checkpoints, logs)")


def add_train(sub, positive):
    p = sub.add_parser("train", help="train an enhancer", description="Train an enhancer.")
    s = p.add_subparsers(dest="train_command", metavar="MODEL")
    b = s.add_parser("bilateral", formatter_class=FMT, help="bilateral-grid illumination enhancer",
                     description="Train the bilateral-grid enhancer (DeepUPE losses; --zero-reference needs no targets).\n"
                                 "Writes OUT/best.safetensors (best validation PSNR), OUT/final.safetensors and\n"
                                 "OUT/last.safetensors (training state for --resume).")
    b.add_argument("--data", default="synthetic", help="'synthetic' (rendered pairs) or a dataset folder")
    b.add_argument("--layout", choices=["lol", "fivek", "msec", "paired"], help="dataset layout (default: detected)")
    b.add_argument("--exposure", choices=["under", "over"], default="under", help="synthetic inputs / MSEC subset")
    b.add_argument("--zero-reference", action="store_true", help="exposure/colour/spatial/smoothness losses, no targets")
    b.add_argument("--steps", type=positive, default=3000)
    b.add_argument("--batch", type=positive, default=8)
    b.add_argument("--crop", type=positive, default=256)
    b.add_argument("--lr", type=float, default=1e-3)
    b.add_argument("--n-images", type=positive, default=512, help="synthetic training pairs (default 512)")
    b.add_argument("--val-images", type=positive, default=16)
    b.add_argument("--val-every", type=positive, default=250)
    _common_train(b, positive)
    b.set_defaults(func=cmd_train_bilateral)
    c = s.add_parser("cyclegan", formatter_class=FMT, help="CycleGAN teacher: over-exposed <-> well-exposed",
                     description="Train a CycleGAN on unpaired over-exposed and well-exposed photos.\n"
                                 "G maps over -> normal (the teacher), F maps normal -> over.\n"
                                 "Per epoch: OUT/log.jsonl, OUT/samples_epochNNN.png (input, G(x), F(G(x))),\n"
                                 "OUT/teacher.safetensors, OUT/discriminator_normal.safetensors, OUT/last.safetensors.")
    c.add_argument("--over", default=None, help="folder of over-exposed photos, or 'synthetic'")
    c.add_argument("--normal", default=None, help="folder of well-exposed photos, or 'synthetic'")
    c.add_argument("--data", default=None, help="a trainA/ (over) + trainB/ (normal) folder instead of --over/--normal")
    c.add_argument("--n-images", type=positive, default=1000, help="synthetic images per domain")
    c.add_argument("--epochs", type=positive, default=10, help="half constant LR, half linear decay to 0")
    c.add_argument("--batch", type=positive, default=4)
    c.add_argument("--crop", type=positive, default=256)
    c.add_argument("--lr", type=float, default=2e-4)
    c.add_argument("--lambda-cycle", type=float, default=10.0)
    c.add_argument("--lambda-identity", type=float, default=0.5)
    c.add_argument("--gan-mode", choices=["lsgan", "vanilla"], default="lsgan")
    c.add_argument("--pool-size", type=int, default=50)
    c.add_argument("--ngf", type=positive, default=64, help="generator width")
    c.add_argument("--n-blocks", type=positive, default=9, help="generator ResNet blocks")
    c.add_argument("--ndf", type=positive, default=64, help="discriminator width")
    c.add_argument("--no-amp", action="store_true", help="no bf16 mixed precision on GPU")
    _common_train(c, positive)
    c.set_defaults(func=cmd_train_cyclegan)
    p.set_defaults(func=lambda a: p.print_help())


def cmd_train_bilateral(a):
    from edgeenhance.train.bilateral import train_bilateral

    r = train_bilateral(a.out, a.data, a.layout, a.steps, a.batch, a.crop, a.lr, a.n_images, a.val_images, a.exposure,
                        a.zero_reference, a.resume, a.seed, a.val_every, a.device, progress=_progress(a),
                        skip_bad=a.skip_bad)
    b = r["best"]
    print(f"best validation PSNR {b['psnr']:.2f} dB, SSIM {b.get('ssim', 0):.4f} -> {a.out / 'best.safetensors'}")


def cmd_train_cyclegan(a):
    from edgeenhance.train.cyclegan import train_cyclegan
    from edgeenhance.train.data import trainab, unpaired_data

    if a.data:
        over, normal = trainab(a.data, a.skip_bad)
    elif a.over and a.normal:
        over, normal = unpaired_data(a.over, a.normal, a.n_images, a.crop, a.seed, a.skip_bad, _progress(a))
    else:
        raise UserError("say where the images are: --over DIR --normal DIR, --data DIR (trainA/trainB), "
                        "or --over synthetic --normal synthetic")
    r = train_cyclegan(a.out, over, normal, a.epochs, a.batch, a.crop, a.lr, a.lambda_cycle, a.lambda_identity,
                       a.gan_mode, a.pool_size, a.ngf, a.n_blocks, a.ndf, a.resume, a.seed, a.device,
                       False if a.no_amp else None, _progress(a))
    print(f"teacher written to {Path(r['out_dir']) / 'teacher.safetensors'}")


def add_distill(sub, positive):
    d = sub.add_parser("distill", formatter_class=FMT, help="distil the CycleGAN teacher into a phone-sized student",
                       description="Train a small student generator to reproduce the teacher (over -> normal):\n"
                                   "pixel L1 + matching of the teacher's bottleneck features, optionally an\n"
                                   "adversarial term with the teacher's discriminator (--adv W --discriminator CKPT).")
    d.add_argument("--teacher", required=True, help="teacher.safetensors from `train cyclegan`")
    d.add_argument("--student", default="small", choices=["tiny", "small"])
    d.add_argument("--data", default="synthetic", help="'synthetic' or a folder of over-exposed photos")
    d.add_argument("--n-images", type=positive, default=1000)
    d.add_argument("--steps", type=positive, default=3000)
    d.add_argument("--batch", type=positive, default=8)
    d.add_argument("--crop", type=positive, default=256)
    d.add_argument("--lr", type=float, default=2e-3)
    d.add_argument("--feat", type=float, default=1.0, help="weight of feature matching")
    d.add_argument("--adv", type=float, default=0.0, help="weight of the adversarial term (0: off)")
    d.add_argument("--discriminator", default=None)
    d.add_argument("--val-images", type=positive, default=16)
    d.add_argument("--val-every", type=positive, default=250)
    d.add_argument("--cache-teacher", action="store_true",
                   help="run the teacher once per image up front, then train on pixel L1 only (fast on CPU)")
    d.add_argument("--init", default=None, help="start from this student checkpoint (fine-tune)")
    _common_train(d, positive)
    d.set_defaults(func=cmd_distill)


def cmd_distill(a):
    from edgeenhance.train.data import heldout_over_pairs, unpaired_data
    from edgeenhance.train.distill import distill

    if a.data == "synthetic":
        over, _ = unpaired_data("synthetic", "synthetic", a.n_images, a.crop, a.seed, progress=_progress(a))
    else:
        over, _ = unpaired_data(a.data, a.data, a.n_images, a.crop, a.seed, a.skip_bad, _progress(a))
    val = [x for x, _ in heldout_over_pairs(a.val_images, a.crop)]
    r = distill(a.out, a.teacher, over, val, a.student, a.steps, a.batch, a.crop, a.lr, a.feat, a.adv, a.discriminator,
                a.resume, a.seed, a.device, a.val_every, _progress(a), cache_teacher=a.cache_teacher, init=a.init)
    print(f"best PSNR(student, teacher) on held-out images {r['best_psnr_vs_teacher']:.2f} dB -> {a.out / 'best.safetensors'}")


def add_enhance(sub):
    e = sub.add_parser("enhance", help="enhance photos (files or folders)",
                       description="Enhance photos. Output keeps each input's size, name, bit depth and alpha.")
    e.add_argument("inputs", nargs="+", type=Path, help="image files or folders")
    e.add_argument("-o", "--out", required=True, type=Path, help="output folder")
    e.add_argument("--model", default="bilateral", help="bilateral, student-small, lime, tonecomp, or a checkpoint path")
    e.add_argument("--device", default="cpu")
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(func=cmd_enhance)


def cmd_enhance(a):
    from tqdm import tqdm

    from edgeenhance.data.imageio import is_image_file, list_images, read_image, write_image
    from edgeenhance.evaluate import fast_enhance
    from edgeenhance.models.registry import load_model

    files = []
    for p in a.inputs:
        if p.is_dir():
            found = list_images(p)
            if not found:
                raise UserError(f"{p}: folder holds no images")
            files += found
        elif p.exists():
            files.append(p)
        else:
            raise UserError(f"{p}: no such file or folder")
    if a.out.exists() and not a.out.is_dir():
        raise UserError(f"{a.out}: exists and is not a folder")
    model = load_model(a.model, a.device)
    failed = []
    for f in tqdm(files, desc=f"enhance ({a.model})", unit="img", disable=a.quiet):
        try:
            img, info = read_image(f, with_info=True)
            suffix = f.suffix if is_image_file(f) else ".png"
            write_image(a.out / (f.stem + suffix), fast_enhance(model, img, a.device), info)
        except UserError as e:
            failed.append(str(e))
    for msg in failed:
        print(f"edgeenhance: error: {msg}", file=sys.stderr)
    print(f"enhanced {len(files) - len(failed)} of {len(files)} image(s) into {a.out}")
    return 1 if failed else 0


def add_eval(sub, positive):
    e = sub.add_parser("eval", formatter_class=FMT, help="PSNR/SSIM/no-reference score and time per image",
                       description="Evaluate one or more models on paired data, side by side with the input.\n"
                                   "--data: a dataset folder, or synthetic-under / synthetic-over (held-out rendered\n"
                                   "pairs whose seeds never overlap training). No-reference score: mean\n"
                                   "well-exposedness (Mertens et al.), higher is better exposed.")
    e.add_argument("--model", action="append", required=True, help="repeat for several models")
    e.add_argument("--data", required=True)
    e.add_argument("--layout", choices=["lol", "fivek", "msec", "paired"], help="default: detected")
    e.add_argument("--exposure", choices=["under", "over"], help="MSEC subset (default: all exposures)")
    e.add_argument("--n", type=positive, default=50, help="synthetic pairs (default 50)")
    e.add_argument("--size", type=positive, default=256, help="synthetic image size")
    e.add_argument("--json", type=Path, help="also write the results here")
    e.add_argument("--device", default="cpu")
    e.add_argument("--skip-bad", action="store_true")
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(func=cmd_eval)


def cmd_eval(a):
    from edgeenhance.data.datasets import load_pairs
    from edgeenhance.data.layouts import MSEC_OVER, MSEC_UNDER, detect_layout, find_pairs
    from edgeenhance.data.synth import HELDOUT_SEED, render_pairs
    from edgeenhance.evaluate import evaluate, evaluate_input
    from edgeenhance.fileio import write_json
    from edgeenhance.models.registry import load_model

    models = [load_model(m, a.device) for m in a.model]  # fail fast on a bad name before loading data
    if a.data in ("synthetic-under", "synthetic-over"):
        exp = a.data.split("-")[1]
        pairs = render_pairs(range(HELDOUT_SEED, HELDOUT_SEED + a.n), exp, (a.size, a.size), progress=not a.quiet)
    else:
        layout = a.layout or detect_layout(a.data)
        exposures = {"under": MSEC_UNDER, "over": MSEC_OVER}.get(a.exposure) if layout == "msec" else None
        pairs = load_pairs(find_pairs(a.data, layout, strict=not a.skip_bad, exposures=exposures), a.skip_bad)
    rows = {"input": evaluate_input(pairs)}
    for name, m in zip(a.model, models):
        rows[name] = evaluate(m, pairs, a.device, progress=not a.quiet, desc=f"eval {name}")
    print(f"{'model':<28}{'PSNR dB':>9}{'SSIM':>8}{'exposed':>9}{'ms/img':>9}   ({len(pairs)} images, {a.data})")
    for name, r in rows.items():
        print(f"{name:<28}{r['psnr']:>9.2f}{r['ssim']:>8.4f}{r['exposedness']:>9.3f}{r['sec_per_image'] * 1000:>9.1f}")
    if a.json:
        write_json(a.json, {"data": a.data, "n": len(pairs), "results": rows})


def add_info(sub, parse_size):
    i = sub.add_parser("info", help="parameters, MACs and I/O spec of a model (no MODEL: list the zoo)")
    i.add_argument("model", nargs="?", help="zoo name or checkpoint path")
    i.add_argument("--size", type=parse_size, default=(1080, 1920), help="HxW for the MAC count (default 1080x1920)")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=cmd_info)


def model_info(spec: str, size=(1080, 1920)) -> dict:
    from edgeenhance.models.macs import count_macs, count_params
    from edgeenhance.models.registry import ZOO, deploy_forms, load_int8_model, load_model

    m = load_model(spec)
    info = {"model": spec, "family": m.family, "config": m.config}
    if m.family in ("lime", "tonecomp"):
        info.update(params=0, note="classical algorithm (no network)")
        return info
    h, w = size
    info["params"] = count_params(m)
    info["macs"] = {f"{h}x{w}": count_macs(m, (1, 3, h + (-h) % m.pad_multiple, w + (-w) % m.pad_multiple)),
                    "256x256": count_macs(m, (1, 3, 256, 256))}
    info["forms"] = {}
    for name, f in deploy_forms(m).items():
        fixed = f.fixed_size
        info["forms"][name] = {
            "input": {"shape": [1, 3, *(fixed or ["H", "W"])], "layout": "NCHW", "dtype": "float32", "range": [0, 1]},
            "output": ({"shape": [1, 12 * m.bins, m.config["grid_size"], m.config["grid_size"]], "layout": "NCHW",
                        "meaning": "bilateral grid, channel d*12 + c*4 + j"} if f.output == "grid" else
                       {"shape": [1, 3, *(fixed or ["H", "W"])], "layout": "NCHW", "dtype": "float32", "range": [0, 1]}),
            "size_multiple": m.pad_multiple,
            # the PyTorch model is NCHW; exported TFLite files default to channel-last
            "tflite_layout": "NHWC (export --layout nchw keeps NCHW); ONNX and CoreML files are NCHW",
        }
    if spec in ZOO:
        info["fixes"] = ZOO[spec].fixes
        tuned = load_int8_model(spec)
        if tuned is not None:  # how they were tuned, as the checkpoint records it (see mark_int8_tuned)
            floats = sorted({n for mod in tuned.modules() for n in getattr(mod, "int8_float_modules", ())})
            layers = f"float layers: {', '.join(floats)}" if floats else "every layer int8"
            scales = "one scale per weight tensor" if getattr(tuned, "int8_weight_scales", "channel") == "tensor" \
                else "one scale per output channel"
            info["int8_weights"] = (f"{ZOO[spec].int8_weights}: fine-tuned for int8 (QAT, {layers}, {scales}); "
                                    "TFLite/ONNX int8 and CoreML w8a8 exports start from them "
                                    "(--float-weights: from the float weights)")
    return info


def cmd_info(a):
    from edgeenhance.models.macs import human
    from edgeenhance.models.registry import ZOO

    if not a.model:
        for name, e in ZOO.items():
            print(f"{name:<16}{e.fixes}")
        return
    info = model_info(a.model, a.size)
    if a.json:
        print(json.dumps(info, indent=2))
        return
    print(f"{a.model}: {info['family']} {info['config']}")
    print(f"  parameters: {info['params']:,}")
    for k, v in info.get("macs", {}).items():
        print(f"  MACs at {k}: {human(v)}")
    for name, f in info.get("forms", {}).items():
        print(f"  form {name}: in {f['input']['shape']} -> out {f['output']['shape']} (NCHW; TFLite exports: NHWC)")
    if "int8_weights" in info:
        print(f"  int8 weights: {info['int8_weights']}")
