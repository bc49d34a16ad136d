"""`edgeenhance export`: verified phone models, and the export options `quantize` shares."""

from __future__ import annotations

from pathlib import Path

from edgeenhance.cli.args import FMT, parse_size, positive


def export_options(p):
    from edgeenhance.export.targets import TARGETS, help_table

    def offering(precision):
        return ", ".join(t.name for t in TARGETS.values() if precision in t.precisions)

    p.add_argument("--target", choices=[*TARGETS, "all"], default="tflite",
                   help="where the files run (default tflite; all: every target). Name, suffix, precisions,\n"
                        "runtime:\n" + help_table())
    p.add_argument("--int8", action="store_true", help="also write an int8 model (post-training, calibrated)")
    p.add_argument("--fp16", action="store_true", help=f"also write an fp16 model ({offering('fp16')})")
    p.add_argument("--w8a8", action="store_true",
                   help=f"also write a model with int8 weights and int8 activations ({offering('w8a8')}: ranges\n"
                        "calibrated in PyTorch; there --int8 is int8 weights with fp16 compute)")
    p.add_argument("--form", default=None, metavar="FORM",
                   help="full: image in, image out. grid (bilateral): low-res image in, grid out; slicing runs\n"
                        "beside it. Default: the form the model deploys as (bilateral: grid; others: full)")
    p.add_argument("--size", type=parse_size, help="HxW input size of the full form (default 512x512); for the grid "
                                                  "form, the photo size used for verification")
    p.add_argument("--dynamic", action="store_true",
                   help=f"any height and width ({', '.join(t.name for t in TARGETS.values() if t.dynamic)} only)")
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
    p.add_argument("--io", choices=["float", "int8"], default="float", help="TFLite int8 model inputs/outputs (default float)")
    p.add_argument("--activations", type=int, choices=[8, 16], default=8,
                   help="TFLite activation bits (16: int16 activations with int8 weights)")
    p.add_argument("--onnx-quantizer", choices=["nncf", "ort"], default="nncf",
                   help="ONNX int8: NNCF post-training quantization or onnxruntime's QDQ (default nncf)")
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
    p.add_argument("--threads", type=positive, default=2, help="threads for verification runs (default 2)")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder (files + manifest.json)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add(sub):
    e = sub.add_parser("export", formatter_class=FMT, help="export to TFLite/ONNX/CoreML, verified against float",
                       description="Export a model for phones. Every file is run in its real runtime right after\n"
                                   "export (onnxruntime, LiteRT; CoreML on macOS, elsewhere a labelled PyTorch replay)\n"
                                   "and compared with the PyTorch float model; a file below the threshold is removed\n"
                                   "and the command fails with advice. OUT/manifest.json describes every file.")
    e.add_argument("--model", default="bilateral", help="zoo name or checkpoint (default bilateral)")
    export_options(e)
    e.set_defaults(func=cmd_export)


def exporter(a, model, int8_model="shipped"):
    from edgeenhance.export import Exporter, ExportOptions

    # each option is the flag of the same name; --io is io_dtype and --quiet turns progress off
    return Exporter(model, ExportOptions.from_values({**vars(a), "io_dtype": a.io, "progress": not a.quiet}),
                    int8_model=int8_model)


def precisions(a):
    return ["fp32"] + (["fp16"] if a.fp16 else []) + (["int8"] if a.int8 else []) \
        + (["w8a8"] if getattr(a, "w8a8", False) else [])


def run_export(a, model, int8_model="shipped"):
    from edgeenhance.export import TARGETS

    targets = list(TARGETS) if a.target == "all" else [a.target]
    manifest = exporter(a, model, int8_model).export(targets, precisions(a), a.out)
    print(f"wrote {len(manifest['files'])} verified file(s) and {a.out / 'manifest.json'}")
    return manifest


def cmd_export(a):
    run_export(a, a.model)
