"""The model contract: what every model family declares about itself, read by the registry, the
exporter, the quantizers, calibration, evaluation and the runtimes.

A family is one class that subclasses ``Enhancer`` (a network) or ``ClassicalEnhancer`` (numpy, no
training) and names itself with ``family``; defining the class registers it. A shipped model is that
class plus a ``ZooEntry`` in ``registry.ZOO``. Nothing outside the family's own file asks which family
a model is (after Qualcomm AI Hub Models' ``BaseModel`` and pytorch-CycleGAN-and-pix2pix's
``template_model.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar

from torch import nn

FAMILIES: dict[str, type] = {}  # family name -> class, filled as model modules are imported


@dataclass
class DeployForm:
    """One deployable graph of a model: NCHW float32 in [0, 1] in; an image (or another tensor the
    runtime turns into one, e.g. a grid) out."""

    name: str
    module: nn.Module
    fixed_size: tuple[int, int] | None = None  # the only input size this form takes, if any
    output: str = "image"  # "image", or what a runtime pipeline turns into one ("grid")
    extras: dict = field(default_factory=dict)  # what a runtime needs beside the graph (e.g. the guide)
    output_shape: tuple | None = None  # (C, H, W) of a non-image output; None: the input's shape
    output_meaning: str | None = None  # the output's channel layout, for the manifest
    summary: str = "image in, image out"  # how the export log describes the form
    # (graph, calibration batches, extras) -> graph: a rewrite every export of this form gets before
    # conversion (e.g. the grid's per-channel range normalization, recorded in extras)
    prepare: Callable | None = None


class ModelContract:
    """Class attributes a family declares; the defaults suit a plain image-to-image network."""

    family: ClassVar[str] = ""  # its name; declaring it registers the class in FAMILIES
    fixes: ClassVar[str] = ""  # what it fixes, one line (a zoo entry may say more)
    classical: ClassVar[bool] = False  # a classical algorithm: no weights, nothing to export or quantize
    # what its inputs look like ("under" or "over" exposed): the kind of images calibration, verification
    # and benchmarks render for it; a checkpoint's or zoo entry's training exposure overrides it per model
    exposure_task: ClassVar[str] = "over"
    pad_multiple: ClassVar[int] = 1  # height and width must be multiples of this
    default_form: ClassVar[str] = "full"  # the form it deploys as
    trainer: ClassVar[str] = ""  # "module:function" that trains it (see edgeenhance/train/)
    # int8 needs, read by every int8 exporter: submodules computed in float (weights still int8),
    # channel groups range-equalized before quantization (quantize/equalize.py), and whether the op
    # writing the output computes in float. Submodules of a form's graph may declare them too.
    int8_float_modules: tuple[str, ...] = ()
    int8_equalize: tuple = ()
    int8_float_output: bool = False
    qat_part: ClassVar[str | None] = None  # submodule QAT fake-quantizes (what int8 runtimes execute); None: all

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.__dict__.get("family"):
            FAMILIES[cls.family] = cls


class Enhancer(ModelContract, nn.Module):
    """Base of every network: a family subclasses it, sets ``self.config`` (its constructor arguments,
    stored in checkpoints) and may add deployable forms or a faster deployed path."""

    config: dict

    def deploy_forms(self) -> dict[str, DeployForm]:
        """The deployable graphs by name; every network has ``full`` (image in, image out)."""
        return {"full": DeployForm("full", self)}

    def enhance_deployed(self, img, device="cpu"):
        """One (H, W, 3) float32 photo through the path the model deploys as, or None where that is
        the PyTorch forward itself (evaluation then tiles the full model)."""
        return None


def load_builtin_families() -> dict[str, type]:
    """Import every module of ``edgeenhance.models`` once, so that each family has registered."""
    import importlib
    import pkgutil

    import edgeenhance.models as pkg

    global _LOADED
    if not _LOADED:
        for mod in pkgutil.iter_modules(pkg.__path__):
            if mod.name not in ("base", "registry"):
                importlib.import_module(f"edgeenhance.models.{mod.name}")
        _LOADED = True
    return FAMILIES


_LOADED = False
