"""CoreML converter (coremltools mlprogram): fp32/fp16 compute, int8 weights, or w8a8 (int8 activations
calibrated in PyTorch)."""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from edgeenhance.console import quiet
from edgeenhance.errors import UserError
from edgeenhance.fileio import atomic_path


def convert(exp, out_dir: Path, precision: str) -> Path:
    try:
        import coremltools as ct
    except ImportError:
        raise UserError("CoreML export needs coremltools: pip install 'edgeenhance[export]'") from None
    out = out_dir / exp.filename("coreml", precision)
    module = exp.graph_for("coreml", precision)
    if hasattr(module, "static_size"):  # the CoreML torch frontend needs constant resize sizes
        module = copy.deepcopy(module)
        module.static_size = tuple(exp.input_size)
    if precision == "w8a8":
        from edgeenhance.quantize.coreml import w8a8_module

        with quiet():
            module = exp.w8a8 = w8a8_module(module, exp.calibration_batches(), exp.float_modules("coreml", precision))
    with quiet(), torch.no_grad():
        traced = torch.jit.trace(module, exp.example())
        ml = ct.convert(traced, inputs=[ct.TensorType(name="image", shape=tuple(exp.example().shape))],
                        outputs=[ct.TensorType(name="output")], convert_to="mlprogram",
                        compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16,
                        # int8 activations (quantize/dequantize ops) need the iOS 17 opset
                        minimum_deployment_target=ct.target.iOS17 if precision == "w8a8" else ct.target.iOS16)
        if precision in ("int8", "w8a8"):  # w8a8: the weights its quantizers left float
            from edgeenhance.quantize.coreml import int8_weights

            ml = int8_weights(ml)
        with atomic_path(out) as tmp:
            ml.save(str(tmp))
    return out


def verify_engine(exp, path: Path, precision: str):
    """Core ML runs only on macOS; elsewhere the file is verified by a labelled PyTorch replay of what
    it computes (fp16 rounding, int8 weights, w8a8 fake quantization)."""
    from edgeenhance.runtime.engines import CoreMLReplayEngine

    eng = CoreMLReplayEngine(exp.w8a8 if precision == "w8a8" else exp.graph_for("coreml", precision), precision,
                             name=path.name)
    eng.input_shape = (1, 3, *exp.input_size)
    eng.output_kind = exp.form.output
    return eng
