"""Reference slicing of a bilateral grid in numpy: the runtime and the Android app reproduce it.

``reference_slice`` is written for clarity (it follows the PyTorch model op for op);
``fast_slice`` is the fused full-resolution pass that the runtime harness uses.
"""

from __future__ import annotations

import numpy as np

from edgeenhance.models.bilateral import MIN_ILLUMINATION


def guide_map(img: np.ndarray, p: dict) -> np.ndarray:
    """img (H, W, 3) -> guide (H, W) in [0, 1]: sigmoid(w2 relu(w1 x + b1) + b2), or for
    ``guide: linear`` clamp(w1 x + b1, 0, 1)."""
    w1, b1 = np.asarray(p["w1"], np.float32), np.asarray(p["b1"], np.float32)
    if p.get("guide", "mlp") == "linear":
        return np.clip((img @ w1.T + b1)[..., 0], 0, 1)
    w2, b2 = np.asarray(p["w2"], np.float32), np.asarray(p["b2"], np.float32)
    hid = np.maximum(img @ w1.T + b1, 0)
    return 1.0 / (1.0 + np.exp(-(hid @ w2.T + b2)[..., 0]))


def resize_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) bilinear resize matrix, half-pixel centres (align_corners=False)."""
    src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, None)
    i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    f = (src - i0).astype(np.float32)
    m = np.zeros((n_out, n_in), np.float32)
    np.add.at(m, (np.arange(n_out), i0), 1 - f)
    np.add.at(m, (np.arange(n_out), i1), f)
    return m


def reference_slice(img: np.ndarray, grid: np.ndarray, p: dict) -> np.ndarray:
    """img (H, W, 3) in [0, 1], grid (12*bins, gh, gw) -> enhanced (H, W, 3)."""
    h, w = img.shape[:2]
    bins = int(p["bins"])
    g = guide_map(img, p)
    z = np.clip(g * bins - 0.5, 0, bins - 1)
    wy, wx = resize_weights(grid.shape[1], h), resize_weights(grid.shape[2], w)
    coeffs = np.zeros((12, h, w), np.float32)
    for d in range(bins):
        tent = np.maximum(1 - np.abs(z - d), 0)
        up = np.einsum("yi,cij,xj->cyx", wy, grid[12 * d:12 * (d + 1)], wx)
        coeffs += up * tent
    return _apply(img, coeffs.transpose(1, 2, 0), p)


def _apply(img, coeffs, p):
    a = coeffs.reshape(*coeffs.shape[:-1], 3, 4)
    s = (a[..., :3] * img[..., None, :]).sum(-1) + a[..., 3]
    s = np.maximum(s, p.get("min_illumination", MIN_ILLUMINATION))
    return np.clip(img / s, 0, 1).astype(np.float32)


def fast_slice(img: np.ndarray, grid: np.ndarray, p: dict) -> np.ndarray:
    """Same result as ``reference_slice``, computed per pixel from the two nearest luminance bins
    only: the grid is first resized along x (cheap), then each pixel gathers 2 rows x 2 bins."""
    h, w = img.shape[:2]
    bins = int(p["bins"])
    gh = grid.shape[1]
    g = guide_map(img.reshape(-1, 3), p).reshape(h, w)
    z = np.clip(g * bins - 0.5, 0, bins - 1)
    z0 = np.minimum(z.astype(np.int32), bins - 2)
    fz = (z - z0).astype(np.float32)
    # Along x: (gh, w, bins, 12) table.
    wx = resize_weights(grid.shape[2], w)
    tab = np.einsum("dcij,xj->ixdc", grid.reshape(bins, 12, gh, -1), wx).astype(np.float32)
    src = np.clip((np.arange(h) + 0.5) * (gh / h) - 0.5, 0, None)
    y0 = np.minimum(np.floor(src).astype(np.int32), gh - 1)
    y1 = np.minimum(y0 + 1, gh - 1)
    fy = (src - y0).astype(np.float32)[:, None, None]
    xs = np.arange(w)[None, :]
    flat = tab.reshape(gh * w * bins, 12)

    def gather(yi, d):
        return flat[(yi[:, None] * w + xs) * bins + d]

    coeffs = (1 - fy) * ((1 - fz[..., None]) * gather(y0, z0) + fz[..., None] * gather(y0, z0 + 1)) \
        + fy * ((1 - fz[..., None]) * gather(y1, z0) + fz[..., None] * gather(y1, z0 + 1))
    return _apply(img, coeffs, p)


def make_test_vectors(seed: int = 0, h: int = 7, w: int = 9, bins: int = 4, gsize: int = 4, guide: str = "mlp") -> dict:
    """A small shared test vector (image, normalized grid, guide, expected output) that the Python
    tests and the Android app's unit tests both check their slicing against (``guide``: the guide
    network's kind, mlp or linear)."""
    rng = np.random.default_rng(seed)
    img = rng.random((h, w, 3)).astype(np.float32)
    grid = (rng.standard_normal((12 * bins, gsize, gsize)) * 0.1).astype(np.float32)
    grid.reshape(bins, 3, 4, gsize, gsize)[:, :, 3] += 0.6  # plausible illumination offsets
    for c in range(3):
        grid.reshape(bins, 3, 4, gsize, gsize)[:, c, c] += 0.3
    p = {"w1": (rng.standard_normal((4, 3)) * 0.8).tolist(), "b1": (rng.standard_normal(4) * 0.1).tolist(),
         "w2": (rng.standard_normal((1, 4)) * 0.8).tolist(), "b2": [0.05], "bins": bins,
         "min_illumination": MIN_ILLUMINATION}
    if guide == "linear":  # some pixels fall outside [0, 1] before the clamp, to exercise it
        p.update(guide="linear", w1=[[0.9, 0.9, -0.6]], b1=[-0.1], w2=[[1.0]], b2=[0.0])
    scale = (1.0 / (np.abs(grid).reshape(12 * bins, -1).max(1) + 1e-3)).astype(np.float32)
    offset = grid.reshape(12 * bins, -1).mean(1).astype(np.float32)
    normalized = (grid - offset[:, None, None]) * scale[:, None, None]  # what the exported network outputs
    expected = reference_slice(img, normalized / scale[:, None, None] + offset[:, None, None], p)
    return {"image_hwc": img.tolist(), "network_output_chw": normalized.tolist(),
            "guide": {**p, "grid_scale": scale.tolist(), "grid_offset": offset.tolist()},
            "expected_hwc": expected.tolist(),
            "note": "grid = network_output / grid_scale + grid_offset (per channel); slicing as in "
                    "edgeenhance/models/slicing.py reference_slice"}
