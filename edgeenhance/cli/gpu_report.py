"""`edgeenhance gpu-report`: which TFLite ops the GPU delegate runs or leaves to the CPU."""

from __future__ import annotations

import json
from pathlib import Path

from edgeenhance.errors import UserError


def add(sub):
    g = sub.add_parser("gpu-report", help="which TFLite ops the GPU delegate would run or leave to the CPU")
    g.add_argument("file", type=Path)
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=cmd_gpu_report)


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
