"""GAN pieces after pytorch-CycleGAN-and-pix2pix: losses and the image pool (its LR schedule is
``train.loop.linear_decay``)."""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F


def gan_loss(pred: torch.Tensor, real: bool, mode: str = "lsgan") -> torch.Tensor:
    """Least-squares (default) or the original log-likelihood form on logits."""
    target = torch.ones_like(pred) if real else torch.zeros_like(pred)
    if mode == "lsgan":
        return F.mse_loss(pred.float(), target.float())
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(pred.float(), target.float())
    raise ValueError(f"unknown GAN mode '{mode}' (lsgan or vanilla)")


class ImagePool:
    """History of generated images (Shrivastava et al.): with probability 1/2 the discriminator
    sees an older fake instead of the new one, once the pool is full."""

    def __init__(self, size: int = 50, seed: int = 0):
        self.size, self.images = size, []
        self.rng = random.Random(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for im in images.detach():
            im = im[None]
            if len(self.images) < self.size:
                self.images.append(im)
                out.append(im)
            elif self.rng.random() > 0.5:
                i = self.rng.randrange(self.size)
                out.append(self.images[i].clone())
                self.images[i] = im
            else:
                out.append(im)
        return torch.cat(out, 0)
