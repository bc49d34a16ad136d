"""Evaluation of any enhancer on paired data: PSNR, SSIM, a no-reference score and time per image."""

from __future__ import annotations

import time

import numpy as np
import torch

from edgeenhance.metrics import exposedness, psnr, ssim


def enhance_array(model, img: np.ndarray, device="cpu") -> np.ndarray:
    """Run any model (torch module or LIME) on one (H, W, 3) image."""
    if hasattr(model, "enhance"):
        return model.enhance(img)
    h, w = img.shape[:2]
    m = getattr(model, "pad_multiple", 1)
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:  # reflect-pad to what the strided network takes, crop back afterwards
        img = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="reflect" if min(h, w) > max(ph, pw) else "edge")
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].to(device)
        return model(x)[0].float().cpu().numpy().transpose(1, 2, 0)[:h, :w]


def evaluate(model, pairs, device="cpu", progress: bool = False, desc: str = "evaluating") -> dict:
    """Mean PSNR/SSIM against targets, mean exposedness (no-reference) and mean seconds per image."""
    from tqdm import tqdm

    rows, times = [], []
    for x, y in tqdm(pairs, desc=desc, unit="img", disable=not progress):
        t0 = time.perf_counter()
        out = enhance_array(model, x, device)
        times.append(time.perf_counter() - t0)
        rows.append((psnr(out, y), ssim(out, y), exposedness(out)))
    a = np.array(rows)
    return {"psnr": float(a[:, 0].mean()), "ssim": float(a[:, 1].mean()), "exposedness": float(a[:, 2].mean()),
            "sec_per_image": float(np.mean(times)), "n": len(pairs)}


def evaluate_input(pairs) -> dict:
    """The same scores for the unprocessed input (the 'do nothing' row)."""
    a = np.array([(psnr(x, y), ssim(x, y), exposedness(x)) for x, y in pairs])
    return {"psnr": float(a[:, 0].mean()), "ssim": float(a[:, 1].mean()), "exposedness": float(a[:, 2].mean()),
            "sec_per_image": 0.0, "n": len(pairs)}


def fast_enhance(model, img: np.ndarray, device="cpu") -> np.ndarray:
    """Like ``enhance_array``; for the bilateral model it runs the deployed path instead (low-res
    network in PyTorch + fused numba slicing), the same numbers about 40x faster at 12 MP."""
    if getattr(model, "family", None) != "bilateral":
        return enhance_array(model, img, device)
    from edgeenhance.runtime.fused_slice import fused_slice, resize_bilinear

    img = np.ascontiguousarray(img, np.float32)
    low = resize_bilinear(img, (model.lowres, model.lowres))
    with torch.no_grad():
        grid = model.gridnet(torch.from_numpy(low.transpose(2, 0, 1).copy())[None].to(device))[0].float().cpu().numpy()
    return fused_slice(img, grid, model.guide_params())
