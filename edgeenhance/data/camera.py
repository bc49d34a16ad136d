"""A small camera model: linear radiance -> exposure -> sensor clipping and noise -> white balance
-> response curve (gamma or sRGB, optionally an S-shaped tone curve with a toe and a shoulder)
-> 8-bit quantization. Also the inverse steps used to re-expose real photos."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIDDLE_GREY = 0.18


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.2126 + rgb[..., 1] * 0.7152 + rgb[..., 2] * 0.0722


@dataclass
class Camera:
    """Camera settings. ``ev`` is the exposure offset in stops from the metered exposure."""

    ev: float = 0.0
    wb_gains: tuple[float, float, float] = (1.0, 1.0, 1.0)
    gamma: float = 2.2  # response curve: power law with an sRGB-like linear toe; 0 means exact sRGB
    shoulder: float = 0.0  # 0..1, rolls the highlights off before sensor white (film-like)
    full_well: float = 4000.0  # electrons at sensor white: sets shot noise
    read_noise: float = 0.002  # read noise, as a fraction of sensor white
    bits: int = 8
    # Tone curve of a camera's JPEG: > 1 applies an S-curve of this slope at middle grey, which
    # stays put: shadows pushed towards black (toe), highlights rolled off into white (shoulder).
    # 1 = the plain power law / sRGB encoding.
    contrast: float = 1.0

    def _pivot(self) -> float:
        """Where middle grey lands on the plain curve: the S-curve's fixed point."""
        if self.gamma <= 0:
            return float(linear_to_srgb(np.float32(MIDDLE_GREY)))
        return MIDDLE_GREY ** (1 / self.gamma)

    def response(self, x: np.ndarray) -> np.ndarray:
        """Camera response curve f: linear [0, 1] -> encoded [0, 1]."""
        if self.gamma <= 0:
            y = linear_to_srgb(x)
        else:
            x = np.clip(x, 0.0, 1.0)
            y = np.where(x < 0.002, x * (0.002 ** (1 / self.gamma) / 0.002), np.power(x, 1 / self.gamma))
        if self.contrast != 1.0:
            # y^a / (y^a + k (1-y)^a), k chosen to keep the pivot: slope ``contrast`` there, 0 at both ends.
            a, pv = self.contrast, self._pivot()
            k = pv ** (a - 1) * (1 - pv) ** (1 - a)
            ya = np.power(y, a)
            y = ya / np.maximum(ya + k * np.power(1 - y, a), 1e-12)
        if self.shoulder > 0:
            k = 1.0 + 4.0 * self.shoulder
            y = (1 - np.exp(-k * y)) / (1 - np.exp(-k))
        return y.astype(np.float32)

    def inverse_response(self, y: np.ndarray) -> np.ndarray:
        y = np.clip(y, 0.0, 1.0)
        if self.shoulder > 0:
            k = 1.0 + 4.0 * self.shoulder
            y = -np.log(np.clip(1 - y * (1 - np.exp(-k)), 1e-7, 1)) / k
        if self.contrast != 1.0:
            a, pv = self.contrast, self._pivot()
            k = pv ** (a - 1) * (1 - pv) ** (1 - a)
            r = np.power(k * y / np.maximum(1 - y, 1e-12), 1 / a)
            y = np.where(y >= 1, 1.0, r / (1 + r))
        if self.gamma <= 0:
            return srgb_to_linear(y)
        t = 0.002 ** (1 / self.gamma)
        return np.where(y < t, y * (0.002 / t), np.power(y, self.gamma)).astype(np.float32)

    def capture(self, radiance: np.ndarray, rng: np.random.Generator, metering: float | None = None) -> np.ndarray:
        """Expose, add sensor noise, clip, white-balance, apply the response and quantize.

        ``radiance`` is (H, W, 3) linear scene light; ``metering`` is the scale that the camera's
        auto-exposure would choose (computed from the radiance when None).
        """
        if metering is None:
            metering = meter(radiance)
        signal = radiance * np.float32(metering * 2.0**self.ev)
        signal = np.clip(signal, 0.0, 1.0)  # sensor white
        if self.full_well > 0 or self.read_noise > 0:
            var = signal / max(self.full_well, 1.0) + self.read_noise**2
            signal = signal + rng.standard_normal(signal.shape, dtype=np.float32) * np.sqrt(var).astype(np.float32)
        signal = np.clip(signal * np.asarray(self.wb_gains, np.float32), 0.0, 1.0)
        out = self.response(signal)
        levels = 2**self.bits - 1
        return (np.round(out * levels) / levels).astype(np.float32)


def meter(radiance: np.ndarray, key: float = MIDDLE_GREY) -> float:
    """Auto-exposure: the scale that puts the log-average luminance at middle grey."""
    lum = luminance(radiance)
    log_avg = float(np.exp(np.mean(np.log(lum + 1e-4))))
    # Protect the highlights of the bulk of the frame: the 98th percentile stays under sensor white.
    highlight = float(np.percentile(lum, 98))
    return min(key / max(log_avg, 1e-6), 0.95 / max(highlight, 1e-6))


def reexpose(img: np.ndarray, ev: float, rng: np.random.Generator) -> np.ndarray:
    """Exposure error ``ev`` (stops) synthesized from a real sRGB photo: the pipeline of
    ``edgeenhance.data.exposure`` with sRGB curve, neutral white balance and the ISO that offset implies."""
    from edgeenhance.data.exposure import capture, fixed_exposure

    return capture(img, fixed_exposure(ev), rng)
