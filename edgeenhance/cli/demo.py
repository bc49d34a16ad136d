"""`edgeenhance demo`: export every target with int8, verify, bench and report, on the shipped weights."""

from __future__ import annotations

from pathlib import Path

from edgeenhance.cli.args import parse_size, positive


def add(sub):
    d = sub.add_parser("demo", help="the main job: export every target with int8, verify, bench, report",
                       description="On the shipped weights and synthetic images: export the bilateral model (grid form)\n"
                                   "and the over-exposure student to TFLite, ONNX and CoreML with int8, verify each,\n"
                                   "benchmark at 1080p on 2 threads and write an HTML report.")
    d.add_argument("-o", "--out", type=Path, default=Path("demo_out"))
    d.add_argument("--size", type=parse_size, default=(1080, 1920))
    d.add_argument("--runs", type=positive, default=10)
    d.set_defaults(func=cmd_demo)


def cmd_demo(a):
    from edgeenhance.demo import run_demo

    run_demo(a.out, a.size, a.runs)
