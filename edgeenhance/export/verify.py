"""Verification of an exported model in its real runtime against the PyTorch float model."""

from __future__ import annotations

import numpy as np

from edgeenhance.metrics import max_abs_error, psnr

# Minimum PSNR (dB) against the float model, per precision.
THRESHOLDS = {"fp32": 50.0, "fp16": 40.0, "int8": 35.0, "w8a8": 35.0}


def compare(pipeline, reference, pairs) -> dict:
    """Run ``pipeline`` and ``reference`` (callables on (H, W, 3) images) on (input, target) pairs."""
    vs_float, errs, vs_target, ref_vs_target = [], [], [], []
    for x, y in pairs:
        out, ref = pipeline(x), reference(x)
        vs_float.append(min(psnr(out, ref), 120.0))
        errs.append(max_abs_error(out, ref))
        if y is not None:
            vs_target.append(psnr(out, y))
            ref_vs_target.append(psnr(ref, y))
    res = {"psnr_vs_float": float(np.mean(vs_float)), "min_psnr_vs_float": float(np.min(vs_float)),
           "max_abs_error": float(np.max(errs)), "images": len(pairs)}
    if vs_target:
        res["psnr_vs_target"] = float(np.mean(vs_target))
        res["float_psnr_vs_target"] = float(np.mean(ref_vs_target))
    return res


def advice(target: str, precision: str, got: float, need: float) -> str:
    tips = "use more calibration images (--calib-images 64), calibrate on real photos (--calib DIR)"
    if precision == "int8":
        tips += ", or fine-tune for int8 first (`edgeenhance quantize --qat`)"
        from edgeenhance.export.targets import TARGETS

        if target in TARGETS and TARGETS[target].activation_bits:
            tips += "; --activations 16 (int16 activations, int8 weights) is the fallback for sensitive models"
    return (f"{target} {precision} verification failed: PSNR {got:.2f} dB against the float model, "
            f"{need - got:.2f} dB below the {need:.0f} dB threshold. Try: {tips}.")
