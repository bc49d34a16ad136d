"""Export to every target of ``targets.TARGETS`` (TFLite, ONNX, CoreML), each file verified against the
PyTorch float model. Names load on first use: the target table and options stay free of torch, so
`edgeenhance --help` (which lists the targets) stays fast."""

from edgeenhance.export.options import ExportOptions
from edgeenhance.export.targets import TARGETS, Target, register_target

__all__ = ["TARGETS", "ExportOptions", "Exporter", "Target", "export", "register_target"]


def __getattr__(name):
    if name in ("Exporter", "export"):
        from edgeenhance.export import exporter

        return getattr(exporter, name)
    raise AttributeError(f"module 'edgeenhance.export' has no attribute '{name}'")
