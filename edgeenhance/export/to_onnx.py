"""ONNX converter (torch.onnx, opset 17), then int8 QDQ with NNCF or onnxruntime."""

from __future__ import annotations

from pathlib import Path

import torch

from edgeenhance.console import quiet
from edgeenhance.fileio import atomic_path


def fp32_file(exp, out_dir: Path, precision: str) -> Path:
    """fp32 ONNX of the graph ``precision`` starts from (exported once per graph): the float graph's
    is the fp32 file in ``out_dir``; the int8-tuned graph's goes to the work folder."""
    key = ("onnx", exp.graph_key("onnx", precision))
    if key not in exp.sources:
        name = exp.filename("onnx", "fp32")
        path = out_dir / name if key[1] == "float" else exp.work_dir() / f"int8_{name}"
        dyn = {"image": {2: "height", 3: "width"}, "output": {2: "height", 3: "width"}} if exp.dynamic else None
        if exp.dynamic and exp.form.fixed_size:
            from edgeenhance.errors import UserError

            raise UserError(f"the {exp.form.name} form has a fixed input size; --dynamic applies to the full form")
        with quiet(), atomic_path(path) as tmp:
            torch.onnx.export(exp.graph_for("onnx", precision), (exp.example(),), str(tmp), input_names=["image"],
                              output_names=["output"], opset_version=17, dynamo=False, dynamic_axes=dyn)
        exp.sources[key] = path
    return exp.sources[key]


def convert(exp, out_dir: Path, precision: str) -> Path:
    src = fp32_file(exp, out_dir, precision)
    if precision == "fp32":
        return src
    from edgeenhance.quantize.onnx import quantize_onnx

    with quiet():
        return quantize_onnx(src, out_dir / exp.filename("onnx", precision), exp.calibration_batches(),
                             exp.onnx_quantizer, exp.float_modules("onnx", precision),
                             exp.weight_scales_for("onnx", precision),
                             # QAT simulated asymmetric (zero-point) activations, as TFLite rounds them
                             asymmetric_activations=exp.uses_int8_weights("onnx", precision),
                             float_output=exp.float_output("onnx", precision))
