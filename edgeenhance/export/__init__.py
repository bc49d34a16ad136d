"""Export to every target of ``targets.TARGETS`` (TFLite, ONNX, CoreML), each file verified against the
PyTorch float model."""

from edgeenhance.export.exporter import Exporter, export
from edgeenhance.export.options import ExportOptions
from edgeenhance.export.targets import TARGETS, Target, register_target

__all__ = ["TARGETS", "ExportOptions", "Exporter", "Target", "export", "register_target"]
