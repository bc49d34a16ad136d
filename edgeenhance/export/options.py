"""How to export: one object built once (from the CLI's flags, or in code) and passed to the exporter,
the demo and the benchmarks."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class ExportOptions:
    form: str | None = None  # None: the form the model deploys as (its default_form)
    size: tuple[int, int] | None = None  # full form: the input size (default 512x512); grid form: verification size
    dynamic: bool = False  # ONNX: any height and width
    calib: str = "synthetic"  # int8 calibration images: 'synthetic' or a folder of photos
    calib_images: int = 32
    verify: str = "synthetic"  # verification images: 'synthetic' or a folder of photos
    verify_images: int = 4
    min_psnr: float | None = None  # int8 threshold against float (default verify.THRESHOLDS)
    threads: int = 2
    io_dtype: str = "float"  # TFLite int8 inputs/outputs: float or int8
    activations: int = 8  # TFLite activation bits (16: int16 activations, int8 weights)
    onnx_quantizer: str = "nncf"  # nncf or ort
    all_int8: bool = False  # every layer int8, also those the model keeps float
    layout: str = "nhwc"  # TFLite tensor layout (ONNX and CoreML are NCHW)
    weight_scales: str | None = None  # TFLite/ONNX int8 weights: channel or tensor; None: as the weights were tuned
    float_weights: bool = False  # quantize the float weights even where the zoo ships int8-tuned ones
    progress: bool = True

    @classmethod
    def from_values(cls, values: dict) -> "ExportOptions":
        """From a mapping that may hold other keys too (e.g. all of a command's options)."""
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})

    def but(self, **changes) -> "ExportOptions":
        """A copy with some options changed."""
        return replace(self, **changes)
