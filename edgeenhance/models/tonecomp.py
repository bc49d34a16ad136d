"""Classical over-exposure baseline: highlight-aware tone compression.

Linearize (sRGB), pull the exposure down by ``stops``, then roll the highlights off with an
extended Reinhard curve on luminance so that bright, nearly clipped regions keep some contrast;
re-encode to sRGB. Truly clipped pixels stay flat: no classical curve can invent lost detail.
"""

from __future__ import annotations

import numpy as np

from edgeenhance.data.camera import linear_to_srgb, luminance, srgb_to_linear
from edgeenhance.models.classical import ClassicalEnhancer


class ToneCompress(ClassicalEnhancer):
    family = "tonecomp"
    name = "tonecomp"
    fixes = "over-exposed photos (classical highlight tone compression)"

    def __init__(self, stops: float = 1.5, white: float = 1.0):
        self.stops, self.white = stops, white
        self.config = dict(stops=stops, white=white)

    def enhance(self, img: np.ndarray) -> np.ndarray:
        lin = srgb_to_linear(img)
        lum = luminance(lin)[..., None] + 1e-6
        # Extended Reinhard on the un-darkened luminance maps 1.0 -> 1.0 and compresses highlights;
        # the exposure pull then keeps mid-tones in place relative to the clipped white.
        scaled = lum * 2.0 ** (-self.stops) * 4
        mapped = scaled * (1 + scaled / (self.white * 4) ** 2) / (1 + scaled)
        return linear_to_srgb(np.clip(lin * (mapped / lum), 0, 1))
