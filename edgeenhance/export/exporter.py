"""The exporter: one front door; each file through its target's row (export/targets.py), verified
right after it is written.

    Exporter("bilateral", ExportOptions(form="grid")).export(["tflite", "onnx"], ["fp32", "int8"], "out/")
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import torch

from edgeenhance.errors import UserError
from edgeenhance.export import calib as calib_mod
from edgeenhance.export.manifest import FILE_PARAMS, file_entry, write_manifest
from edgeenhance.export.options import ExportOptions
from edgeenhance.export.targets import TARGETS, get_target, resolve
from edgeenhance.export.verify import THRESHOLDS, advice, compare
from edgeenhance.models.registry import ZOO, get_form, load_int8_model, load_model


class Exporter:
    """Turns one model (zoo name, checkpoint or module) into verified phone models."""

    def __init__(self, model, options: ExportOptions | None = None, *, int8_model="shipped", log=print, **changes):
        """``options`` (default ``ExportOptions()``), with keyword ``changes`` to single options."""
        self.options = o = (options or ExportOptions()).but(**changes)
        form, size, weight_scales, layout = o.form, o.size, o.weight_scales, o.layout
        if o.float_weights and isinstance(int8_model, str):
            int8_model = None
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
        self.dynamic, self.calib, self.n_calib, self.n_verify = o.dynamic, o.calib, o.calib_images, o.verify_images
        self.verify_data = o.verify  # 'synthetic' (rendered, both badly and well exposed) or a folder of photos
        self.thresholds = dict(THRESHOLDS, **({"int8": o.min_psnr, "w8a8": o.min_psnr} if o.min_psnr is not None else {}))
        self.threads, self.io_dtype, self.activations, self.onnx_quantizer = o.threads, o.io_dtype, o.activations, \
            o.onnx_quantizer
        self.all_int8 = o.all_int8  # ignore the model's float layers: every op int8 (NPUs, DSPs)
        if weight_scales not in (None, "channel", "tensor"):
            raise UserError(f"unknown weight scales '{weight_scales}' (choose channel or tensor)")
        self.weight_scales = weight_scales  # TFLite/ONNX int8 weights; None: as the weights were tuned, else per channel
        if layout not in ("nhwc", "nchw"):
            raise UserError(f"unknown layout '{layout}' (choose nhwc or nchw)")
        # TFLite files take and return channel-last tensors by default: what Android bitmaps, camera
        # buffers and TFLite's own image models use, and no TRANSPOSE ops at the ends of the graph
        # (the int8 grid network: 0.305 -> 0.251 ms without them). ONNX and CoreML stay NCHW.
        self.layout = layout
        self.progress, self.log = o.progress, log
        multiple = getattr(self.model, "pad_multiple", 1)
        if self.form.fixed_size:  # grid form: the network size is fixed; --size is the photo size to verify on
            self.input_size = self.form.fixed_size
            self.photo_size = size or (512, 512)
        else:
            self.input_size = self.photo_size = size or (512, 512)
            if self.input_size[0] % multiple or self.input_size[1] % multiple:
                raise UserError(f"{self.spec} cannot take {self.input_size[0]}x{self.input_size[1]} inputs: height "
                                f"and width must be multiples of {multiple}")
        self._calib = self._pairs = self._module = self._int8_module = None
        self.w8a8 = None  # the fake-quantized graph of a CoreML w8a8 file (its replay verifies it off macOS)
        self.extras = dict(self.form.extras)
        # converters' sources per (target, graph "float"/"int8"): e.g. the unstripped fp32 file quantization
        # starts from (its tensor names carry the module scopes that select float layers)
        self.sources: dict[tuple[str, str], Path] = {}
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
        row = get_target(target)
        return precision in row.int8_activations and not (row.activation_bits and self.activations != 8)

    def graph_for(self, target: str, precision: str) -> torch.nn.Module:
        return self.int8_module if self.uses_int8_weights(target, precision) else self.module

    def weight_scales_for(self, target: str, precision: str) -> str:
        """'tensor' or 'channel' int8 weight scales of a TFLite or ONNX int8 file: as asked, else as the
        int8-tuned weights were tuned (``int8_weight_scales``: QAT compensated that very rounding, and
        finer per-channel rounding of those weights loses it: first student, ONNX 27.6 dB worst at 512x512
        vs 33.0 for TFLite per tensor), else per channel. CoreML stays per channel."""
        row = get_target(target)
        if not row.weight_scales or precision not in row.int8_activations:
            return "channel"
        weights = self.int8_model if self.uses_int8_weights(target, precision) else self.model
        return self.weight_scales or getattr(weights, "int8_weight_scales", "channel")

    def _graph(self, net: torch.nn.Module) -> torch.nn.Module:
        if self.form.prepare is not None:  # the form's own rewrite (e.g. grid normalization), noted in extras
            net = self.form.prepare(net, self.calibration_batches, self.extras)
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

    def float_modules(self, target: str | None = None, precision: str = "int8") -> tuple[str, ...]:
        """Submodules the model asks int8 exporters to keep in float compute (``int8_float_modules``);
        none with ``all_int8``, nor for int8-tuned weights that were tuned with every layer in int8.
        ``target`` None: the first target whose int8 files have int8 activations."""
        if self.all_int8:
            return ()
        target = target or next(t.name for t in TARGETS.values() if "int8" in t.int8_activations)
        graph = self.graph_for(target, precision)
        return tuple(sorted({n for m in graph.modules() for n in getattr(m, "int8_float_modules", ())}))

    def float_output(self, target: str, precision: str = "int8") -> bool:
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
            if self.form.fixed_size:  # a fixed-size form (the grid network) sees the photo resized
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
        return f"{stem}_{self.form.name}_{precision}{get_target(target).suffix}"

    # -- targets ----------------------------------------------------------------------------
    def work_dir(self) -> Path:
        """A temporary folder for intermediate files of this export (converters' unstripped copies)."""
        import tempfile

        if self._work is None:
            self._work = tempfile.TemporaryDirectory(prefix="edgeenhance-export-")
        return Path(self._work.name)

    def graph_key(self, target: str, precision: str) -> str:
        """Which graph a file starts from: "int8" (the int8-tuned weights) or "float"; converters cache
        one converted source per (target, graph) in ``sources``."""
        return "int8" if self.uses_int8_weights(target, precision) else "float"

    def convert(self, target: str, out_dir: Path, precision: str) -> Path:
        """One file through the target's converter (see export/targets.py)."""
        row = get_target(target)
        if self.dynamic and not row.dynamic:
            dyn = ", ".join(t.name.upper() for t in TARGETS.values() if t.dynamic) or "no target"
            raise UserError(f"--dynamic is supported for {dyn} only; {row.name} files have a fixed input size "
                            "(use --size)")
        if precision not in row.precisions:
            raise UserError(f"{row.name} export offers {', '.join(row.precisions)}, not {precision}")
        return row.convert(self, Path(out_dir), precision)

    # -- verification -----------------------------------------------------------------------
    def engine_for(self, path: Path, target: str, precision: str):
        """The file's runtime; the target's stand-in where that runtime is not on this host."""
        from edgeenhance.runtime.engines import open_engine

        row = get_target(target)
        if row.verify_engine and not row.runs_here():
            return resolve(row.verify_engine)(self, path, precision)
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
        row = get_target(target)
        if row.io_spec:  # read from the file itself
            return resolve(row.io_spec)(path)
        shape_in = ["N", 3, "height", "width"] if self.dynamic else [1, 3, *self.input_size]
        shape_out = [1, *self.form.output_shape] if self.form.output_shape else shape_in
        return {"input": {"name": "image", "shape": shape_in, "dtype": "float32"},
                "output": {"name": "output", "shape": shape_out, "dtype": "float32",
                           **({"range": None, "meaning": self.form.output_meaning} if self.form.output_meaning else {})}}

    # -- front door -------------------------------------------------------------------------
    def export(self, targets, precisions, out_dir) -> dict:
        """Export, verify and record each (target, precision); returns the manifest."""
        from tqdm import tqdm

        from edgeenhance.export.manifest import begin_export, checkpoint_reference, read_manifest
        from edgeenhance.fileio import ensure_dir

        rows = [get_target(t) for t in targets]
        out_dir = ensure_dir(out_dir)
        jobs = [(t.name, p) for t in rows for p in precisions if p in t.precisions]  # what each target offers
        self.log(f"{self.spec}: {self.form.name} form ({self.form.summary})")
        for t in rows:
            skipped = [p for p in precisions if p not in t.precisions]
            if skipped:
                self.log(f"{t.name} offers {'/'.join(t.precisions)}: skipping {', '.join(skipped)}")
        quantized = [(t, p) for t, p in jobs if p != "fp32" and p != "fp16"]
        if quantized and self.calib == "synthetic":
            self.log("warning: int8 ranges calibrated on rendered images only; for the photos your app sees, "
                     "pass --calib DIR (and --verify DIR to check on them)")
        _ = self.module  # settles the extras (grid normalization) before anything is written
        header = {"model": self.spec, "family": self.model.family, "config": self.model.config, "form": self.form.name,
                  "extras": copy.deepcopy(self.extras), "input_size": list(self.input_size),
                  "calibration": {"data": self.calib if self.calib == "synthetic" else Path(self.calib).name,
                                  "images": self.n_calib}}
        if self.checkpoint is not None:
            header["checkpoint"] = checkpoint_reference(self.checkpoint, out_dir)
        int8_rows = [t for t in rows if "int8" in t.int8_activations and "int8" in precisions]
        if int8_rows:  # the int8-activation files' float layers (the same for every such target)
            first, names = int8_rows[0].name, "/".join(t.name for t in int8_rows)
            mods = self.float_modules(first, "int8")
            if self.all_int8 or (not mods and self.uses_int8_weights(first, "int8")):
                why = "--all-int8" if self.all_int8 else "the int8-tuned weights were tuned that way"
                header["int8_float_modules"] = {"modules": [], "meaning": f"{why}: every layer of the int8 "
                                                                          f"{names} files computes in int8"}
            elif mods:
                header["int8_float_modules"] = {"modules": list(mods),
                                                "meaning": f"in int8 {names} files these layers compute in float "
                                                           "(weights stored as int8); all others are int8"}
                if self.float_output(first, "int8"):
                    header["int8_float_modules"]["tflite_output_op"] = (  # key kept for manifest readers
                        f"float: in int8 {names} files the op writing the output also computes in float, "
                        "with float weights (in ONNX, that node and its input)")
        # Before writing anything: drop the entries of files about to be replaced (the ONNX fp32 file is
        # also written for ONNX int8) and of files the manifest can no longer vouch for.
        writing = {self.filename(t, p) for t, p in jobs} | {self.filename(t, "fp32") for t, _ in jobs
                                                             if get_target(t).fp32_beside}
        entries = begin_export(out_dir, header, writing, self.log)
        failures = []
        bar = tqdm(jobs, desc="export", unit="file", disable=not self.progress)
        for target, precision in bar:
            bar.set_postfix_str(f"{target} {precision}")
            path = self.convert(target, out_dir, precision)
            ver = self.verify(path, target, precision)
            if not ver["passed"]:
                _remove(path)
                failures.append(advice(target, precision, ver["psnr_vs_float"], ver["threshold_db"]))
                continue
            row = get_target(target)
            e = file_entry(path, target, precision, self.io_spec(path, target), ver, ver["runtime"])
            e["executes"] = row.executes
            if precision != "fp32" and row.quantizer:
                e["quantizer"] = row.quantizer
            # each file carries what runs it (guide, grid normalization, size) as it was exported
            e.update({k: copy.deepcopy(header[k]) for k in FILE_PARAMS if k in header})
            if row.weight_scales and precision in row.int8_activations:
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


def export(model, target="tflite", out_dir="export", int8=False, fp16=False, w8a8=False, options=None, **kw) -> dict:
    """Front door: ``export('bilateral', target='all', int8=True, form='grid', out_dir='out')``."""
    targets = list(TARGETS) if target == "all" else [target]
    precisions = ["fp32"] + (["fp16"] if fp16 else []) + (["int8"] if int8 else []) + (["w8a8"] if w8a8 else [])
    return Exporter(model, options, **kw).export(targets, precisions, out_dir)
