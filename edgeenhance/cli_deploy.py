"""Handlers of export, quantize, bench, report and demo (heavy back-ends load inside)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgeenhance.errors import UserError

FMT = argparse.RawDescriptionHelpFormatter


def _export_options(p, parse_size, positive):
    p.add_argument("--target", choices=["tflite", "onnx", "coreml", "all"], default="tflite")
    p.add_argument("--int8", action="store_true", help="also write an int8 model (post-training, calibrated)")
    p.add_argument("--fp16", action="store_true", help="also write an fp16 model (TFLite, CoreML)")
    p.add_argument("--w8a8", action="store_true",
                   help="also write a CoreML model with int8 weights and int8 activations (ranges calibrated\n"
                        "in PyTorch; CoreML's --int8 is int8 weights with fp16 compute)")
    p.add_argument("--form", choices=["full", "grid"], default=None,
                   help="full: image in, image out. grid (bilateral): low-res image in, grid out; slicing runs\n"
                        "beside it. Default: the form the model deploys as (bilateral: grid; others: full)")
    p.add_argument("--size", type=parse_size, help="HxW input size of the full form (default 512x512); for the grid "
                                                  "form, the photo size used for verification")
    p.add_argument("--dynamic", action="store_true", help="ONNX: any height and width")
    p.add_argument("--calib", default="synthetic",
                   help="int8 calibration images: 'synthetic' (rendered, badly and well exposed) or a folder\n"
                        "of photos like those your app sees (default synthetic)")
    p.add_argument("--calib-images", type=positive, default=32, help="calibration images (default 32)")
    p.add_argument("--verify", default="synthetic",
                   help="verification images: 'synthetic' or a folder of your photos (the grid form is\n"
                        "verified at each photo's own resolution) (default synthetic)")
    p.add_argument("--verify-images", type=positive, default=4,
                   help="verification images (synthetic: N badly exposed + N/2 well exposed; default 4)")
    p.add_argument("--min-psnr", type=float, default=35.0, help="int8 threshold against float, dB (default 35)")
    p.add_argument("--io", choices=["float", "int8"], default="float", help="TFLite int8 model inputs/outputs")
    p.add_argument("--activations", type=int, choices=[8, 16], default=8,
                   help="TFLite activation bits (16: int16 activations with int8 weights)")
    p.add_argument("--onnx-quantizer", choices=["nncf", "ort"], default="nncf")
    p.add_argument("--all-int8", action="store_true",
                   help="every layer computes in int8, also those the model keeps in float for accuracy\n"
                        "(for NPUs/DSPs that run only integer graphs; faster on CPUs, less accurate)")
    p.add_argument("--float-weights", action="store_true",
                   help="quantize the float weights even where the zoo ships weights fine-tuned for int8\n"
                        "(student-small: its int8 files come from QAT weights, every layer int8, verified\n"
                        "against the float model; this flag gives plain post-training int8 instead)")
    p.add_argument("--weight-scales", choices=["channel", "tensor"],
                   help="TFLite/ONNX int8 weight scales: one per output channel (default; most accurate\n"
                        "after plain post-training int8) or one per weight tensor (smaller file). Weights\n"
                        "fine-tuned for int8 default to how they were tuned (student-small: tensor).\n"
                        "With quantize --qat, QAT simulates this choice")
    p.add_argument("--layout", choices=["nhwc", "nchw"], default="nhwc",
                   help="TFLite tensor layout (default nhwc: channel-last, as Android bitmaps, camera\n"
                        "buffers and TFLite image models use; nchw keeps PyTorch's order). ONNX and\n"
                        "CoreML files are NCHW. manifest.json records the layout of every file")
    p.add_argument("--threads", type=positive, default=2)
    p.add_argument("-o", "--out", type=Path, required=True)
    p.add_argument("--quiet", action="store_true")


def add_all(sub, positive, parse_size):
    e = sub.add_parser("export", formatter_class=FMT, help="export to TFLite/ONNX/CoreML, verified against float",
                       description="Export a model for phones. Every file is run in its real runtime right after\n"
                                   "export (onnxruntime, LiteRT; CoreML on macOS, elsewhere a labelled PyTorch replay)\n"
                                   "and compared with the PyTorch float model; a file below the threshold is removed\n"
                                   "and the command fails with advice. OUT/manifest.json describes every file.")
    e.add_argument("--model", default="bilateral", help="zoo name or checkpoint (default bilateral)")
    _export_options(e, parse_size, positive)
    e.set_defaults(func=cmd_export)
    q = sub.add_parser("quantize", formatter_class=FMT, help="quantization-aware fine-tuning, then export",
                       description="Fine-tune a model with int8 fake quantization so that post-training int8 keeps\n"
                                   "its accuracy (--qat), write the tuned checkpoint, then export it like `export`.")
    q.add_argument("--model", default="bilateral")
    q.add_argument("--qat", action="store_true", required=True, help="quantization-aware fine-tuning")
    q.add_argument("--steps", type=positive, default=300)
    q.add_argument("--lr", type=float, default=1e-4)
    q.add_argument("--images", type=positive, default=64, help="synthetic training photos")
    q.add_argument("--crop", type=positive, default=256, help="training crop size")
    _export_options(q, parse_size, positive)
    q.set_defaults(func=cmd_quantize, int8=True)
    b = sub.add_parser("bench", formatter_class=FMT, help="latency, memory and accuracy of model files",
                       description="Benchmark model files in their real runtimes (each in a fresh process), next to\n"
                                   "the PyTorch float reference of the model they were exported from.\n"
                                   "With --device adb[:SERIAL], run TFLite files on an Android phone.")
    b.add_argument("files", nargs="+", type=Path)
    b.add_argument("--size", type=parse_size, default=(1080, 1920), help="photo size HxW (default 1080x1920)")
    b.add_argument("--threads", default="2", help="threads, e.g. 2 or 1,2,4 (default 2)")
    b.add_argument("--runs", type=positive, default=10)
    b.add_argument("--warmup", type=positive, default=2)
    b.add_argument("--no-reference", action="store_true", help="skip the PyTorch float reference and accuracy")
    b.add_argument("--device", default="host", help="host (default) or adb[:SERIAL]")
    b.add_argument("--delegate", default="cpu", help="adb: cpu,xnnpack,gpu,nnapi (comma list)")
    b.add_argument("--benchmark-binary", type=Path, help="adb: path to TFLite's benchmark_model for the phone")
    b.add_argument("--json", type=Path)
    b.add_argument("--csv", type=Path)
    b.add_argument("--quiet", action="store_true")
    b.set_defaults(func=cmd_bench)
    r = sub.add_parser("report", help="HTML report from bench results")
    r.add_argument("results", nargs="+", type=Path)
    r.add_argument("-o", "--out", type=Path, required=True)
    r.set_defaults(func=cmd_report)
    g = sub.add_parser("gpu-report", help="which TFLite ops the GPU delegate would run or leave to the CPU")
    g.add_argument("file", type=Path)
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=cmd_gpu_report)
    d = sub.add_parser("demo", help="the main job: export every target with int8, verify, bench, report",
                       description="On the shipped weights and synthetic images: export the bilateral model (grid form)\n"
                                   "and the over-exposure student to TFLite, ONNX and CoreML with int8, verify each,\n"
                                   "benchmark at 1080p on 2 threads and write an HTML report.")
    d.add_argument("-o", "--out", type=Path, default=Path("demo_out"))
    d.add_argument("--size", type=parse_size, default=(1080, 1920))
    d.add_argument("--runs", type=positive, default=10)
    d.set_defaults(func=cmd_demo)
    from edgeenhance.runtime import cli_phone

    cli_phone.add(sub, positive)


def _exporter(a, model, int8_model="shipped"):
    from edgeenhance.export import Exporter

    return Exporter(model, form=a.form, size=a.size, dynamic=a.dynamic, calib=a.calib, calib_images=a.calib_images,
                    verify=a.verify,
                    verify_images=a.verify_images, min_psnr=a.min_psnr, threads=a.threads, io_dtype=a.io,
                    activations=a.activations, onnx_quantizer=a.onnx_quantizer, all_int8=a.all_int8,
                    layout=a.layout, progress=not a.quiet, weight_scales=a.weight_scales,
                    int8_model=None if getattr(a, "float_weights", False) and int8_model == "shipped" else int8_model)


def _precisions(a):
    return ["fp32"] + (["fp16"] if a.fp16 else []) + (["int8"] if a.int8 else []) \
        + (["w8a8"] if getattr(a, "w8a8", False) else [])


def _run_export(a, model, int8_model="shipped"):
    from edgeenhance.export import TARGETS

    targets = list(TARGETS) if a.target == "all" else [a.target]
    manifest = _exporter(a, model, int8_model).export(targets, _precisions(a), a.out)
    print(f"wrote {len(manifest['files'])} verified file(s) and {a.out / 'manifest.json'}")
    return manifest


def cmd_export(a):
    _run_export(a, a.model)


def cmd_quantize(a):
    import re

    from edgeenhance.export.calib import calibration_images
    from edgeenhance.models.registry import CLASSICAL, ZOO, load_model, mark_int8_tuned, save_checkpoint
    from edgeenhance.quantize.qat import per_tensor_start, qat_finetune

    if not 0 < a.lr < float("inf"):  # also refuses nan
        raise UserError(f"--lr must be a positive number, got {a.lr}")
    model = load_model(a.model)
    if getattr(model, "family", None) in CLASSICAL:
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
    _run_export(a, a.model, int8_model=tuned)  # fp32 files from the float model, int8 from the tuned one


def _threads(text: str) -> list[int]:
    try:
        t = [int(x) for x in str(text).split(",") if x]
    except ValueError:
        raise UserError(f"--threads: '{text}' is not a number or comma list") from None
    if not t or min(t) < 1:
        raise UserError("--threads: give positive numbers, e.g. 2 or 1,2,4")
    return t


def cmd_bench(a):
    from edgeenhance.fileio import write_json
    from edgeenhance.runtime.bench import bench, format_table, write_csv

    threads = _threads(a.threads)
    if a.device != "host":
        from edgeenhance.runtime.cli_phone import bench_on_phone

        return bench_on_phone(a, threads)
    results = None
    for t in threads:
        r = bench(a.files, a.size, t, a.runs, a.warmup, not a.no_reference, not a.quiet)
        print(format_table(r))
        if results is None:
            results = r
        else:
            results["results"] += r["results"]
    if a.json:
        write_json(a.json, results)
    if a.csv:
        write_csv(a.csv, results)
    errors = [r for r in results["results"] if "error" in r]
    files = [r for r in results["results"] if r.get("format") != "torch" and not r.get("reference")]
    if files and all(r.get("user_error") for r in files):  # nothing measured, and why is the user's to fix
        raise UserError("\n".join(dict.fromkeys(r["error"] for r in files)))
    return 1 if errors else 0


def cmd_report(a):
    from edgeenhance.runtime.report import write_report

    print(f"report written to {write_report(a.results, a.out)}")


def cmd_gpu_report(a):
    from edgeenhance.export.gpu_report import gpu_delegate_report
    from edgeenhance.runtime.engines import open_engine

    if a.file.suffix != ".tflite":
        raise UserError(f"{a.file}: the GPU delegate report reads .tflite files")
    open_engine(a.file)  # clear errors for missing or corrupt files
    rep = gpu_delegate_report(a.file)
    if a.json:
        print(json.dumps(rep, indent=2))
        return
    print(f"{rep['file']}: {rep['gpu_ops']} of {rep['total_ops']} ops run on the GPU delegate")
    for op, n in rep["cpu_fallback_ops"].items():
        print(f"  falls back to CPU: {op} x{n}")
    print(f"({rep['basis']})")


def cmd_demo(a):
    from edgeenhance.demo import run_demo

    run_demo(a.out, a.size, a.runs)
