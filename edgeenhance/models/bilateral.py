"""Bilateral-grid illumination enhancer (after HDRNet and DeepUPE).

A small CNN sees a low-resolution copy of the photo and predicts a bilateral grid of 3x4 affine
coefficients (``grid_size`` x ``grid_size`` cells, ``bins`` luminance bins). A learned per-pixel
guide picks the luminance coordinate; slicing the grid at full resolution gives an affine
illumination model, S = A [r g b 1]^T, and the output is clip(I / S) (Retinex).

Export-friendly: slicing uses bilinear resize and tent weights (no grid_sample, no rank-5
tensors, no data-dependent control flow). Grid channel layout: channel ``d*12 + c*4 + j`` holds
coefficient (row c, column j) of luminance bin d.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgeenhance.models.base import DeployForm, Enhancer
from edgeenhance.noref import REC709

GRID_LAYOUT = "channel d*12 + c*4 + j"  # coefficient (row c, column j) of luminance bin d
# The default floor of S, a 20x gain at most: keeps int8 ranges sane and noise bounded (at 40x the int8 grid
# of a low-light model fell to 33.8 dB against its float model on a real night frame; shipped, 20x: 42.9 dB).
MIN_ILLUMINATION = 0.05


def conv(cin, cout, stride=1, act=True):
    layers = [nn.Conv2d(cin, cout, 3, stride, 1)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Guide(nn.Module):
    """Per-pixel guide map in [0, 1]: a two-layer pointwise network (1x1 convs, sigmoid), or with
    ``hidden=0`` a linear one, clamp(w . rgb + b, 0, 1), started at Rec.709 luminance. The linear
    guide has no exp per pixel: the fused slicing pass at 1080p on 2 x86 cores takes about 30% less
    time with it (the over-exposure model uses it to fit a camera preview's frame budget)."""

    def __init__(self, hidden: int = 8):
        super().__init__()
        self.hidden = hidden
        if hidden == 0:
            self.conv1 = nn.Conv2d(3, 1, 1)
            with torch.no_grad():
                self.conv1.weight.copy_(torch.tensor(REC709).view(1, 3, 1, 1))
                self.conv1.bias.zero_()
        else:
            self.conv1 = nn.Conv2d(3, hidden, 1)
            self.conv2 = nn.Conv2d(hidden, 1, 1)

    def forward(self, x):
        if self.hidden == 0:
            return torch.clamp(self.conv1(x), 0.0, 1.0)
        return torch.sigmoid(self.conv2(torch.relu(self.conv1(x))))

    def params(self) -> dict:
        """Weights as plain lists (``guide``: "mlp" or "linear"), for the numpy/Android slicing pass."""
        w1, b1 = self.conv1.weight.detach()[:, :, 0, 0].tolist(), self.conv1.bias.detach().tolist()
        if self.hidden == 0:  # w2/b2 as an identity output layer keeps the manifest's shape for old readers
            return {"guide": "linear", "w1": w1, "b1": b1, "w2": [[1.0]], "b2": [0.0]}
        return {"guide": "mlp", "w1": w1, "b1": b1, "w2": self.conv2.weight.detach()[:, :, 0, 0].tolist(),
                "b2": self.conv2.bias.detach().tolist()}


class GlobalMean(nn.Module):
    """Spatial mean, as a named module so quantizers can address the whole global path by name."""

    def forward(self, x):
        return x.mean(dim=(2, 3), keepdim=True)


class GlobalMix(nn.Module):
    """relu(local + global): adds the image-wide feature vector to every grid cell."""

    def forward(self, local, g):
        return torch.relu(local + g)


class GridNet(nn.Module):
    """Low-resolution image (B, 3, lowres, lowres) -> bilateral grid (B, 12*bins, grid, grid)."""

    # The global path is kept in float compute (weights still int8) by the int8 exporters: the image-wide
    # feature vector of a dark photo is small next to the calibrated range, int8 rounds it coarsely, and
    # since the output is I / S the error is amplified where S is small (PSNR(int8, float) fell to 24 dB
    # on dark images). It runs on one pixel, so float costs nothing there.
    int8_float_modules = ("global_conv", "global_pool", "global_fc", "global_mix")
    # The output conv computes in float too, with float weights: its int8 output range, calibrated on the
    # calibration set, clipped 90% of the grid of a nearly white real frame (SICE, mean luminance 0.96)
    # for the over-exposure model: PSNR(int8, float) 24.8 dB there, 41.0 dB with a float output. With its
    # weights in int8 the low-light weights' worst real frame scored 35.6 dB (mean 44.4); with them in float
    # 45.4 (mean 53.9): they write S directly. They are 4,608 of the network's weights.
    # (Exports from int8-tuned weights keep the int8 output QAT fitted them to.)
    int8_float_output = True

    def __init__(self, lowres=128, grid_size=16, bins=8, width=12, global_convs=0):
        super().__init__()
        n_down = (lowres // grid_size).bit_length() - 1
        if 2**n_down * grid_size != lowres:
            raise ValueError("lowres must be grid_size times a power of two")
        chans = [3] + [min(width * 2**i, width * 6) for i in range(n_down)]
        self.splat = nn.Sequential(*[conv(chans[i], chans[i + 1], 2) for i in range(n_down)])
        c = chans[-1]
        self.local = nn.Sequential(conv(c, c), conv(c, c, act=False))
        # HDRNet's global path has stride-2 convs before pooling; with none, the pooled vector is the mean
        # of 256 splat features, which int8 rounding barely moves.
        self.global_conv = nn.Sequential(*[conv(c, c, 2) for _ in range(global_convs)])
        self.global_pool = GlobalMean()
        self.global_fc = nn.Sequential(nn.Conv2d(c, c, 1), nn.ReLU(inplace=True), nn.Conv2d(c, c, 1))
        self.global_mix = GlobalMix()
        self.out = nn.Conv2d(c, 12 * bins, 1)
        self.bins = bins
        # Start from the identity: S = 1 everywhere, so the output equals the input.
        nn.init.zeros_(self.out.weight)
        with torch.no_grad():
            self.out.bias.zero_()
            self.out.bias.view(bins, 3, 4)[:, :, 3] = 1.0

    def forward(self, low):
        f = self.splat(low)
        g = self.global_fc(self.global_pool(self.global_conv(f)))
        return self.out(self.global_mix(self.local(f), g))


def tent_weights(guide: torch.Tensor, bins: int) -> list[torch.Tensor]:
    """Per-bin weights of the luminance coordinate (each (B, 1, H, W)); they sum to one."""
    z = torch.clamp(guide * bins - 0.5, 0.0, bins - 1.0)
    return [torch.relu(1.0 - torch.abs(z - float(d))) for d in range(bins)]


def resize_matrix(n_in: int, n_out: int, device=None) -> torch.Tensor:
    """(n_out, n_in) weights of 1-D bilinear resizing with half-pixel centres (align_corners=False)."""
    pos = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5).clamp(min=0)
    i0 = pos.floor().long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    f = pos - i0
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    m[torch.arange(n_out), i0] += 1 - f
    m[torch.arange(n_out), i1] += f
    return m.float().to(device)


def matmul_resize(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling as two matrix products: the same values as F.interpolate, but its
    backward pass is 5x faster on CPU (training only; exported graphs use F.interpolate)."""
    my, mx = resize_matrix(t.shape[-2], size[0], t.device), resize_matrix(t.shape[-1], size[1], t.device)
    return my @ t @ mx.T


def slice_grid(grid: torch.Tensor, guide: torch.Tensor, bins: int, size: tuple[int, int] | None = None,
               matmul: bool = False) -> torch.Tensor:
    """Affine coefficients at every pixel, (B, 12, H, W): trilinear interpolation of the grid at
    (x, y, guide), written as bilinear resize times tent weights so every runtime can run it.
    ``size`` pins the output size as constants (for converters that need a static graph)."""
    h, w = size if size is not None else guide.shape[-2:]
    weights = tent_weights(guide, bins)
    coeffs = None
    for d in range(bins):
        g = grid[:, 12 * d:12 * (d + 1)]
        up = matmul_resize(g, (h, w)) if matmul else F.interpolate(g, size=(h, w), mode="bilinear", align_corners=False)
        term = up * weights[d]
        coeffs = term if coeffs is None else coeffs + term
    return coeffs


def apply_illumination(x: torch.Tensor, coeffs: torch.Tensor,
                       floor: float = MIN_ILLUMINATION) -> tuple[torch.Tensor, torch.Tensor]:
    """S_c = sum_j A_cj x_j + b_c, at least ``floor``; returns (clip(x / S), S)."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    s = torch.cat([coeffs[:, 4 * c:4 * c + 1] * r + coeffs[:, 4 * c + 1:4 * c + 2] * g
                   + coeffs[:, 4 * c + 2:4 * c + 3] * b + coeffs[:, 4 * c + 3:4 * c + 4] for c in range(3)], dim=1)
    s = torch.clamp(s, min=floor)
    return torch.clamp(x / s, 0.0, 1.0), s


class BilateralEnhancer(Enhancer):
    """Full form: any-size (B, 3, H, W) image in [0, 1] -> enhanced image of the same size."""

    family = "bilateral"
    fixes = "under-exposed and low-light photos"
    trainer = "edgeenhance.train.bilateral:train_bilateral"
    exposure_task = "under"  # what its inputs look like by default; `--exposure over` checkpoints say "over"
    pad_multiple = 1
    qat_part = "gridnet"  # what int8 runtimes execute (grid form); QAT leaves the float slicing alone
    # exports default to the grid network: the full form (slicing in the graph) is slow on phones and its
    # int8 file failed verification (27.7 dB), as full-resolution elementwise ops requantize at every step
    default_form = "grid"

    def __init__(self, lowres=128, grid_size=16, bins=8, width=12, guide_hidden=8, global_convs=0,
                 min_illumination=MIN_ILLUMINATION):
        super().__init__()
        if not 0.0 < min_illumination <= 1.0:
            raise ValueError(f"min_illumination must be in (0, 1] (the largest gain is its inverse), "
                             f"got {min_illumination}")
        self.config = dict(lowres=lowres, grid_size=grid_size, bins=bins, width=width, guide_hidden=guide_hidden,
                           global_convs=global_convs, min_illumination=min_illumination)
        self.min_illumination = float(min_illumination)
        self.lowres, self.bins = lowres, bins
        self.gridnet = GridNet(lowres, grid_size, bins, width, global_convs)
        self.guide = Guide(guide_hidden)
        self.static_size: tuple[int, int] | None = None  # set by exporters that need constant shapes

    def low_res(self, x):
        return F.interpolate(x, size=(self.lowres, self.lowres), mode="bilinear", align_corners=False)

    def forward_with_illumination(self, x):
        return self.apply_grid(x, self.gridnet(self.low_res(x)))

    def apply_grid(self, x, grid):
        """(clip(x / S), S) for a grid predicted from ``x``: slicing with this model's guide, then Retinex."""
        return apply_illumination(x, slice_grid(grid, self.guide(x), self.bins, self.static_size, matmul=self.training),
                                  self.min_illumination)

    def forward(self, x):
        return self.forward_with_illumination(x)[0]

    def grid_form(self) -> nn.Module:
        """The deployable low-resolution part: (1, 3, lowres, lowres) -> grid."""
        return self.gridnet

    def guide_params(self) -> dict:
        """Guide weights as plain lists, for the numpy/Android slicing pass."""
        return {**self.guide.params(), "bins": self.bins, "min_illumination": self.min_illumination}

    def deploy_forms(self) -> dict[str, DeployForm]:
        """``full`` and ``grid``: the grid network alone, sliced beside it by the runtime (fused_slice,
        GridSlicer.kt) with the guide the form's extras carry."""
        g, lr = self.config["grid_size"], self.lowres
        return {**super().deploy_forms(),
                "grid": DeployForm("grid", self.grid_form(), (lr, lr), "grid",
                                   {"guide": self.guide_params(), "grid_layout": GRID_LAYOUT},
                                   output_shape=(12 * self.bins, g, g), output_meaning=f"bilateral grid, {GRID_LAYOUT}",
                                   summary="grid network; slicing runs beside it", prepare=prepare_grid_form)}

    def enhance_deployed(self, img, device="cpu"):
        """The deployed path: low-res network in PyTorch + fused numba slicing, the same numbers as the
        full model about 40x faster at 12 MP."""
        import numpy as np

        from edgeenhance.runtime.fused_slice import fused_slice, resize_bilinear

        img = np.ascontiguousarray(img, np.float32)
        low = resize_bilinear(img, (self.lowres, self.lowres))
        with torch.no_grad():
            grid = self.gridnet(torch.from_numpy(low.transpose(2, 0, 1).copy())[None].to(device))[0].float().cpu().numpy()
        return fused_slice(img, grid, self.guide_params())


def normalized_grid_net(gridnet: GridNet, offset: torch.Tensor, scale: torch.Tensor) -> GridNet:
    """A copy of ``gridnet`` whose output is (grid - offset) * scale per channel, folded into the last
    conv. Equalizes channel ranges so one per-tensor int8 scale fits all 96 coefficient channels;
    runtimes undo it with grid = out / scale + offset (the manifest stores both)."""
    import copy

    net = copy.deepcopy(gridnet)
    with torch.no_grad():
        net.out.weight.mul_(scale.view(-1, 1, 1, 1))
        net.out.bias.copy_((net.out.bias - offset) * scale)
    return net


def grid_normalization(gridnet: GridNet, batches) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (offset, scale) from grids predicted on calibration batches."""
    with torch.no_grad():
        grids = torch.cat([gridnet(torch.as_tensor(b)) for b in batches])
    offset = grids.mean(dim=(0, 2, 3))
    spread = (grids - offset.view(1, -1, 1, 1)).abs().amax(dim=(0, 2, 3)).clamp(min=1e-3)
    return offset, 1.0 / spread


def prepare_grid_form(net: GridNet, calibration_batches, extras: dict) -> GridNet:
    """The grid form as exported: output channels range-normalized on the calibration images (once
    per export; int8-tuned weights share the float graph's normalization), recorded in ``extras`` so
    runtimes undo it."""
    if "grid_scale" not in extras["guide"]:
        offset, scale = grid_normalization(net, calibration_batches())
        extras["guide"] = {**extras["guide"], "grid_offset": offset.tolist(), "grid_scale": scale.tolist()}
        extras["grid_normalization"] = "grid = output / grid_scale + grid_offset (per channel)"
    g = extras["guide"]
    return normalized_grid_net(net, torch.tensor(g["grid_offset"]), torch.tensor(g["grid_scale"])).eval()
