"""The exporter: one front door, one method per target, verification right after every file.

    Exporter("bilateral", form="grid").export(["tflite", "onnx"], ["fp32", "int8"], "out/")
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import torch

from edgeenhance.console import quiet
from edgeenhance.errors import UserError
from edgeenhance.export import calib as calib_mod
from edgeenhance.export.manifest import FILE_PARAMS, file_entry, io_spec_tflite, write_manifest
from edgeenhance.export.verify import THRESHOLDS, advice, compare
from edgeenhance.fileio import atomic_path
from edgeenhance.models.registry import ZOO, get_form, load_int8_model, load_model

TARGETS = ("tflite", "onnx", "coreml")
PRECISIONS = ("fp32", "fp16", "int8", "w8a8")  # w8a8: CoreML only (int8 weights and activations)
SUFFIX = {"tflite": ".tflite", "onnx": ".onnx", "coreml": ".mlpackage"}


class Exporter:
    """Turns one model (zoo name, checkpoint or module) into verified phone models."""

    def __init__(self, model, form: str | None = None, size: tuple[int, int] | None = None, dynamic: bool = False,
                 calib: str = "synthetic", calib_images: int = 32, verify_images: int = 4, min_psnr: float | None = None,
                 threads: int = 2, io_dtype: str = "float", activations: int = 8, onnx_quantizer: str = "nncf",
                 all_int8: bool = False, layout: str = "nhwc", progress: bool = True, log=print, int8_model="shipped",
                 weight_scales: str | None = None, verify: str = "synthetic"):
        self.model = load_model(model) if isinstance(model, str) else model.eval()
        # A checkpoint is named by its stem and recorded by name, hash and relative path (see
        # ``checkpoint_reference``): its absolute path would leak into file names and break when it moves.
        self.checkpoint = Path(model) if isinstance(model, str) and model not in ZOO else None
        if self.checkpoint is not None:
            self.spec = self.checkpoint.name.removesuffix(".safetensors")
        else:
            self.spec = model if isinstance(model, str) else getattr(model, "name", self.model.family)
        # None: the form the model deploys as (the bilateral model: its grid network, sliced beside it)
        self.form = get_form(self.model, form or getattr(self.model, "default_form", "full"))
        # int8 (and CoreML w8a8) files are made from ``int8_model``'s weights when there is one: weights
        # fine-tuned for int8 (QAT), the zoo's own for "shipped". Every file is verified against ``model``.
        if isinstance(int8_model, str):
            if int8_model != "shipped":
                raise UserError(f"int8_model: 'shipped', None or a model, not '{int8_model}'")
            int8_model = load_int8_model(model) if isinstance(model, str) else None
        self.int8_model = int8_model.eval() if int8_model is not None else None
        self.dynamic, self.calib, self.n_calib, self.n_verify = dynamic, calib, calib_images, verify_images
        self.verify_data = verify  # 'synthetic' (rendered, both badly and well exposed) or a folder of photos
        self.thresholds = dict(THRESHOLDS, **({"int8": min_psnr, "w8a8": min_psnr} if min_psnr is not None else {}))
        self.threads, self.io_dtype, self.activations, self.onnx_quantizer = threads, io_dtype, activations, onnx_quantizer
        self.all_int8 = all_int8  # ignore the model's float layers: every op int8 (NPUs, DSPs)
        if weight_scales not in (None, "channel", "tensor"):
            raise UserError(f"unknown weight scales '{weight_scales}' (choose channel or tensor)")
        self.weight_scales = weight_scales  # TFLite/ONNX int8 weights; None: as the weights were tuned, else per channel
        if layout not in ("nhwc", "nchw"):
            raise UserError(f"unknown layout '{layout}' (choose nhwc or nchw)")
        # TFLite files take and return channel-last tensors by default: what Android bitmaps, camera
        # buffers and TFLite's own image models use, and no TRANSPOSE ops at the ends of the graph
        # (the int8 grid network: 0.305 -> 0.251 ms without them). ONNX and CoreML stay NCHW.
        self.layout = layout
        self.progress, self.log = progress, log
        multiple = getattr(self.model, "pad_multiple", 1)
        if self.form.fixed_size:  # grid form: the network size is fixed; --size is the photo size to verify on
            self.input_size = self.form.fixed_size
            self.photo_size = size or (512, 512)
        else:
            self.input_size = self.photo_size = size or (512, 512)
            if self.input_size[0] % multiple or self.input_size[1] % multiple:
                raise UserError(f"{self.spec} cannot take {self.input_size[0]}x{self.input_size[1]} inputs: height "
                                f"and width must be multiples of {multiple}")
        self._calib = self._pairs = self._module = self._int8_module = self._w8a8 = None
        self.extras = dict(self.form.extras)
        # converted graphs ("float", "int8") -> the unstripped fp32 file quantization starts from (its
        # tensor names carry the module scopes that select float layers)
        self._fp32_source: dict[tuple[str, str], Path] = {}
        self._work = None  # temporary folder for those copies

    @property
    def module(self) -> torch.nn.Module:
        """The graph to export. For the grid form, its output channels are range-normalized on the
        calibration images (see ``normalized_grid_net``) and the manifest records how to undo it.
        Models that declare ``int8_equalize`` groups are range-equalized (``quantize/equalize.py``)."""
        if self._module is None:
            self._module = self._graph(self.form.module)
        return self._module

    @property
    def int8_module(self) -> torch.nn.Module:
        """The graph int8 files are quantized from: ``module`` built from the int8-tuned weights, if any."""
        if self.int8_model is None:
            return self.module
        if self._int8_module is None:
            _ = self.module  # the float graph sets the grid normalization the int8 graph shares
            self._int8_module = self._graph(get_form(self.int8_model, self.form.name).module)
        return self._int8_module

    def uses_int8_weights(self, target: str, precision: str) -> bool:
        """Whether this file starts from the int8-tuned weights: only files whose activations are int8
        (TFLite and ONNX int8, CoreML w8a8). QAT weights are tuned to the rounding of int8 activations;
        where only weights are int8 (CoreML int8, TFLite --activations 16) the float weights are closer."""
        if self.int8_model is None:
            return False
        return precision == "w8a8" or (precision == "int8" and target in ("tflite", "onnx")
                                       and not (target == "tflite" and self.activations != 8))

    def graph_for(self, target: str, precision: str) -> torch.nn.Module:
        return self.int8_module if self.uses_int8_weights(target, precision) else self.module

    def weight_scales_for(self, target: str, precision: str) -> str:
        """'tensor' or 'channel' int8 weight scales of a TFLite or ONNX int8 file: as asked, else as the
        int8-tuned weights were tuned (``int8_weight_scales``: QAT compensated that very rounding, and
        finer per-channel rounding of those weights loses it: first student, ONNX 27.6 dB worst at 512x512
        vs 33.0 for TFLite per tensor), else per channel. CoreML stays per channel."""
        if target not in ("tflite", "onnx") or precision != "int8":
            return "channel"
        weights = self.int8_model if self.uses_int8_weights(target, precision) else self.model
        return self.weight_scales or getattr(weights, "int8_weight_scales", "channel")

    def _graph(self, net: torch.nn.Module) -> torch.nn.Module:
        if self.form.output == "grid":
            from edgeenhance.models.bilateral import grid_normalization, normalized_grid_net

            if "grid_scale" not in self.extras["guide"]:
                offset, scale = grid_normalization(net, self.calibration_batches())
                self.extras["guide"] = {**self.extras["guide"], "grid_offset": offset.tolist(),
                                        "grid_scale": scale.tolist()}
                self.extras["grid_normalization"] = "grid = output / grid_scale + grid_offset (per channel)"
            g = self.extras["guide"]
            net = normalized_grid_net(net, torch.tensor(g["grid_offset"]), torch.tensor(g["grid_scale"])).eval()
        groups = getattr(net, "int8_equalize", ())
        if groups:
            from edgeenhance.quantize.equalize import equalize

            net = equalize(net, groups, self.calibration_batches())
            self.extras["int8_equalization"] = {
                "groups": [{"producers": [conv for conv, _ in prods], "consumers": list(cons)}
                           for prods, cons in groups],
                "meaning": "channel ranges equalized across these conv pairs before export (same float "
                           "function; each file is still verified against the original model)"}
        return net

    def float_modules(self, target: str = "tflite", precision: str = "int8") -> tuple[str, ...]:
        """Submodules the model asks int8 exporters to keep in float compute (``int8_float_modules``);
        none with ``all_int8``, nor for int8-tuned weights that were tuned with every layer in int8."""
        if self.all_int8:
            return ()
        graph = self.graph_for(target, precision)
        return tuple(sorted({n for m in graph.modules() for n in getattr(m, "int8_float_modules", ())}))

    def float_output(self, target: str = "tflite", precision: str = "int8") -> bool:
        """Whether the model asks int8 exporters to compute the op writing its output in float
        (``int8_float_output``); never with ``all_int8``, nor from int8-tuned weights: QAT fitted those
        to an int8 output (the bilateral model's dark test photo: 38.0 dB as tuned, 33.1 with it float)."""
        if self.all_int8 or self.uses_int8_weights(target, precision):
            return False
        return any(getattr(m, "int8_float_output", False) for m in self.graph_for(target, precision).modules())

    # -- data -------------------------------------------------------------------------------
    def calibration_batches(self) -> list[np.ndarray]:
        if self._calib is None:
            imgs = calib_mod.calibration_images(self.model, self.calib, self.n_calib, self.photo_size)
            if self.form.output == "grid":
                from edgeenhance.runtime.fused_slice import resize_bilinear

                imgs = [resize_bilinear(im, self.input_size) for im in imgs]
            self._calib = [np.ascontiguousarray(im.transpose(2, 0, 1))[None] for im in imgs]
        return self._calib

    def verification_pairs(self):
        if self._pairs is None:
            if self.verify_data == "synthetic":
                self._pairs = calib_mod.verification_pairs(self.model, self.n_verify, self.photo_size)
            else:  # the grid form runs any photo size: verify at the photos' own resolution
                self._pairs = calib_mod.folder_pairs(self.verify_data, self.n_verify,
                                                     None if self.form.fixed_size else self.photo_size)
        return self._pairs

    def example(self) -> torch.Tensor:
        return torch.rand(1, 3, *self.input_size, generator=torch.Generator().manual_seed(0))

    def filename(self, target: str, precision: str) -> str:
        # only safe characters: a module's name may come from checkpoint metadata
        stem = re.sub(r"[^A-Za-z0-9._+-]", "_", str(self.spec)).lstrip(".") or "model"
        return f"{stem}_{self.form.name}_{precision}{SUFFIX[target]}"

    # -- targets ----------------------------------------------------------------------------
    def _work_dir(self) -> Path:
        import tempfile

        if self._work is None:
            self._work = tempfile.TemporaryDirectory(prefix="edgeenhance-export-")
        return Path(self._work.name)

    def _graph_key(self, target: str, precision: str) -> str:
        return "int8" if self.uses_int8_weights(target, precision) else "float"

    def _tflite_source(self, precision: str) -> Path:
        """Unstripped fp32 .tflite of the graph ``precision`` starts from (converted once per graph)."""
        key = ("tflite", self._graph_key("tflite", precision))
        if key not in self._fp32_source:
            try:
                import litert_torch
            except ImportError:
                raise UserError("TFLite export needs litert-torch: pip install 'edgeenhance[export]'") from None
            source = self._work_dir() / f"{key[1]}_{self.filename('tflite', 'fp32')}"
            module, example = self.graph_for("tflite", precision), self.example()
            if self.layout == "nhwc":
                module = litert_torch.to_channel_last_io(module, args=[0], outputs=[0]).eval()
                example = example.permute(0, 2, 3, 1).contiguous()
            with quiet():
                litert_torch.convert(module, (example,)).export(str(source))
            self._fp32_source[key] = source
        return self._fp32_source[key]

    def tflite(self, out_dir: Path, precision: str) -> Path:
        if self.dynamic:
            raise UserError("--dynamic is supported for ONNX only; TFLite models have a fixed input size (use --size)")
        from edgeenhance.export.strip import strip_names

        source = self._tflite_source(precision)
        if precision == "fp32":
            import shutil

            fp32 = out_dir / self.filename("tflite", "fp32")
            with atomic_path(fp32) as tmp:
                shutil.copyfile(source, tmp)
                strip_names(tmp)
            return fp32
        from edgeenhance.quantize.tflite import quantize_tflite

        calib = self.calibration_batches()
        if self.layout == "nhwc":
            calib = [np.ascontiguousarray(b.transpose(0, 2, 3, 1)) for b in calib]
        out = quantize_tflite(source, out_dir / self.filename("tflite", precision),
                              calib, precision, self.io_dtype, self.activations, self.float_modules("tflite", precision),
                              self.weight_scales_for("tflite", precision), self.float_output("tflite", precision))
        strip_names(out)
        return out

    def _onnx_fp32(self, out_dir: Path, precision: str) -> Path:
        """fp32 ONNX of the graph ``precision`` starts from (exported once per graph): the float graph's
        is the fp32 file in ``out_dir``; the int8-tuned graph's goes to the work folder."""
        key = ("onnx", self._graph_key("onnx", precision))
        if key not in self._fp32_source:
            name = self.filename("onnx", "fp32")
            path = out_dir / name if key[1] == "float" else self._work_dir() / f"int8_{name}"
            dyn = {"image": {2: "height", 3: "width"}, "output": {2: "height", 3: "width"}} if self.dynamic else None
            if self.dynamic and self.form.fixed_size:
                raise UserError("the grid form has a fixed input size; --dynamic applies to the full form")
            with quiet(), atomic_path(path) as tmp:
                torch.onnx.export(self.graph_for("onnx", precision), (self.example(),), str(tmp), input_names=["image"],
                                  output_names=["output"], opset_version=17, dynamo=False, dynamic_axes=dyn)
            self._fp32_source[key] = path
        return self._fp32_source[key]

    def onnx(self, out_dir: Path, precision: str) -> Path:
        if precision == "fp16":
            raise UserError("ONNX export offers fp32 and int8 (QDQ); use --target tflite or coreml for fp16")
        source = self._onnx_fp32(out_dir, precision)
        if precision == "fp32":
            return source
        from edgeenhance.quantize.onnx import quantize_onnx

        with quiet():
            return quantize_onnx(source, out_dir / self.filename("onnx", precision), self.calibration_batches(),
                                 self.onnx_quantizer, self.float_modules("onnx", precision),
                                 self.weight_scales_for("onnx", precision),
                                 # QAT simulated asymmetric (zero-point) activations, as TFLite rounds them
                                 asymmetric_activations=self.uses_int8_weights("onnx", precision),
                                 float_output=self.float_output("onnx", precision))

    def coreml(self, out_dir: Path, precision: str) -> Path:
        if self.dynamic:
            raise UserError("--dynamic is supported for ONNX only; CoreML models here have a fixed input size")
        try:
            import coremltools as ct
        except ImportError:
            raise UserError("CoreML export needs coremltools: pip install 'edgeenhance[export]'") from None
        out = out_dir / self.filename("coreml", precision)
        module = self.graph_for("coreml", precision)
        if hasattr(module, "static_size"):  # the CoreML torch frontend needs constant resize sizes
            import copy

            module = copy.deepcopy(module)
            module.static_size = tuple(self.input_size)
        if precision == "w8a8":
            from edgeenhance.quantize.coreml import w8a8_module

            with quiet():
                module = self._w8a8 = w8a8_module(module, self.calibration_batches(),
                                                          self.float_modules("coreml", precision))
        with quiet(), torch.no_grad():
            traced = torch.jit.trace(module, self.example())
            ml = ct.convert(traced, inputs=[ct.TensorType(name="image", shape=tuple(self.example().shape))],
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

    # -- verification -----------------------------------------------------------------------
    def engine_for(self, path: Path, target: str, precision: str):
        from edgeenhance.runtime.engines import CoreMLReplayEngine, open_engine

        if target == "coreml":
            import platform

            if platform.system() == "Darwin":
                return open_engine(path, self.threads)
            eng = CoreMLReplayEngine(self._w8a8 if precision == "w8a8" else self.graph_for(target, precision), precision,
                                     name=path.name)
            eng.input_shape = (1, 3, *self.input_size)
            eng.output_kind = self.form.output
            return eng
        return open_engine(path, self.threads)

    def verify(self, path: Path, target: str, precision: str, model=None) -> dict:
        """PSNR / max error of the exported file against the float model (``model`` overrides it); int8
        files made from int8-tuned weights are held to the float model too."""
        from edgeenhance.evaluate import enhance_array
        from edgeenhance.runtime.pipeline import make_pipeline

        engine = self.engine_for(path, target, precision)
        pipeline = make_pipeline(engine, {"extras": self.extras})
        ref_model = model if model is not None else self.model
        res = compare(pipeline, lambda x: enhance_array(ref_model, x), self.verification_pairs())
        res.update(runtime=engine.runtime, threshold_db=self.thresholds[precision],
                   data=self.verification_data())
        res["passed"] = res["psnr_vs_float"] >= self.thresholds[precision]
        return res

    def verification_data(self) -> str:
        n = len(self.verification_pairs())
        if self.verify_data == "synthetic":
            return (f"{n} rendered {self.photo_size[0]}x{self.photo_size[1]} images: "
                    f"{calib_mod.task_exposure(self.model)}-exposed and well exposed (seeds {calib_mod.VERIFY_SEED}+)")
        return f"{n} photos from {Path(self.verify_data).name}/" + ("" if self.form.fixed_size else
                                                                    f" at {self.photo_size[0]}x{self.photo_size[1]}")

    def io_spec(self, path: Path, target: str) -> dict:
        if target == "tflite":
            return io_spec_tflite(path)
        shape_in = ["N", 3, "height", "width"] if self.dynamic else [1, 3, *self.input_size]
        if self.form.output == "grid":
            g = self.model.config["grid_size"]
            shape_out = [1, 12 * self.model.bins, g, g]
        else:
            shape_out = shape_in
        return {"input": {"name": "image", "shape": shape_in, "dtype": "float32"},
                "output": {"name": "output", "shape": shape_out, "dtype": "float32",
                           **({"range": None, "meaning": f"bilateral grid, {self.form.extras['grid_layout']}"}
                              if self.form.output == "grid" else {})}}

    # -- front door -------------------------------------------------------------------------
    def export(self, targets, precisions, out_dir) -> dict:
        """Export, verify and record each (target, precision); returns the manifest."""
        from tqdm import tqdm

        from edgeenhance.export.manifest import begin_export, checkpoint_reference, read_manifest
        from edgeenhance.fileio import ensure_dir

        out_dir = ensure_dir(out_dir)
        for t in targets:
            if t not in TARGETS:
                raise UserError(f"unknown target '{t}' (choose from {', '.join(TARGETS)}, all)")
        jobs = [(t, p) for t in targets for p in precisions
                if not (t == "onnx" and p == "fp16") and not (p == "w8a8" and t != "coreml")]
        self.log(f"{self.spec}: {self.form.name} form" + (" (grid network; slicing runs beside it)"
                                                          if self.form.output == "grid" else " (image in, image out)"))
        if any(p in ("int8", "w8a8") for p in precisions) and self.calib == "synthetic":
            self.log("warning: int8 ranges calibrated on rendered images only; for the photos your app sees, "
                     "pass --calib DIR (and --verify DIR to check on them)")
        _ = self.module  # settles the extras (grid normalization) before anything is written
        header = {"model": self.spec, "family": self.model.family, "config": self.model.config, "form": self.form.name,
                  "extras": copy.deepcopy(self.extras), "input_size": list(self.input_size),
                  "calibration": {"data": self.calib if self.calib == "synthetic" else Path(self.calib).name,
                                  "images": self.n_calib}}
        if self.checkpoint is not None:
            header["checkpoint"] = checkpoint_reference(self.checkpoint, out_dir)
        if "int8" in precisions:
            mods = self.float_modules()
            if self.all_int8 or (not mods and self.uses_int8_weights("tflite", "int8")):
                why = "--all-int8" if self.all_int8 else "the int8-tuned weights were tuned that way"
                header["int8_float_modules"] = {"modules": [], "meaning": f"{why}: every layer of the int8 "
                                                                          "TFLite/ONNX files computes in int8"}
            elif mods:
                header["int8_float_modules"] = {"modules": list(mods),
                                                "meaning": "in int8 TFLite/ONNX files these layers compute in float "
                                                           "(weights stored as int8); all others are int8"}
                if self.float_output():
                    header["int8_float_modules"]["tflite_output_op"] = (
                        "float: in int8 TFLite files the op writing the output also computes in float "
                        "(weights stored as int8); in int8 ONNX files that node and its input are float")
        # Before writing anything: drop the entries of files about to be replaced (the ONNX fp32 file is
        # also written for ONNX int8) and of files the manifest can no longer vouch for.
        writing = {self.filename(t, p) for t, p in jobs} | {self.filename("onnx", "fp32") for t, _ in jobs if t == "onnx"}
        entries = begin_export(out_dir, header, writing, self.log)
        failures = []
        bar = tqdm(jobs, desc="export", unit="file", disable=not self.progress)
        for target, precision in bar:
            bar.set_postfix_str(f"{target} {precision}")
            path = getattr(self, target)(out_dir, precision)
            ver = self.verify(path, target, precision)
            if not ver["passed"]:
                _remove(path)
                failures.append(advice(target, precision, ver["psnr_vs_float"], ver["threshold_db"]))
                continue
            e = file_entry(path, target, precision, self.io_spec(path, target), ver, ver["runtime"])
            # each file carries what runs it (guide, grid normalization, size) as it was exported
            e.update({k: copy.deepcopy(header[k]) for k in FILE_PARAMS if k in header})
            if precision == "int8" and target in ("tflite", "onnx"):
                e["weight_scales"] = self.weight_scales_for(target, precision)
            if self.uses_int8_weights(target, precision):
                e["int8_weights_from"] = getattr(self.int8_model, "name", "int8 model")
            entries.append(e)
            manifest = write_manifest(out_dir, self._summary(header, entries), entries)  # after every file
            self.log(f"  {path.name:<44} {ver['psnr_vs_float']:7.2f} dB vs float (worst image "
                     f"{ver['min_psnr_vs_float']:.2f})   max err {ver['max_abs_error']:.4f}")
        bar.close()
        manifest = write_manifest(out_dir, self._summary(header, entries), entries)
        if failures:
            raise UserError("\n".join(failures) + f"\n(files that passed are listed in {manifest})")
        return read_manifest(out_dir)

    @staticmethod
    def _summary(header: dict, entries: list[dict]) -> dict:
        """The top level: the latest export's settings, and which listed files have int8 weights per tensor
        or from int8-tuned weights (from the entries, so it never names a file the manifest dropped)."""
        out = dict(header)
        per_tensor = [e["file"] for e in entries if e.get("weight_scales") == "tensor"]
        if per_tensor:
            out["int8_weight_scales"] = {"files": per_tensor,
                                         "meaning": "one int8 scale per weight tensor (not per output channel)"}
        tuned = [e for e in entries if "int8_weights_from" in e]
        if tuned:
            out["int8_weights"] = {
                "from": tuned[-1]["int8_weights_from"], "files": [e["file"] for e in tuned],
                "meaning": "these files are quantized from weights fine-tuned for int8 (quantization-aware); "
                           "like every file, they are verified against the float model"}
        return out


def _remove(path: Path):
    import shutil

    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def export(model, target="tflite", out_dir="export", int8=False, fp16=False, w8a8=False, form=None, **kw) -> dict:
    """Front door: ``export('bilateral', target='all', int8=True, form='grid', out_dir='out')``."""
    targets = list(TARGETS) if target == "all" else [target]
    precisions = ["fp32"] + (["fp16"] if fp16 else []) + (["int8"] if int8 else []) + (["w8a8"] if w8a8 else [])
    return Exporter(model, form=form, **kw).export(targets, precisions, out_dir)
