"""Quantization-aware fine-tuning: the model learns weights that survive int8.

PyTorch FX graph-mode QAT inserts fake quantization where an int8 runtime rounds: every weight
(per output channel, symmetric, as TFLite/XNNPACK) and every activation after fused conv+ReLU,
additions and the input (per tensor, asymmetric int8). Layers a model keeps in float for int8
(``int8_float_modules``) stay float here too, unless ``all_int8`` asks for a fully integer graph.
The model is fine-tuned to reproduce the original float model's output; the tuned float weights are
then exported and post-training quantized.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _qconfig_mapping(model: nn.Module, all_int8: bool = False):
    from torch.ao.quantization import (FakeQuantize, MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver,
                                       QConfig, QConfigMapping)

    act = FakeQuantize.with_args(observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=torch.qint8,
                                 qscheme=torch.per_tensor_affine)
    weight = FakeQuantize.with_args(observer=MovingAveragePerChannelMinMaxObserver, quant_min=-127, quant_max=127,
                                    dtype=torch.qint8, qscheme=torch.per_channel_symmetric, ch_axis=0)
    mapping = QConfigMapping().set_global(QConfig(activation=act, weight=weight))
    for prefix, mod in model.named_modules():
        for name in () if all_int8 else getattr(mod, "int8_float_modules", ()):
            mapping.set_module_name(f"{prefix}.{name}" if prefix else name, None)
    return mapping


def qat_finetune(model: nn.Module, images: list[np.ndarray], steps: int = 200, lr: float = 1e-4, batch: int = 4,
                 crop: int = 128, seed: int = 0, progress: bool = True,
                 all_int8: bool = False) -> tuple[nn.Module, list[float]]:
    """Returns (fine-tuned float model, loss history). ``images``: (H, W, 3) training photos.
    Observers follow the activation ranges for the first half of the steps, then are frozen."""
    from torch.ao.quantization import disable_observer
    from torch.ao.quantization.quantize_fx import prepare_qat_fx
    from tqdm import tqdm

    from edgeenhance.data.datasets import CropSampler

    torch.manual_seed(seed)
    m = getattr(model, "pad_multiple", 1)
    crop = max(m, crop - crop % m)
    sampler = CropSampler(images, crop=crop, seed=seed)
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    tuned = copy.deepcopy(model).train()
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore")
        student = prepare_qat_fx(tuned, _qconfig_mapping(model, all_int8), (sampler.batch(0, 1),))
    # The prepared graph wraps the very Parameter objects of ``tuned`` (fused and QAT modules reuse
    # them), so training it updates ``tuned`` in place, whatever the graph's module names became.
    assert {id(p) for p in student.parameters()} == {id(p) for p in tuned.parameters()}
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    history = []
    for step in tqdm(range(steps), desc="quantization-aware fine-tuning", unit="step", disable=not progress):
        if step == steps // 2:
            student.apply(disable_observer)
        x = sampler.batch(0, batch)
        with torch.no_grad():
            target = reference(x)
        loss = F.l1_loss(student(x), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append(loss.item())
    return tuned.eval(), history
