"""Calibration and verification images: rendered for the model's task, or read from a folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeenhance.errors import UserError

CALIB_SEED = 2_000_000  # calibration scenes: disjoint from training (0..) and held-out (1_000_000..)
VERIFY_SEED = 3_000_000


def task_exposure(model) -> str:
    """What a model's inputs look like (under- or over-exposed): the model says (``exposure_task``: a
    class default, overridden by its checkpoint's or zoo entry's training exposure)."""
    return getattr(model, "exposure_task", "over")


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
    calibration cycles through the model's badly exposed rendered inputs, well-exposed frames (a camera
    app runs the model on every frame, and activation ranges fitted to dark frames alone clipped the
    grid of a well-exposed photo: PSNR(int8, float) 17-19 dB on real well-exposed photos) and, for
    over-exposure models, extreme exposures synthesized from those (``_extreme``)."""
    if calib == "synthetic":
        pairs, exposure = synthetic_pairs(model, n, size, CALIB_SEED), task_exposure(model)
        if exposure not in EXTREME_EV:
            return [x if i % 2 == 0 else y for i, (x, y) in enumerate(pairs)]
        return [x if i % 3 == 0 else y if i % 3 == 1 else _extreme(y, exposure, CALIB_SEED + i)
                for i, (x, y) in enumerate(pairs)]
    from edgeenhance.data.imageio import list_images, read_image

    folder = Path(calib)
    if not folder.is_dir():
        raise UserError(f"--calib: '{calib}' is neither 'synthetic' nor a folder")
    files = list_images(folder)[:n]
    if not files:
        raise UserError(f"--calib: no images in {folder}")
    return [_fit(read_image(f), size) for f in files]


# Over-exposure models also calibrate on frames synthesized at +2.5..+4 EV: rendered over-exposed inputs
# alone fall short of nearly white real frames (SICE, mean luminance 0.96). On the 94 real validation
# photos of bilateral-over this raised PSNR(int8, float) from 59.5 to 62.3 dB mean (the worst frame's
# clipping was then fixed by a float output op). For the low-light model, -7..-5 EV frames lowered it.
EXTREME_EV = {"over": (2.5, 4.0)}


def _extreme(img: np.ndarray, exposure: str, seed: int) -> np.ndarray:
    """A well-exposed frame pushed to the far end of the model's task by the camera-model synthesis
    (``data.exposure``: linear light, clipping at sensor white, tone curve)."""
    from edgeenhance.data.exposure import synthesize

    return synthesize(img, np.random.default_rng(seed), exposure, EXTREME_EV[exposure])[0]


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
