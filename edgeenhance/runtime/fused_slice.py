"""Fused full-resolution slicing pass for the bilateral ``grid`` form, compiled with numba.

One pass over the pixels: guide network (or linear guide), luminance bin, trilinear fetch of the 12 affine
coefficients (from a grid pre-resized along x), illumination, divide, clip. Matches
``edgeenhance.models.slicing.reference_slice`` to float rounding. Falls back to the numpy
``fast_slice`` when numba is not installed.
"""

from __future__ import annotations

import numpy as np

from edgeenhance.models.bilateral import MIN_ILLUMINATION

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency, but keep the harness usable without it
    numba = None


def _axis_taps(n_in: int, n_out: int):
    src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, None)
    i0 = np.minimum(np.floor(src).astype(np.int32), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1).astype(np.int32)
    return i0, i1, (src - i0).astype(np.float32)


if numba is not None:
    @numba.njit(parallel=True, fastmath=True, cache=True)
    def _x_table(grid_t, x0, x1, fx):  # pragma: no cover - compiled
        """(gh, gw, C) grid -> (gh, W, C) resized along x."""
        gh, n_c, w = grid_t.shape[0], grid_t.shape[2], x0.shape[0]
        tab = np.empty((gh, w, n_c), np.float32)
        for i in numba.prange(gh):
            for x in range(w):
                a, b, f = x0[x], x1[x], fx[x]
                for c in range(n_c):
                    tab[i, x, c] = grid_t[i, a, c] * (1 - f) + grid_t[i, b, c] * f
        return tab

    @numba.njit(parallel=True, fastmath=True, cache=True)
    def _resize_kernel(img, y0, y1, fy, x0, x1, fx, out):  # pragma: no cover - compiled
        for y in numba.prange(out.shape[0]):
            a, b, wy = y0[y], y1[y], fy[y]
            for x in range(out.shape[1]):
                c, d, wx = x0[x], x1[x], fx[x]
                for k in range(3):
                    top = img[a, c, k] * (1 - wx) + img[a, d, k] * wx
                    bot = img[b, c, k] * (1 - wx) + img[b, d, k] * wx
                    out[y, x, k] = top * (1 - wy) + bot * wy

    @numba.njit(parallel=True, fastmath=True, cache=True)
    def _kernel(img, tab, y0, y1, fy, w1, b1, w2, b2, bins, min_s, linear, out):  # pragma: no cover - compiled
        h, w = img.shape[0], img.shape[1]
        hidden = w1.shape[0]
        for y in numba.prange(h):
            ya, yb, wy = y0[y], y1[y], fy[y]
            co = np.empty(12, np.float32)
            acc = np.empty(w, np.float32)
            # float32 constants throughout: a float64 literal would promote the whole pixel loop.
            fb = np.float32(bins)
            half, zero, one = np.float32(0.5), np.float32(0.0), np.float32(1.0)
            top = fb - one
            if linear:  # clamp(w . rgb + b, 0, 1): no exp per pixel
                a0, a1, a2, ab = w1[0, 0], w1[0, 1], w1[0, 2], b1[0]
                for x in range(w):
                    g = min(max(a0 * img[y, x, 0] + a1 * img[y, x, 1] + a2 * img[y, x, 2] + ab, zero), one)
                    acc[x] = min(max(fb * g - half, zero), top)
            else:
                # Guide for the whole row first: a plain loop the compiler can vectorize.
                for x in range(w):
                    acc[x] = b2[0]
                for k in range(hidden):
                    a0, a1, a2, ab, ww = w1[k, 0], w1[k, 1], w1[k, 2], b1[k], w2[0, k]
                    for x in range(w):
                        v = a0 * img[y, x, 0] + a1 * img[y, x, 1] + a2 * img[y, x, 2] + ab
                        acc[x] += ww * max(v, zero)
                for x in range(w):
                    z = fb / (one + np.exp(-acc[x])) - half
                    acc[x] = min(max(z, zero), top)
            wy1 = one - wy
            for x in range(w):
                z = acc[x]
                z0 = min(int(z), bins - 2)
                fz = z - np.float32(z0)
                fz1 = one - fz
                w00 = wy1 * fz1
                w01 = wy1 * fz
                w10 = wy * fz1
                w11 = wy * fz
                base0, base1 = z0 * 12, z0 * 12 + 12
                for k in range(12):
                    co[k] = (w00 * tab[ya, x, base0 + k] + w01 * tab[ya, x, base1 + k]
                             + w10 * tab[yb, x, base0 + k] + w11 * tab[yb, x, base1 + k])
                r, g, b = img[y, x, 0], img[y, x, 1], img[y, x, 2]
                for c in range(3):
                    s = max(co[4 * c] * r + co[4 * c + 1] * g + co[4 * c + 2] * b + co[4 * c + 3], min_s)
                    out[y, x, c] = min(max(img[y, x, c] / s, zero), one)


def fused_slice(img: np.ndarray, grid: np.ndarray, p: dict) -> np.ndarray:
    """img (H, W, 3) float32 in [0, 1], grid (12*bins, gh, gw) -> enhanced (H, W, 3)."""
    if numba is None:
        from edgeenhance.models.slicing import fast_slice

        return fast_slice(img, grid, p)
    h, w = img.shape[:2]
    bins = int(p["bins"])
    w1, b1 = np.asarray(p["w1"], np.float32), np.asarray(p["b1"], np.float32)
    w2, b2 = np.asarray(p["w2"], np.float32), np.asarray(p["b2"], np.float32)
    # The kernel indexes without bounds checks: shapes that disagree would read out of bounds.
    hidden = w1.shape[0] if w1.ndim == 2 else -1
    if (img.ndim != 3 or img.shape[2] != 3 or grid.ndim != 3 or bins < 2 or grid.shape[0] != 12 * bins
            or w1.shape != (hidden, 3) or b1.shape != (hidden,) or w2.shape != (1, hidden) or b2.shape != (1,)
            or (p.get("guide") == "linear" and hidden != 1)):
        raise ValueError(f"fused_slice: inconsistent shapes (image {img.shape}, grid {grid.shape}, bins {bins}, "
                         f"w1 {w1.shape}, b1 {b1.shape}, w2 {w2.shape}, b2 {b2.shape})")
    gh, gw = grid.shape[1:]
    x0, x1, fx = _axis_taps(gw, w)
    # (gh, W, bins*12): the grid resized along x only; rows and bins are fetched per pixel.
    tab = _x_table(np.ascontiguousarray(np.asarray(grid, np.float32).transpose(1, 2, 0)), x0, x1, fx)
    y0, y1, fy = _axis_taps(gh, h)
    out = np.empty((h, w, 3), np.float32)
    _kernel(np.ascontiguousarray(img, np.float32), tab, y0, y1, fy, w1, b1, w2, b2, bins,
            np.float32(p.get("min_illumination", MIN_ILLUMINATION)), p.get("guide", "mlp") == "linear", out)
    return out


def resize_bilinear(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) -> (h, w, 3), bilinear, half-pixel centres, no antialiasing: the same sampling as
    ``F.interpolate(..., mode='bilinear', align_corners=False)`` inside the PyTorch model."""
    h, w = size
    y0, y1, fy = _axis_taps(img.shape[0], h)
    x0, x1, fx = _axis_taps(img.shape[1], w)
    if numba is not None:
        out = np.empty((h, w, 3), np.float32)
        _resize_kernel(np.ascontiguousarray(img, np.float32), y0, y1, fy, x0, x1, fx, out)
        return out
    flat = img.reshape(-1, 3)
    iw = img.shape[1]

    def at(ys, xs):
        return flat[(ys[:, None] * iw + xs[None, :]).ravel()].reshape(h, w, 3)

    fy, fx = fy[:, None, None], fx[None, :, None]
    top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx
    bot = at(y1, x0) * (1 - fx) + at(y1, x1) * fx
    return np.ascontiguousarray(top * (1 - fy) + bot * fy, dtype=np.float32)
