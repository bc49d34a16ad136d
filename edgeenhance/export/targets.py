"""The export targets: one row each. The exporter dispatches through this table; the CLI's --target
choices, the runtime's file-type map (``open_engine``) and the manifest's entries derive from it.

A new target is one ``register_target(Target(...))`` row plus its converter module (after
ultralytics' ``export_formats()``, with names instead of positional columns). Nothing heavy is
imported here: converters and engines are named "module:attribute" and loaded when used.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

PRECISIONS = ("fp32", "fp16", "int8", "w8a8")  # w8a8: int8 weights and activations where int8 means weights only


@dataclass(frozen=True)
class Target:
    name: str  # --target value, manifest "target"
    suffix: str  # file suffix; the runtime opens files by it
    precisions: tuple[str, ...]  # what it writes; other asked precisions are skipped for it
    # convert(exporter, out_dir, precision) -> Path: writes one file (atomically) from exporter.graph_for(...)
    converter: str | Callable
    engine: str | Callable  # Engine class that runs its files (runtime/engines.py): cls(path, threads, **kw)
    executes: str  # where its files run
    quantizer: str = ""  # what makes its quantized files (recorded in their manifest entries)
    int8_activations: tuple[str, ...] = ()  # precisions with int8 activations: made from int8-tuned (QAT) weights
    weight_scales: bool = False  # --weight-scales applies to its int8-activation files
    activation_bits: bool = False  # --activations 16 applies (int16 activations: then not made from QAT weights)
    dynamic: bool = False  # --dynamic (any input size) is supported
    fp32_beside: bool = False  # its quantized files are made from the fp32 file, which is written too
    other_suffixes: tuple[str, ...] = ()  # older file types its engine also opens
    host_systems: tuple[str, ...] | None = None  # platform.system() values its runtime exists on; None: any
    # (exporter, path, precision) -> Engine that verifies a fresh file on hosts its runtime does not exist on
    verify_engine: str | Callable | None = None
    io_spec: str | Callable | None = None  # (path) -> dict read from the file; default: from the form's shapes

    def convert(self, exporter, out_dir, precision):
        return resolve(self.converter)(exporter, out_dir, precision)

    def engine_class(self):
        return resolve(self.engine)

    def runs_here(self) -> bool:
        import platform

        return self.host_systems is None or platform.system() in self.host_systems


TARGETS: dict[str, Target] = {}


def register_target(target: Target) -> Target:
    TARGETS[target.name] = target
    return target


def resolve(ref):
    """A callable, or "module:attribute" imported now."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def get_target(name: str) -> Target:
    from edgeenhance.errors import UserError

    if name not in TARGETS:
        raise UserError(f"unknown target '{name}' (choose from {', '.join(TARGETS)}, all)")
    return TARGETS[name]


def target_for_suffix(suffix: str) -> Target | None:
    suffix = suffix.lower()
    return next((t for t in TARGETS.values() if suffix == t.suffix or suffix in t.other_suffixes), None)


def help_table() -> str:
    """One line per target for --help."""
    return "\n".join(f"  {t.name:<8} {t.suffix:<11} {'/'.join(t.precisions):<20} {t.executes}" for t in TARGETS.values())


register_target(Target(
    "tflite", ".tflite", ("fp32", "fp16", "int8"), "edgeenhance.export.to_tflite:convert",
    "edgeenhance.runtime.engines:LiteRTEngine", "LiteRT: Android/iOS CPU (XNNPACK), GPU and NNAPI delegates",
    quantizer="ai-edge-quantizer (edgeenhance.quantize.tflite)", int8_activations=("int8",), weight_scales=True,
    activation_bits=True, io_spec="edgeenhance.export.manifest:io_spec_tflite"))
register_target(Target(
    "onnx", ".onnx", ("fp32", "int8"), "edgeenhance.export.to_onnx:convert",
    "edgeenhance.runtime.engines:OnnxEngine", "onnxruntime: desktop, server, Android/iOS builds",
    quantizer="NNCF or onnxruntime QDQ (edgeenhance.quantize.onnx)", int8_activations=("int8",), weight_scales=True,
    dynamic=True, fp32_beside=True))
register_target(Target(
    "coreml", ".mlpackage", ("fp32", "fp16", "int8", "w8a8"), "edgeenhance.export.to_coreml:convert",
    "edgeenhance.runtime.engines:CoreMLEngine", "Core ML: iPhone/Mac CPU, GPU and Neural Engine (macOS runs it)",
    quantizer="coremltools (edgeenhance.quantize.coreml)", int8_activations=("w8a8",), other_suffixes=(".mlmodel",),
    host_systems=("Darwin",), verify_engine="edgeenhance.export.to_coreml:verify_engine"))
