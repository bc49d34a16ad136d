"""Which ops of a TFLite model the GPU delegate would run, and which would fall back to the CPU.

Based on the op list documented for the TFLite/LiteRT GPU delegate (OpenCL/OpenGL backends); it is
a static check of the graph, not a run on a phone GPU.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

# Built-in ops the GPU delegate supports (float graphs; quantized graphs are dequantized on load).
GPU_SUPPORTED = {
    "ABS", "ADD", "AVERAGE_POOL_2D", "BATCH_MATMUL", "CAST", "CONCATENATION", "CONV_2D", "COS", "DEPTH_TO_SPACE",
    "DEPTHWISE_CONV_2D", "DEQUANTIZE", "DIV", "ELU", "EQUAL", "EXP", "FLOOR", "FLOOR_DIV", "FLOOR_MOD",
    "FULLY_CONNECTED", "GATHER", "GREATER", "GREATER_EQUAL", "HARD_SWISH", "LEAKY_RELU", "LESS", "LESS_EQUAL",
    "LOG", "LOGISTIC", "MAXIMUM", "MAX_POOL_2D", "MEAN", "MINIMUM", "MIRROR_PAD", "MUL", "NEG", "NOT_EQUAL", "PACK",
    "PAD", "PADV2", "POW", "PRELU", "QUANTIZE", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "RELU", "RELU6",
    "RELU_N1_TO_1", "RELU_0_TO_1", "RESHAPE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SELECT_V2",
    "SIN", "SLICE", "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT", "SPLIT_V", "SQRT", "SQUARE", "SQUARED_DIFFERENCE",
    "STRIDED_SLICE", "SUB", "SUM", "TANH", "TILE", "TRANSPOSE", "TRANSPOSE_CONV",
}


def gpu_delegate_report(path: Path) -> dict:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    ops = Counter(o["op_name"] for o in it._get_ops_details())
    fallback = {k: v for k, v in ops.items() if k not in GPU_SUPPORTED}
    total = sum(ops.values())
    return {"file": Path(path).name, "ops": dict(ops), "total_ops": total,
            "gpu_ops": total - sum(fallback.values()), "cpu_fallback_ops": fallback,
            "fully_delegated": not fallback,
            "basis": "static check against the GPU delegate's documented op list; not executed on a GPU"}
