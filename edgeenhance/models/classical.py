"""Shared tensor interface of the classical (numpy) baselines, so they plug in where networks do."""

from __future__ import annotations

import numpy as np

from edgeenhance.models.base import ModelContract


class ClassicalEnhancer(ModelContract):
    """A numpy algorithm with the models' tensor interface: no weights, nothing to train or export."""

    classical = True
    config: dict = {}

    def enhance(self, img: np.ndarray) -> np.ndarray:  # (H, W, 3) -> (H, W, 3)
        raise NotImplementedError

    def __call__(self, x):
        """(B, 3, H, W) tensor in, the same out, like the learned models."""
        import torch

        out = [self.enhance(im.permute(1, 2, 0).cpu().numpy()) for im in x]
        return torch.from_numpy(np.stack(out).transpose(0, 3, 1, 2)).to(x.device)

    def eval(self):
        return self
