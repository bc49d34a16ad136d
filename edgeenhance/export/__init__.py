"""Export to TFLite, ONNX and CoreML, each verified against the PyTorch float model."""

from edgeenhance.export.exporter import TARGETS, Exporter, export

__all__ = ["TARGETS", "Exporter", "export"]
