"""Quantization-aware fine-tuning: the model learns weights that survive int8.

Fake quantization (straight-through estimator) is put on every conv/linear weight (per channel,
symmetric) and on every conv/linear output (per tensor, running min/max), and the model is
fine-tuned to reproduce the original float model's output. The tuned float weights are then
exported and post-training quantized as usual.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class _ActObserver:
    def __init__(self, momentum=0.9):
        self.lo = self.hi = None
        self.m = momentum

    def __call__(self, module, inp, out):
        lo, hi = out.detach().min(), out.detach().max()
        if self.lo is None:
            self.lo, self.hi = lo, hi
        else:
            self.lo = self.m * self.lo + (1 - self.m) * lo
            self.hi = self.m * self.hi + (1 - self.m) * hi
        scale = torch.clamp((self.hi - self.lo) / 255.0, min=1e-8).float()
        zp = torch.clamp(torch.round(-128 - self.lo / scale), -128, 127).int()
        return torch.fake_quantize_per_tensor_affine(out, scale, zp, -128, 127)


def _weight_fq(module, inp):
    w = module.weight
    flat = w.detach().reshape(w.shape[0], -1)
    scale = (flat.abs().amax(1).clamp(min=1e-8) / 127.0).float()
    zp = torch.zeros(w.shape[0], dtype=torch.int32)
    module._fq_weight = torch.fake_quantize_per_channel_affine(w, scale, zp, 0, -127, 127)


def _quantized_forward(module):
    orig = module.forward

    def forward(x):
        saved = module.weight
        del module._parameters["weight"]
        module.weight = module._fq_weight
        try:
            return orig(x)
        finally:
            del module.weight
            module._parameters["weight"] = saved

    return forward


def qat_finetune(model: nn.Module, images: list[np.ndarray], steps: int = 200, lr: float = 1e-4, batch: int = 4,
                 crop: int = 128, seed: int = 0, progress: bool = True) -> tuple[nn.Module, list[float]]:
    """Returns (fine-tuned float model, loss history). ``images``: (H, W, 3) training photos."""
    from tqdm import tqdm

    from edgeenhance.data.datasets import CropSampler

    torch.manual_seed(seed)
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    student = copy.deepcopy(model).train()
    handles = []
    for mod in student.modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            handles.append(mod.register_forward_pre_hook(_weight_fq))
            handles.append(mod.register_forward_hook(_ActObserver()))
            mod.forward = _quantized_forward(mod)
    m = getattr(model, "pad_multiple", 1)
    crop = max(m, crop - crop % m)
    sampler = CropSampler(images, crop=crop, seed=seed)
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    history = []
    for _ in tqdm(range(steps), desc="quantization-aware fine-tuning", unit="step", disable=not progress):
        x = sampler.batch(0, batch)
        with torch.no_grad():
            target = reference(x)
        loss = F.l1_loss(student(x), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append(loss.item())
    for h in handles:
        h.remove()
    tuned = copy.deepcopy(model)
    tuned.load_state_dict({k: v for k, v in student.state_dict().items()})
    return tuned.eval(), history
