"""Exposure errors synthesized from real well-exposed photos, the way a camera makes them.

sRGB photo -> linear light through the inverse of a tone curve (sRGB or a sampled camera curve)
-> exposure scaled by 2^EV -> Poisson-Gaussian sensor noise whose strength follows the ISO
-> clipping at sensor white (per channel: that is what destroys highlights and shifts their hue)
-> white-balance error -> the same tone curve re-applied -> 8 bits -> JPEG at a random quality.
The photo itself is the target. Everything is deterministic by the generator it is given.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from functools import lru_cache

import numba
import numpy as np

# Exposure offsets (stops) of each kind of error; "normal" is a well-exposed frame, left alone.
# Under goes to -6 EV: real low-light sets are that dark (LOL frames: mean 0.02, about -6.5 EV from a photo).
EV_RANGES = {"under": (-6.0, -1.0), "over": (1.0, 3.0), "normal": (0.0, 0.0)}
CURVE_SAMPLES = 4096
# A well-exposed photo clips its lamps, windows and sky at white, but the scene was brighter there: a
# real dark frame keeps them bright (SICE, LOL) while a photo darkened by 3 stops turns them grey. A
# model trained on the latter took real dark frames with a bright window for well exposed and barely
# lifted them (darkest-30% lift 0.03 on held-out SICE frames, 0.13 on synthesized pairs as dark).
HIGHLIGHT_STOPS = (1.0, 5.0)  # how much brighter, in stops, when a sample has such highlights
HIGHLIGHT_KNEE = 0.6  # linear level (about 0.8 in sRGB) above which a pixel counts as a highlight


@dataclass
class ToneCurve:
    """A monotone camera response: a power law with a linear toe, then an optional S-shaped
    contrast and a highlight shoulder. ``gamma`` 0 means exact sRGB."""

    gamma: float = 0.0
    contrast: float = 0.0  # 0..1: strength of the S-shape around mid-grey
    shoulder: float = 0.0  # 0..1: highlight roll-off

    def _table(self):
        return _tables(self.gamma, self.contrast, self.shoulder)

    def forward(self, lin: np.ndarray) -> np.ndarray:
        """Linear [0, 1] -> encoded [0, 1]."""
        return _lookup(lin, self._table()[0])

    def inverse(self, enc: np.ndarray) -> np.ndarray:
        """Encoded [0, 1] -> linear [0, 1]."""
        return _lookup(enc, self._table()[1])


def _lookup(v: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Linear interpolation in a table sampled uniformly on [0, 1] (np.interp's search is 10x slower)."""
    v = np.ascontiguousarray(v, np.float32)
    out = np.empty_like(v)
    _lookup_kernel(v.reshape(-1), table, out.reshape(-1))
    return out


@numba.njit(cache=True, nogil=True)
def _lookup_kernel(v, table, out):
    n = table.shape[0] - 1
    for k in range(v.shape[0]):
        t = min(max(v[k], 0.0), 1.0) * n
        i = min(int(t), n - 1)
        f = t - i
        out[k] = table[i] * (1 - f) + table[i + 1] * f


@lru_cache(maxsize=512)
def _tables(gamma: float, contrast: float, shoulder: float) -> tuple[np.ndarray, np.ndarray]:
    """(forward, inverse) of a curve, each sampled uniformly on [0, 1]."""
    x = np.linspace(0.0, 1.0, CURVE_SAMPLES, dtype=np.float64)
    y = _curve(x, gamma, contrast, shoulder)
    # The inverse is sampled densely: the forward curve is steep near black.
    xf = np.linspace(0.0, 1.0, 16 * CURVE_SAMPLES, dtype=np.float64) ** 3
    inv = np.interp(x, _curve(xf, gamma, contrast, shoulder), xf)
    return y.astype(np.float32), inv.astype(np.float32)


def _curve(x: np.ndarray, gamma: float, contrast: float, shoulder: float) -> np.ndarray:
    if gamma <= 0:
        y = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    else:
        t = 0.002
        y = np.where(x < t, x * (t ** (1 / gamma) / t), np.power(x, 1 / gamma))
    if contrast > 0:  # blend with a smoothstep: darker shadows, brighter highlights, ends fixed
        s = y * y * (3 - 2 * y)
        y = (1 - 0.5 * contrast) * y + 0.5 * contrast * s
    if shoulder > 0:
        k = 1.0 + 4.0 * shoulder
        y = (1 - np.exp(-k * y)) / (1 - np.exp(-k))
    return y


@dataclass
class Exposure:
    """One synthesized capture: everything that was sampled, so a pair can be explained or redone."""

    ev: float
    iso: float  # sets the noise: full-well electrons fall and read noise rises as ISO rises
    wb: tuple[float, float, float]  # white-balance error, per-channel gains in linear light
    curve: ToneCurve
    jpeg_quality: int  # 0: no JPEG
    noise: float = 1.0  # scale of the sensor noise (0: none)
    highlights: float = 1.0  # the scene's near-white areas were this much brighter than the photo's white

    @property
    def electrons(self) -> float:
        """Photo-electrons at sensor white (shot noise: variance = signal / electrons)."""
        return 20000.0 * 100.0 / self.iso

    @property
    def read_noise(self) -> float:
        """Read noise, as a fraction of sensor white."""
        return 0.0004 * np.sqrt(self.iso / 100.0)

    def as_dict(self) -> dict:
        return asdict(self)


def sample_exposure(rng: np.random.Generator, kind: str = "under", ev_range: tuple[float, float] | None = None,
                    highlights: float = 0.0) -> Exposure:
    """Random capture settings for one exposure error ``kind`` (under, over or normal); with probability
    ``highlights`` the scene's highlights are brighter than the photo's white (``HIGHLIGHT_STOPS``)."""
    if kind not in EV_RANGES:
        raise ValueError(f"unknown exposure kind '{kind}' (known: {', '.join(EV_RANGES)})")
    lo, hi = ev_range or EV_RANGES[kind]
    ev = float(rng.uniform(lo, hi))
    # A camera short of light raises its ISO (and so its noise) by part of what it lacks: ISO 100 .. 6400.
    iso_stops = 0.6 * np.clip(-ev, 0, 5) + rng.normal(0.0, 0.75)
    iso = float(100.0 * 2.0 ** np.clip(iso_stops, 0.0, 6.0))
    # Curve parameters on a coarse grid: a few hundred distinct curves, so their tables stay cached.
    curve = ToneCurve() if rng.random() < 0.5 else ToneCurve(*(round(float(rng.uniform(a, b)), 1) for a, b in
                                                               ((1.8, 2.6), (0.0, 0.6), (0.0, 0.4))))
    r, b = np.exp(rng.normal(0.0, 0.06, 2))
    quality = int(rng.integers(60, 96)) if rng.random() < 0.85 else 0
    exp = Exposure(ev, iso, (float(r), 1.0, float(b)), curve, quality)
    if highlights > 0 and rng.random() < highlights:  # drawn last: without it, the same draws as before
        exp.highlights = float(2.0 ** rng.uniform(*HIGHLIGHT_STOPS))
    return exp


def fixed_exposure(ev: float, jpeg_quality: int = 95) -> Exposure:
    """Settings for a chosen exposure offset: sRGB curve, neutral white balance, the ISO a camera
    would pick for that offset (as ``sample_exposure`` does on average)."""
    return Exposure(float(ev), float(100.0 * 2.0 ** min(0.6 * max(-ev, 0.0), 6.0)), (1.0, 1.0, 1.0), ToneCurve(),
                    jpeg_quality)


def capture(img: np.ndarray, exp: Exposure, rng: np.random.Generator) -> np.ndarray:
    """Re-capture an sRGB photo ``img`` ((H, W, 3) float in [0, 1]) with settings ``exp``."""
    lin = exp.curve.inverse(img)
    if exp.highlights > 1:  # scene radiance above the photo's white: a smooth ramp up from the knee
        ramp = np.clip((lin.max(axis=-1, keepdims=True) - HIGHLIGHT_KNEE) / (1 - HIGHLIGHT_KNEE), 0, 1) ** 2
        lin = lin * (1 + np.float32(exp.highlights - 1) * ramp)
    lin = lin * np.float32(2.0 ** exp.ev)
    if exp.noise > 0:  # Poisson (shot) noise as its Gaussian limit, plus read noise
        var = np.maximum(lin, 0) / exp.electrons + exp.read_noise**2
        lin = lin + rng.standard_normal(lin.shape, dtype=np.float32) * (exp.noise * np.sqrt(var)).astype(np.float32)
    lin = np.clip(lin, 0.0, 1.0)  # sensor white, per channel, before anything else touches it
    lin = np.clip(lin * np.asarray(exp.wb, np.float32), 0.0, 1.0)
    out = np.round(exp.curve.forward(lin) * 255.0) / 255.0
    if exp.jpeg_quality:
        out = jpeg(out, exp.jpeg_quality)
    return out.astype(np.float32)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through JPEG (4:2:0, as phones write)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)).save(buf, "JPEG", quality=int(quality))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"), np.float32) / 255.0


def synthesize(img: np.ndarray, rng: np.random.Generator, kind: str = "under",
               ev_range: tuple[float, float] | None = None, highlights: float = 0.0) -> tuple[np.ndarray, Exposure]:
    """(badly exposed copy of ``img``, the settings used). The photo is the target."""
    exp = sample_exposure(rng, kind, ev_range, highlights)
    if kind == "normal":  # a well-exposed frame as a camera writes it: mild noise and JPEG only
        exp.iso = min(exp.iso, 400.0)
    return capture(img, exp, rng), exp
