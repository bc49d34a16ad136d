"""Calibration and verification images: rendered for the model's task, or read from a folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeenhance.errors import UserError

CALIB_SEED = 2_000_000  # calibration scenes: disjoint from training (0..) and held-out (1_000_000..)
VERIFY_SEED = 3_000_000


def task_exposure(model) -> str:
    """What a model's inputs look like: the bilateral model fixes dark photos, generators bright ones."""
    return "under" if getattr(model, "family", "") == "bilateral" else "over"


RENDER_MAX = 512  # larger sizes are rendered at this size and upsampled: rendering 1080p is slow


def verification_pairs(model, n: int, size: tuple[int, int], seed: int = VERIFY_SEED):
    """``n`` rendered (input, target) pairs for the model's task plus the well-exposed targets of the
    first half as inputs of their own (no target): files are held to the float model on both kinds."""
    pairs = synthetic_pairs(model, n, size, seed)
    return pairs + [(y, None) for _, y in pairs[:max(1, n // 2)]]


def synthetic_pairs(model, n: int, size: tuple[int, int], seed: int):
    """(input, target) pairs at ``size`` for the model's task."""
    from edgeenhance.data.synth import render_pairs
    from edgeenhance.runtime.fused_slice import resize_bilinear

    h, w = size
    s = min(1.0, RENDER_MAX / max(h, w))
    small = (max(8, round(h * s)), max(8, round(w * s)))
    pairs = render_pairs(range(seed, seed + n), task_exposure(model), small, workers=1)
    if small == tuple(size):
        return pairs
    return [(resize_bilinear(x, size), resize_bilinear(y, size)) for x, y in pairs]


def calibration_images(model, calib: str, n: int, size: tuple[int, int]) -> list[np.ndarray]:
    """(H, W, 3) images at the export size: 'synthetic' or a folder of photos (resized). Synthetic
    calibration alternates the model's badly exposed inputs with well-exposed frames: a camera app runs
    the model on every frame, and activation ranges fitted to dark frames alone clipped the grid of a
    well-exposed photo (PSNR(int8, float) 17-19 dB on real well-exposed photos)."""
    if calib == "synthetic":
        return [x if i % 2 == 0 else y for i, (x, y) in enumerate(synthetic_pairs(model, n, size, CALIB_SEED))]
    from edgeenhance.data.imageio import list_images, read_image

    folder = Path(calib)
    if not folder.is_dir():
        raise UserError(f"--calib: '{calib}' is neither 'synthetic' nor a folder")
    files = list_images(folder)[:n]
    if not files:
        raise UserError(f"--calib: no images in {folder}")
    return [_fit(read_image(f), size) for f in files]


def _fit(img, size):
    from edgeenhance.runtime.fused_slice import resize_bilinear

    return resize_bilinear(img, size) if img.shape[:2] != tuple(size) else img


def folder_pairs(folder, n: int, size: tuple[int, int] | None = None, max_side: int = 2048):
    """(photo, None) verification pairs from the first ``n`` photos of a folder (sorted by name): at
    ``size``, or at their own resolution (long side at most ``max_side``) when ``size`` is None."""
    from edgeenhance.data.imageio import list_images, read_image
    from edgeenhance.data.photosets import shrink

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"--verify: '{folder}' is neither 'synthetic' nor a folder")
    files = list_images(folder)[:n]
    if not files:
        raise UserError(f"--verify: no images in {folder}")
    imgs = [read_image(f) for f in files]
    return [(_fit(im, size) if size else shrink(im, max_side), None) for im in imgs]
