"""One engine interface for every runtime: NCHW float32 images in [0, 1] in, the same out.

Quantized (int8/uint8) inputs and outputs and channel-last (NHWC) files are handled inside the
engine; ``run_hwc`` takes one (H, W, 3) photo and skips the layout round trip where the file is
channel-last.
"""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np

from edgeenhance.errors import UserError



def _missing(pkg: str, what: str):
    return UserError(f"{what} needs the '{pkg}' package, which is not installed; "
                     f"install it with: pip install '{pkg}' (or pip install 'edgeenhance[export]')")


class Engine:
    """Base engine. ``input_shape`` is None where the model takes any size."""

    fmt = "?"
    runtime = "?"
    name = "model"
    input_shape: tuple | None = None
    output_kind = "image"

    def run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def run_hwc(self, img: np.ndarray) -> np.ndarray:
        """One (H, W, 3) image -> (H', W', C) output (a view may be returned)."""
        return self.run(np.ascontiguousarray(img.transpose(2, 0, 1))[None])[0].transpose(1, 2, 0)

    def check_input(self, x: np.ndarray) -> None:
        if x.ndim != 4 or x.shape[1] != 3:
            raise UserError(f"{self.name}: expected an (N, 3, H, W) image batch, got shape {tuple(x.shape)}")
        if self.input_shape is not None and tuple(x.shape[2:]) != tuple(self.input_shape[2:]):
            h, w = self.input_shape[2:]
            raise UserError(f"{self.name}: this model was exported for {h}x{w} inputs and cannot take "
                            f"{x.shape[2]}x{x.shape[3]}; re-export with --size {x.shape[2]}x{x.shape[3]} "
                            "(or --dynamic for ONNX)")


class TorchEngine(Engine):
    fmt, runtime = "torch", "pytorch"

    def __init__(self, model, threads: int | None = None, name: str = "pytorch"):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.model, self.name = model.eval(), name
        self.multiple = getattr(model, "pad_multiple", 1)

    def run(self, x):
        import torch

        self.check_input(x)
        if x.shape[2] % self.multiple or x.shape[3] % self.multiple:
            raise UserError(f"{self.name}: height and width must be multiples of {self.multiple}")
        with torch.no_grad():
            return self.model(torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy()


class OnnxEngine(Engine):
    fmt = "onnx"

    def __init__(self, path, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise _missing("onnxruntime", "running .onnx models") from None
        self.name, self.runtime = Path(path).name, f"onnxruntime {ort.__version__}"
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        opts.log_severity_level = 3
        # Idle worker threads would otherwise spin for a while after each run, stealing the cores
        # from whatever runs next (the grid form's slicing pass ran 1.8x slower behind them).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise UserError(f"{path}: not a loadable ONNX model ({str(e).splitlines()[0][:200]})") from None
        inp = self.sess.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape
        self.input_shape = tuple(shape) if all(isinstance(s, int) for s in shape) else None
        out_shape = self.sess.get_outputs()[0].shape
        self.output_kind = "image" if len(out_shape) == 4 and out_shape[1] == 3 else "grid"

    def run(self, x):
        self.check_input(x)
        return self.sess.run(None, {self.input_name: np.ascontiguousarray(x, np.float32)})[0]


def _tflite_interpreter_cls():
    try:
        from ai_edge_litert.interpreter import Interpreter

        import ai_edge_litert

        return Interpreter, f"ai-edge-litert {getattr(ai_edge_litert, '__version__', '')}".strip()
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite-runtime"
    except ImportError:
        pass
    try:
        import tensorflow as tf

        return tf.lite.Interpreter, f"tf.lite {tf.__version__}"
    except ImportError:
        raise _missing("ai-edge-litert", "running .tflite models") from None


class LiteRTEngine(Engine):
    fmt = "tflite"

    def __init__(self, path, threads: int | None = None, xnnpack: bool = True):
        cls, self.runtime = _tflite_interpreter_cls()
        self.name = Path(path).name
        kwargs = {"num_threads": threads or 1}
        if not xnnpack:
            from ai_edge_litert.interpreter import OpResolverType

            kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        data = Path(path).read_bytes()
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise UserError(f"{path}: not a TFLite flatbuffer (missing TFL3 identifier)")
        try:
            self.it = cls(model_content=data, **kwargs)
            self.it.allocate_tensors()
        except Exception as e:
            if not xnnpack or "XNNPACK" not in str(e):
                raise UserError(f"{path}: LiteRT cannot load this model ({str(e).splitlines()[0][:200]})") from None
            # XNNPACK refuses some int8-I/O graphs; the built-in kernels run them.
            from ai_edge_litert.interpreter import OpResolverType

            kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            try:
                self.it = cls(model_content=data, **kwargs)
                self.it.allocate_tensors()
            except Exception as e2:
                raise UserError(f"{path}: LiteRT cannot load this model ({str(e2).splitlines()[0][:200]})") from None
            self.runtime += " (built-in kernels: XNNPACK refused this graph)"
        self.inp, self.out = self.it.get_input_details()[0], self.it.get_output_details()[0]
        shape, out_shape = [int(s) for s in self.inp["shape"]], [int(s) for s in self.out["shape"]]
        self.channels_last = tflite_layout(shape) == "NHWC"
        self.input_shape = (shape[0], shape[3], shape[1], shape[2]) if self.channels_last else tuple(shape)
        self.output_kind = "image" if out_shape[3 if self.channels_last else 1] == 3 else "grid"
        self.io_dtype = np.dtype(self.inp["dtype"]).name

    def encode(self, x: np.ndarray) -> np.ndarray:
        """(1, 3, H, W) float image -> the file's input tensor (layout, dtype)."""
        return quantize(x.transpose(0, 2, 3, 1) if self.channels_last else x, self.inp)

    def decode(self, y: np.ndarray) -> np.ndarray:
        """The file's output tensor -> (N, C, H, W) float32."""
        y = dequantize(y, self.out)
        return y.transpose(0, 3, 1, 2) if self.channels_last else y

    def invoke_raw(self, tensor: np.ndarray) -> np.ndarray:
        """The file's input tensor in, its raw output tensor out (a copy: get_tensor copies)."""
        self.it.set_tensor(self.inp["index"], tensor)
        self.it.invoke()
        return self.it.get_tensor(self.out["index"])

    def run(self, x):
        self.check_input(x)
        outs = [self.decode(self.invoke_raw(self.encode(xi[None]))) for xi in x]  # exported with batch 1
        return outs[0] if len(outs) == 1 else np.concatenate(outs)  # no extra full-frame copy for one image

    def run_hwc(self, img):
        if not self.channels_last:
            return super().run_hwc(img)
        self.check_input(img.transpose(2, 0, 1)[None])
        return dequantize(self.invoke_raw(quantize(img[None], self.inp)), self.out)[0]  # already channel-last


def tflite_layout(input_shape) -> str:
    """'NHWC' for channel-last image inputs (1, H, W, 3), else 'NCHW'."""
    s = [int(v) for v in input_shape]
    return "NHWC" if len(s) == 4 and s[3] == 3 and s[1] != 3 else "NCHW"


def quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float -> the tensor's dtype, with its (scale, zero point) when it is an integer tensor."""
    dt = np.dtype(detail["dtype"])
    if dt.kind == "f":
        return np.ascontiguousarray(x, dt)
    scale, zp = detail["quantization"]
    info = np.iinfo(dt)
    return np.clip(np.round(x / scale + zp), info.min, info.max).astype(dt)


def dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if np.dtype(detail["dtype"]).kind == "f":
        return y.astype(np.float32, copy=False)  # get_tensor already returned a copy
    scale, zp = detail["quantization"]
    return ((y.astype(np.float32) - zp) * scale).astype(np.float32)


class CoreMLEngine(Engine):
    """Runs .mlpackage with coremltools on macOS. Elsewhere, see ``CoreMLReplayEngine``."""

    fmt, runtime = "coreml", "coremltools (macOS)"

    def __init__(self, path, threads=None):
        if platform.system() != "Darwin":
            raise UserError(f"{path}: CoreML models execute only on macOS; on {platform.system()} edgeenhance "
                            "checks them by a numerical replay in PyTorch (export verification does this)")
        import coremltools as ct

        self.name = Path(path).name
        self.model = ct.models.MLModel(str(path))
        spec = self.model.get_spec()
        self.input_name = spec.description.input[0].name
        self.input_shape = tuple(spec.description.input[0].type.multiArrayType.shape)

    def run(self, x):
        self.check_input(x)
        out = self.model.predict({self.input_name: x.astype(np.float32)})
        return np.asarray(next(iter(out.values())), np.float32)


class CoreMLReplayEngine(Engine):
    """Honest stand-in for CoreML on Linux: the PyTorch model with the CoreML precision replayed
    (fp16 weights and compute, or int8 weights dequantized per channel as CoreML stores them)."""

    fmt = "coreml"

    def __init__(self, model, precision: str, name: str = "coreml-replay"):
        import copy

        import torch

        self.name, self.precision = name, precision
        self.runtime = f"PyTorch replay of CoreML {precision} (not executed: CoreML runs only on macOS)"
        m = copy.deepcopy(model).eval()
        if precision == "w8a8":  # ``model`` is the fake-quantized module that was converted
            self.runtime = ("PyTorch replay of CoreML w8a8: the converted model's int8 weights and activations "
                            "by its own fake quantizers, float32 compute (not executed: CoreML runs only on macOS)")
            self.model, self.dtype = m, torch.float32
            return
        with torch.no_grad():
            for mod in m.modules():
                w = getattr(mod, "weight", None)
                if precision == "int8" and isinstance(w, torch.nn.Parameter) and w.dim() >= 2:
                    w.copy_(fake_quant_per_channel(w))
        self.model, self.dtype = m, (torch.float16 if precision in ("fp16", "int8") else torch.float32)

    def run(self, x):
        import torch

        self.check_input(x)
        with torch.no_grad():
            m = self.model.to(self.dtype)
            return m(torch.from_numpy(x).to(self.dtype)).float().numpy()


def fake_quant_per_channel(w):
    """Symmetric per-output-channel int8 quantize -> dequantize (as CoreML's linear_symmetric)."""
    import torch

    flat = w.reshape(w.shape[0], -1)
    scale = flat.abs().amax(dim=1).clamp(min=1e-12) / 127.0
    q = torch.clamp(torch.round(flat / scale[:, None]), -127, 127)
    return (q * scale[:, None]).reshape(w.shape)


def open_engine(path, threads: int | None = None, **kw) -> Engine:
    """Engine for a model file, chosen by its suffix from the export targets' table (a checkpoint runs in
    PyTorch; a clear error for anything else)."""
    from edgeenhance.export.targets import TARGETS, target_for_suffix

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such model file")
    if path.suffix.lower() == ".safetensors":
        from edgeenhance.models.registry import load_model

        return TorchEngine(load_model(str(path)), threads, name=path.name)
    row = target_for_suffix(path.suffix)
    if row is None:
        known = ", ".join(s for t in TARGETS.values() for s in (t.suffix, *t.other_suffixes))
        raise UserError(f"{path}: unknown model file type '{path.suffix}' (expected {known} or .safetensors)")
    return row.engine_class()(path, threads, **kw)
