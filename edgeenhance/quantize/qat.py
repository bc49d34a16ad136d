"""Quantization-aware fine-tuning: the model learns weights that survive int8.

PyTorch FX graph-mode QAT inserts fake quantization where an int8 runtime rounds: every weight
(symmetric, per output channel as TFLite/XNNPACK default to, or per tensor with ``per_tensor``) and
every activation: conv outputs, additions,
the input (per tensor, asymmetric). Activations are declared as quint8 [0, 255]: the same grid as
int8 [-128, 127] with the zero point moved by 128, and the activation type PyTorch's backend config
accepts (with qint8 activations FX silently inserted no activation fake quantization at all: only
the weights were simulated). A conv followed by ReLU/ReLU6 is observed after the clip, as TFLite
fuses the activation into the conv and calibrates its output range there. Layers a model keeps in
float for int8 (``int8_float_modules``) stay float here too, unless ``all_int8`` asks for a fully
integer graph. The model is fine-tuned to reproduce the original float model's output; the tuned
float weights are then exported and post-training quantized.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _clipped_observer(lo: float, hi: float | None):
    from torch.ao.quantization import MovingAverageMinMaxObserver

    class ClippedMinMaxObserver(MovingAverageMinMaxObserver):
        """Observes the range of ``clamp(x, lo, hi)``: a conv's output as its fused ReLU/ReLU6 leaves it."""

        def forward(self, x):
            super().forward(torch.clamp(x.detach(), lo, hi))
            return x

    return ClippedMinMaxObserver


def _clipping_convs(model: nn.Module) -> dict[str, float | None]:
    """Convs directly followed by ReLU (-> None) or ReLU6 (-> 6.0) in an ``nn.Sequential``."""
    out = {}
    for prefix, mod in model.named_modules():
        if isinstance(mod, nn.Sequential):
            kids = list(mod.named_children())
            for (name, a), (_, b) in zip(kids, kids[1:]):
                if isinstance(a, nn.Conv2d) and isinstance(b, (nn.ReLU, nn.ReLU6)):
                    out[f"{prefix}.{name}" if prefix else name] = 6.0 if isinstance(b, nn.ReLU6) else None
    return out


def _qconfig_mapping(model: nn.Module, all_int8: bool = False, per_tensor: bool = False):
    from torch.ao.quantization import (FakeQuantize, MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver,
                                       QConfig, QConfigMapping)

    def act(observer=MovingAverageMinMaxObserver):
        return FakeQuantize.with_args(observer=observer, quant_min=0, quant_max=255, dtype=torch.quint8,
                                      qscheme=torch.per_tensor_affine)

    if per_tensor:  # one scale per weight tensor (smaller files: no float scale per output channel)
        weight = FakeQuantize.with_args(observer=MovingAverageMinMaxObserver, quant_min=-127, quant_max=127,
                                        dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    else:
        weight = FakeQuantize.with_args(observer=MovingAveragePerChannelMinMaxObserver, quant_min=-127, quant_max=127,
                                        dtype=torch.qint8, qscheme=torch.per_channel_symmetric, ch_axis=0)
    mapping = QConfigMapping().set_global(QConfig(activation=act(), weight=weight))
    floats = [f"{prefix}.{name}" if prefix else name for prefix, mod in model.named_modules()
              for name in (() if all_int8 else getattr(mod, "int8_float_modules", ()))]
    for name in floats:
        mapping.set_module_name(name, None)
    for name, hi in _clipping_convs(model).items():
        if not any(name == f or name.startswith(f + ".") for f in floats):  # a module's own entry would win
            mapping.set_module_name(name, QConfig(activation=act(_clipped_observer(0.0, hi)), weight=weight))
    return mapping


def _input_of(net: nn.Module, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The tensor ``net`` (a submodule of ``model``, or ``model`` itself) receives when ``model`` runs on ``x``."""
    if net is model:
        return x
    seen = []
    handle = net.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    with torch.no_grad():
        model(x)
    handle.remove()
    return seen[0]


def per_tensor_start(model: nn.Module, images: list[np.ndarray]) -> nn.Module:
    """Where QAT with one scale per weight tensor starts: the model range-equalized on ``images``
    (its ``int8_equalize`` groups; same float function), so that QAT tunes the graph the exporter
    quantizes. Checkpoints tuned this way are then exported without equalizing again."""
    groups = getattr(model, "int8_equalize", ())
    if not groups:
        return model
    from edgeenhance.quantize.equalize import equalize

    return equalize(model, groups, [np.ascontiguousarray(np.asarray(im, np.float32).transpose(2, 0, 1))[None]
                                    for im in images])


def qat_finetune(model: nn.Module, images: list[np.ndarray], steps: int = 200, lr: float = 1e-4, batch: int = 4,
                 crop: int = 128, seed: int = 0, progress: bool = True,
                 all_int8: bool = False, per_tensor: bool = False,
                 reference: nn.Module | None = None) -> tuple[nn.Module, list[float]]:
    """Returns (fine-tuned float model, loss history). ``images``: (H, W, 3) training photos.
    Observers follow the activation ranges for the first half of the steps, then are frozen.
    ``per_tensor``: weights simulated with one scale per tensor instead of one per output channel.
    ``reference``: the model whose output is the target (default ``model`` itself)."""
    from torch.ao.quantization import disable_observer
    from torch.ao.quantization.quantize_fx import prepare_qat_fx

    from edgeenhance.data.datasets import CropSampler
    from edgeenhance.train.loop import Loop, adam, optimize

    torch.manual_seed(seed)
    m = getattr(model, "pad_multiple", 1)
    crop = max(m, crop - crop % m)
    sampler = CropSampler(images, crop=crop, seed=seed)
    reference = copy.deepcopy(reference if reference is not None else model).eval().requires_grad_(False)
    tuned = copy.deepcopy(model).train()
    # Only the part int8 runtimes execute is fake-quantized (``qat_part``; the bilateral model's grid
    # network: its full-resolution slicing and division run in float in the deployed grid form).
    part = getattr(model, "qat_part", None)
    net = getattr(tuned, part) if part else tuned
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore")
        student = prepare_qat_fx(net, _qconfig_mapping(net, all_int8, per_tensor), (_input_of(net, tuned, sampler.batch(0, 1)),))
    # The prepared graph wraps the very Parameter objects of ``net`` (fused and QAT modules reuse
    # them), so training it updates ``tuned`` in place, whatever the graph's module names became.
    assert {id(p) for p in student.parameters()} == {id(p) for p in net.parameters()}
    if part:
        setattr(tuned, part, student)
    trained = tuned if part else student
    opt = adam(student.parameters(), lr)
    history = []

    def step(i):
        if i == steps // 2:
            student.apply(disable_observer)
        x = sampler.batch(0, batch)
        with torch.no_grad():
            target = reference(x)
        loss = F.l1_loss(trained(x), target)
        optimize(opt, loss)
        history.append(loss.item())

    # no run folder: nothing to resume (a pass of a few minutes inside `quantize`); Ctrl-C stops it
    Loop(progress=progress).run(step, steps, desc="quantization-aware fine-tuning")
    if part:
        setattr(tuned, part, net)
    return tuned.eval(), history
