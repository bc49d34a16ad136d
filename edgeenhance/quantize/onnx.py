"""ONNX int8 post-training quantization (QDQ): NNCF by default, onnxruntime's static quantizer as
the alternative."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgeenhance.fileio import atomic_path


def float_nodes(model, modules) -> list[str]:
    """Names of the graph nodes that belong to the named submodules (torch.onnx names nodes by
    module path, e.g. '/global_fc/global_fc.0/Conv' or '/gridnet/out/Conv')."""
    if not modules:
        return []
    pat = re.compile(r"(?:^|/)(?:" + "|".join(re.escape(m) for m in modules) + r")/")
    return [n.name for n in model.graph.node if pat.search(n.name)]


def import_nncf():
    """NNCF, with its usage telemetry off: imported as is, it sends analytics (DNS lookups and HTTPS to
    an analytics host) on every quantization. NNCF reads ``NNCF_CI`` once, at import, and then
    replaces its telemetry with a no-op stub; so it is set before the first import."""
    import os

    if not os.environ.get("NNCF_CI"):
        os.environ["NNCF_CI"] = "1"
    import nncf

    return nncf


def quantize_onnx(fp32_path: Path, out_path: Path, calib: list[np.ndarray], method: str = "nncf",
                  float_modules=(), weight_scales: str = "channel", asymmetric_activations: bool = False,
                  float_output: bool = False) -> Path:
    """fp32 .onnx -> int8 QDQ, calibrated on ``calib`` NCHW batches; ``float_modules`` stay float;
    ``weight_scales``: one int8 scale per output channel ('channel') or per weight tensor ('tensor');
    ``asymmetric_activations``: activations with a zero point, as TFLite and our QAT quantize them
    (NNCF's default preset makes them symmetric; onnxruntime's are asymmetric either way);
    ``float_output``: the nodes writing the graph's outputs stay float too (their input is then not
    rounded to an int8 range calibrated on other images)."""
    import onnx

    model = onnx.load(str(fp32_path))
    name = model.graph.input[0].name
    keep = float_nodes(model, float_modules)
    if float_output:
        outputs = {o.name for o in model.graph.output}
        keep += [n.name for n in model.graph.node if outputs & set(n.output) and n.name not in keep]
    if method == "nncf":
        import logging

        nncf = import_nncf()

        logging.getLogger("nncf").setLevel(logging.ERROR)
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, QuantizationParameters
        from nncf.quantization.range_estimator import RangeEstimatorParametersSet

        # activation ranges span every calibration image (NNCF's default averages per-image extremes, which
        # clips what only a few images reach; see quantize.tflite.calibrated_ranges)
        adv = AdvancedQuantizationParameters(
            weights_quantization_params=QuantizationParameters(per_channel=weight_scales == "channel"),
            activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX)
        q = nncf.quantize(model, nncf.Dataset(calib, lambda d: {name: np.ascontiguousarray(d, np.float32)}),
                          subset_size=len(calib), ignored_scope=nncf.IgnoredScope(names=keep) if keep else None,
                          preset=nncf.QuantizationPreset.MIXED if asymmetric_activations else None,
                          advanced_parameters=adv)
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
            quantize_static(str(fp32_path), str(tmp), Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=weight_scales == "channel",
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, nodes_to_exclude=keep)
        return out_path
    raise ValueError(f"unknown ONNX quantizer '{method}' (nncf or ort)")
