"""In-memory training datasets with random crops and flips, from files or from the renderer."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from edgeenhance.data.imageio import read_image
from edgeenhance.errors import UserError


def load_images(paths: list[Path], skip_bad: bool = False) -> list[np.ndarray]:
    out = []
    for p in paths:
        try:
            out.append(read_image(p))
        except UserError as e:
            if not skip_bad:
                raise
            warnings.warn(f"{e}; skipped", stacklevel=2)
    return out


def load_pairs(pairs, skip_bad: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for a, b in pairs:
        try:
            x, y = read_image(a), read_image(b)
        except UserError as e:
            if not skip_bad:
                raise
            warnings.warn(f"{e}; skipped", stacklevel=2)
            continue
        if x.shape != y.shape:
            msg = f"{a}: size {x.shape[1]}x{x.shape[0]} differs from its target {b} ({y.shape[1]}x{y.shape[0]})"
            if not skip_bad:
                raise UserError(msg)
            warnings.warn(msg + "; skipped", stacklevel=2)
            continue
        out.append((x, y))
    if not out:
        raise UserError("no usable image pairs")
    return out


def _fit(img: np.ndarray, crop: int) -> np.ndarray:
    """Upscale images smaller than the crop (nearest, cheap) so that a crop always fits."""
    h, w = img.shape[:2]
    if h >= crop and w >= crop:
        return img
    s = crop / min(h, w)
    ys = np.minimum((np.arange(int(np.ceil(h * s))) / s).astype(int), h - 1)
    xs = np.minimum((np.arange(int(np.ceil(w * s))) / s).astype(int), w - 1)
    return img[ys][:, xs]


class CropSampler:
    """Random aligned crops (with flips) from lists of images, as (B, 3, crop, crop) tensors."""

    def __init__(self, *image_lists, crop: int = 256, seed: int = 0, flips: bool = True):
        self.lists = [[tuple(_fit(i, crop) for i in im) if isinstance(im, tuple) else _fit(im, crop) for im in lst]
                      for lst in image_lists]
        self.crop, self.flips = crop, flips
        self.rng = np.random.default_rng(seed)

    def _crop(self, imgs):
        h, w = imgs[0].shape[:2]
        y, x = self.rng.integers(0, h - self.crop + 1), self.rng.integers(0, w - self.crop + 1)
        out = [im[y:y + self.crop, x:x + self.crop] for im in imgs]
        if self.flips and self.rng.random() < 0.5:
            out = [im[:, ::-1] for im in out]
        return out

    def paired_batch(self, batch: int):
        """Aligned crops of (input, target) pairs; expects one list of pairs."""
        import torch

        pairs = self.lists[0]
        idx = self.rng.integers(0, len(pairs), batch)
        crops = [self._crop(list(pairs[i])) for i in idx]
        return tuple(torch.from_numpy(np.stack([c[k].transpose(2, 0, 1) for c in crops]).astype(np.float32))
                     for k in range(2))

    def batch(self, which: int, batch: int):
        """Crops from image list ``which`` (for unpaired domains)."""
        import torch

        lst = self.lists[which]
        idx = self.rng.integers(0, len(lst), batch)
        return torch.from_numpy(np.stack([self._crop([lst[i]])[0].transpose(2, 0, 1) for i in idx]).astype(np.float32))
