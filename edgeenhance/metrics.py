"""Image quality metrics on (H, W, 3) float arrays in [0, 1]."""

from __future__ import annotations

import numpy as np


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (Wang et al. 2004): Gaussian window sigma 1.5, averaged over channels."""
    from scipy.ndimage import gaussian_filter

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    c1, c2 = 0.01**2, 0.03**2
    vals = []
    for c in range(a.shape[2] if a.ndim == 3 else 1):
        x, y = (a[..., c], b[..., c]) if a.ndim == 3 else (a, b)
        f = lambda t: gaussian_filter(t, 1.5, truncate=3.5)  # noqa: E731
        mx, my = f(x), f(y)
        sxx, syy, sxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
        m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        vals.append(m[5:-5, 5:-5].mean() if min(x.shape) > 10 else m.mean())
    return float(np.mean(vals))


def exposedness(img: np.ndarray) -> float:
    """No-reference score in [0, 1]: mean well-exposedness (Mertens et al. 2007), i.e. how close
    pixel values sit to mid-grey, exp(-(v - 0.5)^2 / (2 * 0.2^2)) averaged over pixels and channels.
    Higher is better exposed; dark or clipped photos score low."""
    return float(np.exp(-((np.asarray(img, np.float64) - 0.5) ** 2) / (2 * 0.2**2)).mean())


def max_abs_error(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
