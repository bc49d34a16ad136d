"""TFLite converter (litert-torch), then int8/fp16 with ai-edge-quantizer; names stripped from the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from edgeenhance.console import quiet
from edgeenhance.errors import UserError
from edgeenhance.fileio import atomic_path


def source(exp, precision: str) -> Path:
    """Unstripped fp32 .tflite of the graph ``precision`` starts from (converted once per graph): its
    tensor names carry the module scopes that select float layers when quantizing."""
    key = ("tflite", exp.graph_key("tflite", precision))
    if key not in exp.sources:
        try:
            import litert_torch
        except ImportError:
            raise UserError("TFLite export needs litert-torch: pip install 'edgeenhance[export]'") from None
        path = exp.work_dir() / f"{key[1]}_{exp.filename('tflite', 'fp32')}"
        module, example = exp.graph_for("tflite", precision), exp.example()
        if exp.layout == "nhwc":
            module = litert_torch.to_channel_last_io(module, args=[0], outputs=[0]).eval()
            example = example.permute(0, 2, 3, 1).contiguous()
        with quiet():
            litert_torch.convert(module, (example,)).export(str(path))
        exp.sources[key] = path
    return exp.sources[key]


def convert(exp, out_dir: Path, precision: str) -> Path:
    from edgeenhance.export.strip import strip_names

    src = source(exp, precision)
    if precision == "fp32":
        fp32 = out_dir / exp.filename("tflite", "fp32")
        with atomic_path(fp32) as tmp:
            shutil.copyfile(src, tmp)
            strip_names(tmp)
        return fp32
    from edgeenhance.quantize.tflite import quantize_tflite

    calib = exp.calibration_batches()
    if exp.layout == "nhwc":
        calib = [np.ascontiguousarray(b.transpose(0, 2, 3, 1)) for b in calib]
    out = quantize_tflite(src, out_dir / exp.filename("tflite", precision), calib, precision, exp.io_dtype,
                          exp.activations, exp.float_modules("tflite", precision),
                          exp.weight_scales_for("tflite", precision), exp.float_output("tflite", precision))
    strip_names(out)
    return out
