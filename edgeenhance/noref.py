"""No-reference scores of an enhancement: how an output compares with its own input when no target
exists (real photos). All images are (H, W, 3) float RGB in [0, 1]."""

from __future__ import annotations

import numpy as np

CLIP_LEVEL = 254.5 / 255  # a channel that rounds to 255 in an 8-bit file
LOE_SIDE = 100
REC709 = (0.2126, 0.7152, 0.0722)  # luminance weights of linear-ish sRGB, as the metrics use them
_REC709 = np.array(REC709, np.float32)


def _check(inp: np.ndarray, out: np.ndarray) -> None:
    if inp.shape != out.shape:
        raise ValueError(f"input {inp.shape} and output {out.shape} differ in shape")


def luminance(img: np.ndarray) -> np.ndarray:
    """Rec.709 weighted sum of the given (not linearised) values, (H, W)."""
    return np.asarray(img, np.float32)[..., :3] @ _REC709


def mean_luminance(img: np.ndarray) -> float:
    return float(luminance(img).mean())


def _subsample(a: np.ndarray) -> np.ndarray:
    # Point sampling rather than an averaging resize: averaging before a non-linear tone curve
    # reorders pixels, which would give a pure tone curve a non-zero LOE.
    step = max(1, round(min(a.shape[:2]) / LOE_SIDE))
    return a[step // 2::step, step // 2::step]


def loe(inp: np.ndarray, out: np.ndarray, chunk: int = 128) -> float:
    """Lightness-order error (Wang et al. 2013): for each pixel, the number of pixels whose order
    (>=) in lightness max(R, G, B) differs between input and output; mean over pixels, on a grid
    of about 100 px on the short side. 0 for any increasing tone curve; lower is better."""
    _check(inp, out)
    a = _subsample(np.asarray(inp, np.float32).max(axis=2)).ravel()
    b = _subsample(np.asarray(out, np.float32).max(axis=2)).ravel()
    flips = 0
    for s in range(0, a.size, chunk):  # chunks keep the pair matrix in cache
        flips += np.count_nonzero((a >= a[s:s + chunk, None]) != (b >= b[s:s + chunk, None]))
    return flips / a.size


def loe_fraction(inp: np.ndarray, out: np.ndarray) -> float:
    """LOE divided by the pixels of its grid: the fraction (0..1) of pixel pairs whose lightness order flipped."""
    return loe(inp, out) / _subsample(np.asarray(inp)[..., 0]).size


def _extreme(lum: np.ndarray, frac: float, darkest: bool) -> np.ndarray:
    """Flat indices of the ``frac`` darkest (or brightest) pixels of a luminance map."""
    if not 0 < frac <= 1:
        raise ValueError(f"frac must be in (0, 1], got {frac}")
    flat = lum.ravel()
    k = max(1, int(round(frac * flat.size)))
    order = np.argsort(flat if darkest else -flat, kind="stable")
    return order[:k]


def dark_lift(inp: np.ndarray, out: np.ndarray, frac: float = 0.3) -> float:
    """Mean luminance gain over the ``frac`` darkest input pixels (how much shadows were lifted)."""
    _check(inp, out)
    li, lo = luminance(inp).ravel(), luminance(out).ravel()
    idx = _extreme(li, frac, darkest=True)
    return float((lo[idx] - li[idx]).mean())


def bright_drop(inp: np.ndarray, out: np.ndarray, frac: float = 0.3) -> float:
    """Mean luminance loss over the ``frac`` brightest input pixels (recovery of over-exposed photos)."""
    _check(inp, out)
    li, lo = luminance(inp).ravel(), luminance(out).ravel()
    idx = _extreme(li, frac, darkest=False)
    return float((li[idx] - lo[idx]).mean())


def _clipped(img: np.ndarray) -> np.ndarray:
    return (np.asarray(img)[..., :3] >= CLIP_LEVEL).any(axis=-1)


def clipped_fraction(img: np.ndarray) -> float:
    """Fraction of pixels with any channel at 255 (after 8-bit rounding)."""
    return float(_clipped(img).mean())


def newly_clipped(inp: np.ndarray, out: np.ndarray) -> float:
    """Fraction of pixels clipped in the output (any channel at 255) that were not clipped in the input."""
    _check(inp, out)
    return float((_clipped(out) & ~_clipped(inp)).mean())


def scores(inp: np.ndarray, out: np.ndarray, with_niqe: bool = True) -> dict:
    """All no-reference scores of one (input, output) pair; niqe (of the output) is None without with_niqe."""
    from edgeenhance.niqe import niqe

    _check(inp, out)
    return {"niqe": niqe(out) if with_niqe else None, "loe": loe(inp, out), "mean_lum": mean_luminance(out),
            "dark_lift": dark_lift(inp, out), "new_clipped": newly_clipped(inp, out),
            "clipped_before": clipped_fraction(inp), "clipped_after": clipped_fraction(out),
            "bright_drop": bright_drop(inp, out)}
