"""Phone-sized student generator: only convolutions (depthwise-separable where it pays), ReLU6,
additions, nearest and sub-pixel upsampling, so that it maps well to int8 NPUs and CPUs. No normalization.

The network predicts a residual on the input; the output is clamped to [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from edgeenhance.models.base import Enhancer

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


def shuffle2x(top: torch.Tensor, bottom: torch.Tensor) -> torch.Tensor:
    """Sub-pixel (depth-to-space) 2x upsampling of two (N, 6, h, w) maps holding the top and bottom
    rows of each 2x2 output block, channels ordered (dx, rgb) -> (N, 3, 2h, 2w). Written like
    ``upsample2x``: reshapes and one concatenation in channel-last order, which XNNPACK runs in its
    graph (no 6-D transpose, no DEPTH_TO_SPACE)."""
    rows = [r.permute(0, 2, 3, 1).unflatten(3, (2, -1)).flatten(2, 3) for r in (top, bottom)]  # (N, h, 2w, 3)
    y = torch.cat(rows, dim=2).unflatten(2, (2, -1)).flatten(1, 2)  # (N, 2h, 2w, 3)
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


class StudentGenerator(Enhancer):
    """Half-resolution network with a sub-pixel head: a stride-2 stem -> inverted-residual blocks at 1/4
    -> nearest upsampling with a skip -> 3x3 heads that predict each 2x2 block's residual, put back
    at full resolution by ``shuffle2x``. No convolution runs at full resolution: there, int8 wins
    nothing (16-channel depthwise and 1x1 layers at 256x256 took longer in int8 than in float in the
    first student, whose int8 file was 1.94-1.98x faster than fp32 at 256x256; this one 2.16-2.20x).
    The output is ``clamp(x + residual, 0, 1)``."""

    family = "student"
    fixes = "over-exposed photos (distilled from a CycleGAN teacher)"
    exposure_task = "over"
    trainer = "edgeenhance.train.distill:distill"
    pad_multiple = 4  # two stride-2 stages
    # Kept in float compute (weights still int8) by int8 exports from the float weights (--float-weights);
    # the shipped int8-tuned weights run every layer in int8. Post-training int8 with per-channel
    # weights, 8 bench photos: worst PSNR(int8, float) 37.8 / 37.2 dB at 256 / 512 with the encoder in
    # float, 36.6 / 36.7 dB all-int8.
    int8_float_modules = ("stem", "down2")
    # Channel groups range-equalized before int8 quantization (quantize/equalize.py; exact in float), as
    # in the first student, where they lifted the worst all-int8 PSNR at 256x256 from 30.1 to 33.6 dB:
    # the stem's output shares one int8 scale with up2's (the skip add), and down2's depthwise output.
    int8_equalize = (((("stem.0", "stem.1"), ("up2.0", "up2.1")), ("down2.0", "fuse1.0")),
                     ((("down2.0", "down2.1"),), ("down2.2",)))

    def __init__(self, width: int = 16, blocks: int = 4):
        super().__init__()
        w = width
        self.config = dict(width=width, blocks=blocks)
        self.stem = nn.Sequential(nn.Conv2d(3, w * 2, 4, 2, 1), nn.ReLU6(True))  # 1/2: same padding as TF "SAME"
        self.down2 = dw_sep(w * 2, w * 4, 2)
        self.blocks = nn.Sequential(*[DwBlock(w * 4) for _ in range(blocks)])
        self.up2 = nn.Sequential(nn.Conv2d(w * 4, w * 2, 1), nn.ReLU6(True))
        self.fuse1 = dw_sep(w * 2, w * 2)
        # residuals of the top and bottom row of each 2x2 block: (dx, rgb) = 6 channels each
        self.head = nn.ModuleList([nn.Conv2d(w * 2, 6, 3, 1, 1) for _ in range(2)])

    @property
    def receptive_radius(self) -> int:
        """How far (input pixels) an output pixel sees. No layer is global, so ``enhance_array`` may run big
        photos in tiles overlapping by this much. Output pixel p reads input rows p-10-4*blocks .. p+8+4*blocks:
        the head's and fuse1's 3x3 at 1/2 resolution over the stem (4x4, stride 2) and, through the nearest
        upsampling, over down2 (3x3, stride 2) and each block's 3x3 at 1/4."""
        return 10 + 4 * self.config["blocks"]

    def features(self, x):
        s1 = self.stem(x)
        m = self.blocks(self.down2(s1))
        u1 = self.fuse1(upsample2x(self.up2(m)) + s1)
        residual = shuffle2x(self.head[0](u1), self.head[1](u1))
        return torch.clamp(x + residual, 0.0, 1.0), {"down": s1, "mid": m, "up": u1}

    def forward(self, x):
        return self.features(x)[0]


def student(size: str = "small") -> StudentGenerator:
    if size not in SIZES:
        raise ValueError(f"unknown student size '{size}' (choose from {', '.join(SIZES)})")
    return StudentGenerator(**SIZES[size])
