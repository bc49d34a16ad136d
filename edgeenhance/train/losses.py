"""Losses of the bilateral enhancer: DeepUPE (supervised) and Zero-DCE style (zero-reference)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgeenhance.noref import REC709


def color_loss(out, target):
    """Mean angle between RGB vectors of output and target (DeepUPE's colour loss)."""
    a, b = out + 1e-4, target + 1e-4  # written out: F.cosine_similarity's norm is 20x slower on CPU
    cos = ((a * b).sum(1) * torch.rsqrt((a * a).sum(1) * (b * b).sum(1))).clamp(-0.999999, 0.999999)
    return torch.acos(cos).mean()


def illumination_smoothness(s, x, lam: float = 1.5, eps: float = 1e-4):
    """DeepUPE smoothness: TV of the illumination, weighted down across strong input edges."""
    lx = torch.log(x.mean(1, keepdim=True) + eps)
    gx, gy = lx[..., :, 1:] - lx[..., :, :-1], lx[..., 1:, :] - lx[..., :-1, :]
    wx, wy = (gx.abs() ** lam + eps).reciprocal(), (gy.abs() ** lam + eps).reciprocal()
    sx, sy = s[..., :, 1:] - s[..., :, :-1], s[..., 1:, :] - s[..., :-1, :]
    return (wx.clamp(max=100) * sx.abs()).mean() * 0.01 + (wy.clamp(max=100) * sy.abs()).mean() * 0.01


def supervised_loss(out, s, x, target, w_color=0.5, w_smooth=0.1):
    rec = F.mse_loss(out, target) + 0.5 * F.l1_loss(out, target)
    return rec + w_color * color_loss(out, target) + w_smooth * illumination_smoothness(s, x)


def exposure_loss(out, level=0.6, patch=16, one_sided=False):
    """Squared distance of each patch's mean from ``level``; ``one_sided``: only patches darker than it
    (lift the shadows, leave a bright sky or a lamp as it is, and keep the contrast between them)."""
    d = F.avg_pool2d(out.mean(1, keepdim=True), patch) - level
    return ((torch.relu(-d) if one_sided else d) ** 2).mean()


def color_constancy_loss(out):
    m = out.mean(dim=(2, 3))
    r, g, b = m[:, 0], m[:, 1], m[:, 2]
    return ((r - g) ** 2 + (r - b) ** 2 + (g - b) ** 2).mean()


def spatial_consistency_loss(out, x, patch=4):
    """Neighbour differences of the 4x4-pooled image are kept from input to output."""
    def grads(t):
        p = F.avg_pool2d(t.mean(1, keepdim=True), patch)
        return p[..., :, 1:] - p[..., :, :-1], p[..., 1:, :] - p[..., :-1, :]

    (ox, oy), (ix, iy) = grads(out), grads(x)
    return ((ox - ix) ** 2).mean() + ((oy - iy) ** 2).mean()


def tv(s):
    return (s[..., :, 1:] - s[..., :, :-1]).abs().mean() + (s[..., 1:, :] - s[..., :-1, :]).abs().mean()


def shadow_loss(out, x, level, frac=0.3):
    """Squared shortfall of the mean output luminance of each image's ``frac`` darkest input pixels
    below ``level``: lifts the shadows themselves, not the whole frame."""
    li, lo = luminance(x).flatten(1), luminance(out).flatten(1)
    k = max(1, int(frac * li.shape[1]))
    idx = torch.topk(li, k, dim=1, largest=False).indices
    return (torch.relu(level - lo.gather(1, idx).mean(1)) ** 2).mean()


def zero_reference_loss(out, s, x, level=0.6, w_color=5.0, one_sided=False, shadows=0.0):
    """No targets: exposure, colour-constancy, spatial-consistency and smoothness terms, and with
    ``shadows`` > 0 a lift of the darkest 30% to that level. ``w_color`` weighs the grey-world term;
    real dark frames lit by warm lamps want less of it (it turned them cyan)."""
    loss = (10 * exposure_loss(out, level, one_sided=one_sided) + w_color * color_constancy_loss(out)
            + spatial_consistency_loss(out, x) + 0.5 * tv(s))
    return loss + 10 * shadow_loss(out, x, shadows) if shadows > 0 else loss


def luminance(x):
    """Rec.709 luminance of an NCHW RGB batch, N1HW (``noref.luminance`` for tensors)."""
    return (x * x.new_tensor(REC709).view(1, 3, 1, 1)).sum(1, keepdim=True)


def new_clipping_loss(x, s, limit: float = 0.97, bright: float = 0.9):
    """Penalty on pushing pixels that were not already bright to white (before the output clip): a
    low-light model must lift shadows, not blow out the lamps and skies it was given. On luminance, so
    that it lowers the gain of all three channels alike (per channel it tinted highlights blue)."""
    return (torch.relu(luminance(x / s.clamp(min=1e-3)) - limit) * (luminance(x) < bright)).mean()
