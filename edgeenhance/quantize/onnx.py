"""ONNX int8 post-training quantization (QDQ): NNCF by default, onnxruntime's static quantizer as
the alternative."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeenhance.fileio import atomic_path


def quantize_onnx(fp32_path: Path, out_path: Path, calib: list[np.ndarray], method: str = "nncf") -> Path:
    import onnx

    model = onnx.load(str(fp32_path))
    name = model.graph.input[0].name
    if method == "nncf":
        import logging

        import nncf

        logging.getLogger("nncf").setLevel(logging.ERROR)
        q = nncf.quantize(model, nncf.Dataset(calib, lambda d: {name: np.ascontiguousarray(d, np.float32)}),
                          subset_size=len(calib))
        with atomic_path(out_path) as tmp:
            onnx.save(q, str(tmp))
        return out_path
    if method == "ort":
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.it = iter(calib)

            def get_next(self):
                d = next(self.it, None)
                return None if d is None else {name: np.ascontiguousarray(d, np.float32)}

        with atomic_path(out_path) as tmp:
            quantize_static(str(fp32_path), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
        return out_path
    raise ValueError(f"unknown ONNX quantizer '{method}' (nncf or ort)")
