"""One options object per trainer, built once by the CLI (or a script) and passed to the trainer.

Their defaults are the CLI's, which reads them from here. No torch here: the CLI imports this module
to build its parsers.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

SAVE_EVERY_S = 300.0  # a crash or a kill -9 loses at most this much training


@dataclass(kw_only=True)
class RunConfig:
    """What every training run takes."""

    resume: bool = False  # continue from OUT/last.safetensors, exactly as the uninterrupted run would have
    save_every_s: float = SAVE_EVERY_S  # also write OUT/last.safetensors this often
    seed: int = 0  # initialisation and data
    device: str | None = None  # cpu, cuda, or None/auto: cuda when present
    progress: bool = True  # progress bars
    # several processes (torchrun): the learning rate times the number of processes ("linear") or as given
    lr_scale: str = "none"
    compile: bool = False  # torch.compile the trained networks (eager with a warning where it fails)
    amp: bool | None = None  # bf16 autocast; None: on a GPU


@dataclass(kw_only=True)
class BilateralConfig(RunConfig):
    """`train bilateral` (see ``train.bilateral.train_bilateral``)."""

    data: str = "synthetic"  # a folder of photos, a paired dataset folder, or 'synthetic'
    layout: str | None = None  # None: detected
    exposure: str = "under"  # or 'over'
    zero_reference: bool = False  # no targets: zero-reference losses only
    zero_ref: tuple = ()  # folders of real badly exposed photos without targets
    zero_ref_weight: float = 0.1
    zero_ref_level: float = 0.5
    zero_ref_one_sided: bool = False  # the exposure term only lifts patches darker than the level
    # the zero-reference losses only on crops darker than this mean luminance (the no-new-clipping penalty on all)
    zero_ref_below: float = 1.0
    zero_ref_highlights: float = 1.0  # ... and on crops whose brightest 2% are above this (1: none)
    # the zero-reference losses also lift the darkest 30% of each such crop to at least this mean luminance (0: off)
    zero_ref_shadows: float = 0.0
    clip_weight: float = 2.0  # penalty on pushing pixels that were not bright past white (pairs and real frames)
    highlights: float = 0.0  # share of under-exposed pairs whose highlights were brighter than the photo's white
    ev_range: tuple | None = None  # (lo, hi) EV of the synthesized exposure errors; None: the kind's (under -6..-1)
    teacher: Any = None  # a CycleGAN generator (checkpoint path or model) whose outputs on zero_ref are targets
    teacher_weight: float = 1.0
    render_mix: float = 0.0  # fraction of each batch taken from rendered pairs next to real photos
    brackets: tuple = ()  # folders of exposure brackets (SICE): dark frames paired with their bracket's fusion
    bracket_mix: float = 0.25  # fraction of each batch taken from the bracket pairs
    steps: int = 3000
    batch: int = 8
    crop: int = 192
    lr: float = 1e-3  # Adam, cosine-decayed to 5%
    n_images: int = 512  # rendered training pairs
    val_images: int = 24
    val_every: int = 250
    workers: int = 1  # data-loading processes for photo folders
    ema: float = 0.0  # validate and save an exponential moving average of the weights with this decay (0: off)
    skip_bad: bool = False  # skip unreadable or unmatched dataset files instead of stopping
    model_config: dict | None = None  # BilateralEnhancer options
    init: Any = None  # start from this bilateral model (zoo name, checkpoint path or model): fine-tuning


@dataclass(kw_only=True)
class CycleGANConfig(RunConfig):
    """`train cyclegan` (see ``train.cyclegan.train_cyclegan``)."""

    epochs: int = 10  # half at constant LR, half decaying linearly to 0
    steps_per_epoch: int | None = None  # None: the larger domain's images / batch
    batch: int = 4
    crop: int = 256
    lr: float = 2e-4
    lam: float = 10.0  # cycle-consistency weight
    lam_id: float = 0.5  # identity weight, relative to ``lam``
    gan_mode: str = "lsgan"  # or 'vanilla'
    pool_size: int = 50
    ngf: int = 64
    n_blocks: int = 9
    ndf: int = 64


@dataclass(kw_only=True)
class DistillConfig(RunConfig):
    """`distill` (see ``train.distill.distill``)."""

    student_size: str = "small"
    steps: int = 3000
    batch: int = 8
    crop: int = 256
    lr: float = 2e-3  # Adam, cosine-decayed to 2%
    w_feat: float = 1.0  # feature matching
    w_adv: float = 0.0  # adversarial term with ``discriminator``
    discriminator: Any = None  # checkpoint path or model
    init: Any = None  # start from this student (checkpoint path or model)
    cache_teacher: bool = False  # teacher run once per image up front, pixel L1 only
    val_every: int = 250


def configured(kind: type, config=None, options: dict | None = None):
    """``config`` (default: ``kind()``) with ``options`` (field=value keywords) applied."""
    config = kind() if config is None else config
    if not isinstance(config, kind):
        raise TypeError(f"expected a {kind.__name__}, got {type(config).__name__}")
    unknown = set(options or {}) - {f.name for f in fields(kind)}
    if unknown:
        raise TypeError(f"{kind.__name__} has no option {', '.join(sorted(unknown))}")
    return replace(config, **(options or {}))
