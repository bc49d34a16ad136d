"""Phone-sized student generator: only convolutions (depthwise-separable where it pays), ReLU6,
additions and nearest upsampling, so that it maps well to int8 NPUs and CPUs. No normalization.

The network predicts a residual on the input; the output is clamped to [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn

SIZES = {"tiny": dict(width=12, blocks=2), "small": dict(width=16, blocks=4)}


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour 2x upsampling written as two (concatenate, reshape) pairs in channel-last
    order. Same values as ``F.interpolate(x, scale_factor=2, mode="nearest")``, but converters keep
    it as CONCATENATION + RESHAPE (the permutes cancel against their NHWC layout), which XNNPACK
    runs in its graph; RESIZE_NEAREST_NEIGHBOR is left to a single-threaded TFLite kernel that took
    0.74 of 4.7 ms in the int8 student at 256x256 (2 threads, x86)."""
    y = x.permute(0, 2, 3, 1)  # (N, H, W, C); no sizes read: CoreML's tracer cannot cast them
    y = torch.cat([y, y], dim=3).unflatten(3, (2, -1)).flatten(2, 3)  # each pixel twice along the row
    y = torch.cat([y, y], dim=2).unflatten(2, (2, -1)).flatten(1, 2)  # each row twice
    return y.permute(0, 3, 1, 2)


def dw_sep(cin, cout, stride=1):
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin), nn.ReLU6(True),
        nn.Conv2d(cin, cout, 1), nn.ReLU6(True))


class DwBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c * 2, 1), nn.ReLU6(True),
            nn.Conv2d(c * 2, c * 2, 3, 1, 1, groups=c * 2), nn.ReLU6(True),
            nn.Conv2d(c * 2, c, 1))

    def forward(self, x):
        return x + self.body(x)


class StudentGenerator(nn.Module):
    """Encoder (1/4 resolution) -> inverted-residual blocks -> nearest-upsampling decoder with skips."""

    family = "student"
    pad_multiple = 4  # two stride-2 stages
    # Kept in float compute (weights still int8) by the int8 exporters. Measured on 12 bench photos at
    # 256x256: with an all-int8 graph the worst PSNR(int8, float) was 30.1 dB (a mostly clipped sky:
    # the encoder's int8 features cannot tell near-white tones apart, and the skips carry the error
    # to the output); with the encoder in float it is 35.1 dB. The encoder is 11% of the MACs. Range
    # equalization (below) lifts the all-int8 graph to 33.6 dB at 256x256 but not at 512x512 (30.5 dB
    # worst vs 33.0 with the float encoder), so the encoder stays float unless --all-int8 is asked.
    int8_float_modules = ("stem", "down1", "down2")
    # Channel groups range-equalized before int8 quantization (quantize/equalize.py; exact in float):
    # the stem's 16 output channels span 0.08..2.3 and share one int8 scale with up1's (the skip add),
    # and down1's depthwise output spans 0.01..1.6. Measured at 256x256 on 12 bench photos, all-int8
    # graph: worst PSNR(int8, float) 30.1 -> 33.6 dB; at 512x512 with the float encoder 32.3 -> 33.0 dB.
    int8_equalize = (((("stem.0", "stem.1"), ("up1.0", "up1.1")), ("down1.0", "fuse0.0")),
                     ((("down1.0", "down1.1"),), ("down1.2",)))

    def __init__(self, width: int = 16, blocks: int = 4):
        super().__init__()
        w = width
        self.config = dict(width=width, blocks=blocks)
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 1, 1), nn.ReLU6(True))
        self.down1 = dw_sep(w, w * 2, 2)
        self.down2 = dw_sep(w * 2, w * 4, 2)
        self.blocks = nn.Sequential(*[DwBlock(w * 4) for _ in range(blocks)])
        self.up2 = nn.Sequential(nn.Conv2d(w * 4, w * 2, 1), nn.ReLU6(True))
        self.up1 = nn.Sequential(nn.Conv2d(w * 2, w, 1), nn.ReLU6(True))
        self.fuse1 = dw_sep(w * 2, w * 2)
        self.fuse0 = dw_sep(w, w)
        self.head = nn.Conv2d(w, 3, 3, 1, 1)

    def features(self, x):
        s0 = self.stem(x)
        s1 = self.down1(s0)
        m = self.blocks(self.down2(s1))
        u1 = self.fuse1(upsample2x(self.up2(m)) + s1)
        u0 = self.fuse0(upsample2x(self.up1(u1)) + s0)
        return torch.clamp(x + self.head(u0), 0.0, 1.0), {"down": s1, "mid": m, "up": u1}

    def forward(self, x):
        return self.features(x)[0]


def student(size: str = "small") -> StudentGenerator:
    if size not in SIZES:
        raise ValueError(f"unknown student size '{size}' (choose from {', '.join(SIZES)})")
    return StudentGenerator(**SIZES[size])
