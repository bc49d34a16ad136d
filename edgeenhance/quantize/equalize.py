"""Cross-layer range equalization before int8 quantization (after Nagel et al. 2019, "Data-Free
Quantization Through Weight Equalization and Bias Correction").

An activation tensor gets one int8 scale, set by its widest channel: a channel with a tenth of that
range gets a tenth of the levels. Where a channel is produced by convolutions followed by ReLU or
ReLU6 and read only by convolutions, multiplying the producers' output channel c by s_c and
dividing the consumers' input channel c by s_c leaves the float model's function unchanged. ReLU
commutes with any positive scaling. ReLU6 commutes while the scaled channel stays under 6: channels
that reach the ceiling on the calibration images keep s_c = 1, and the others are scaled to one
common calibration maximum of at most 2 (``HEADROOM``: a photo would have to drive a channel 3x past
its calibration maximum before the scaled model clips where the original does not; wider channels
are scaled down, which only adds headroom). Scale-ups are capped at ``max_scale``. Depthwise
consumers take the division in their own per-channel weights, so no weight loses precision.

A model declares its groups as ``int8_equalize``: ``((producer_conv, its_activation), ...),
(consumer_conv, ...)`` by module name. Exporters verify the result against the original model.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

RELU6_CEILING = 6.0
HEADROOM = 3.0  # equalized channels stay this many times under the ReLU6 ceiling on calibration data


def channel_max(model: nn.Module, batches, module_names) -> dict[str, torch.Tensor]:
    """Per-channel maximum of each named module's output over calibration batches (NCHW), one pass."""
    seen: dict[str, torch.Tensor] = {}

    def hook(name):
        def record(_m, _i, out):
            mx = out.detach().amax(dim=(0, 2, 3))
            seen[name] = mx if name not in seen else torch.maximum(seen[name], mx)
        return record

    hooks = [model.get_submodule(n).register_forward_hook(hook(n)) for n in module_names]
    try:
        with torch.no_grad():
            for b in batches:
                model(torch.as_tensor(np.asarray(b, np.float32)))
    finally:
        for h in hooks:
            h.remove()
    return seen


def equalization_scales(maxima: torch.Tensor, max_scale: float = 16.0) -> torch.Tensor:
    """s_c giving every unsaturated channel one common maximum: the widest one's, at most
    6 / HEADROOM; scale-ups capped at ``max_scale``. Saturated and dead channels keep 1."""
    free = (maxima > 1e-6) & (maxima < RELU6_CEILING * 0.98)
    if not free.any():
        return torch.ones_like(maxima)
    target = torch.clamp(maxima[free].max(), max=RELU6_CEILING / HEADROOM)
    return torch.where(free, (target / maxima.clamp(min=1e-12)).clamp(max=max_scale), torch.ones_like(maxima))


def equalize(model: nn.Module, groups, batches, max_scale: float = 16.0) -> nn.Module:
    """A copy of ``model`` with each group's channels range-equalized on ``batches``."""
    m = copy.deepcopy(model).eval()
    # One calibration pass on the original model serves every group: equalizing a group changes
    # only that group's own tensors (its consumers undo the scaling), never another group's.
    seen = channel_max(m, batches, sorted({act for producers, _ in groups for _, act in producers}))
    for producers, consumers in groups:
        maxima = torch.stack([seen[act] for _, act in producers]).amax(0)
        s = equalization_scales(maxima, max_scale)
        with torch.no_grad():
            for conv, _ in producers:
                c = m.get_submodule(conv)
                c.weight.mul_(s.view(-1, 1, 1, 1))
                c.bias.mul_(s)
            for name in consumers:
                c = m.get_submodule(name)
                if c.groups == c.in_channels and c.groups > 1:  # depthwise: channel c is weight row c
                    c.weight.div_(s.view(-1, 1, 1, 1))
                else:
                    c.weight.div_(s.view(1, -1, 1, 1))
    return m
