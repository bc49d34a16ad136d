"""Count multiply-accumulates of conv and linear layers by running the model once with hooks."""

from __future__ import annotations

import torch
from torch import nn


def count_macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    """MACs of one forward pass on a zero input of ``shape`` (e.g. (1, 3, 256, 256)).

    Conv2d: out_elements * (in_channels / groups) * kh * kw. ConvTranspose2d: in_elements *
    (out_channels / groups) * kh * kw. Linear: batch * in * out. Elementwise ops are not counted.
    """
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, nn.ConvTranspose2d):
            kh, kw = mod.kernel_size
            total += inp[0].numel() * (mod.out_channels // mod.groups) * kh * kw
        elif isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            total += out.numel() * (mod.in_channels // mod.groups) * kh * kw
        elif isinstance(mod, nn.Linear):
            total += inp[0].numel() // mod.in_features * mod.in_features * mod.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    try:
        p = next(model.parameters(), None)
        with torch.no_grad():
            model(torch.zeros(shape, device=p.device if p is not None else "cpu"))
    finally:
        for h in handles:
            h.remove()
    return total


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def human(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return str(int(n))
