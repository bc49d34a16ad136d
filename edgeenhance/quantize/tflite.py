"""TFLite post-training quantization with ai-edge-quantizer (static int8, or fp16 weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeenhance.console import quiet


def _recipe(precision: str, io_dtype: str, activation_bits: int):
    from ai_edge_quantizer import qtyping, recipe_manager
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    rp = recipe_manager.RecipeManager()
    if precision == "fp16":
        rp.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16,
                                  algorithm_key=AlgorithmName.FLOAT_CASTING)
        return rp.get_quantization_recipe()
    rp.add_static_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                         activation_num_bits=activation_bits, weight_num_bits=8,
                         algorithm_key=AlgorithmName.MIN_MAX_UNIFORM_QUANT)
    if io_dtype == "float":  # keep float32 model inputs/outputs: QUANTIZE/DEQUANTIZE live inside
        for op in (qtyping.TFLOperationName.INPUT, qtyping.TFLOperationName.OUTPUT):
            rp.add_quantization_config(regex=".*", operation_name=op, op_config=qtyping.OpQuantizationConfig(),
                                       algorithm_key=AlgorithmName.NO_QUANTIZE)
    return rp.get_quantization_recipe()


def quantize_tflite(fp32_path: Path, out_path: Path, calib: list[np.ndarray], precision: str = "int8",
                    io_dtype: str = "float", activation_bits: int = 8) -> Path:
    """fp32 .tflite -> int8 (static, calibrated on ``calib`` NCHW batches) or fp16-weight .tflite.

    ``io_dtype``: 'float' (float32 I/O) or 'int8' (int8 I/O, as the quantizer emits it).
    """
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer

    from edgeenhance.fileio import atomic_path

    q = quantizer.Quantizer(str(fp32_path))
    q.load_quantization_recipe(_recipe(precision, io_dtype, activation_bits))
    with quiet():
        if precision == "fp16":
            result = q.quantize()
        else:
            sig = Interpreter(str(fp32_path)).get_signature_list()
            key = next(iter(sig))
            name = sig[key]["inputs"][0]
            result = q.quantize(q.calibrate({key: [{name: np.ascontiguousarray(c, np.float32)} for c in calib]}))
    with atomic_path(out_path) as tmp:
        result.export_model(str(tmp), overwrite=True)
    return out_path
