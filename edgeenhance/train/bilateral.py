"""Training loop of the bilateral-grid enhancer (supervised DeepUPE losses or zero-reference)."""

from __future__ import annotations

from pathlib import Path

import torch

from edgeenhance.data.datasets import CropSampler
from edgeenhance.evaluate import evaluate
from edgeenhance.models.bilateral import BilateralEnhancer
from edgeenhance.models.registry import save_checkpoint
from edgeenhance.train.common import load_training_state, pick_device, save_training_state, seed_everything
from edgeenhance.train.data import paired_data
from edgeenhance.train.losses import supervised_loss, zero_reference_loss


def train_bilateral(out_dir, data="synthetic", layout=None, steps=2000, batch=8, crop=256, lr=1e-3, n_images=512,
                    val_images=16, exposure="under", zero_reference=False, resume=False, seed=0, val_every=250,
                    device=None, model_config=None, progress=True, skip_bad=False, log=print) -> dict:
    """Train and write ``out_dir/{last,best}.safetensors``; returns a summary with the loss history."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    dev = pick_device(device)
    seed_everything(seed)
    train, val = paired_data(data, layout, n_images, exposure, crop, seed, val_images, skip_bad, progress)
    sampler = CropSampler(train, crop=crop, seed=seed)
    model = BilateralEnhancer(**(model_config or {})).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1), eta_min=lr * 0.05)
    start, best = 0, {"psnr": -1.0}
    state_path = out_dir / "last.safetensors"
    if resume:
        start, extra = load_training_state(state_path, {"model": model}, {"model": opt}, dev)
        best = extra.get("best", best)
        for _ in range(start):
            sched.step()
        log(f"resumed from {state_path} at step {start}")
    history = []
    bar = tqdm(range(start, steps), desc="train bilateral", unit="step", disable=not progress, initial=start, total=steps)
    running = None
    for step in bar:
        x, y = (t.to(dev) for t in sampler.paired_batch(batch))
        out, s = model.forward_with_illumination(x)
        loss = zero_reference_loss(out, s, x) if zero_reference else supervised_loss(out, s, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        history.append(loss.item())
        bar.set_postfix(loss=f"{running:.4f}")
        if (step + 1) % val_every == 0 or step + 1 == steps:
            model.eval()
            scores = evaluate(model, val, dev)
            model.train()
            log(f"step {step + 1}: loss {running:.4f}  val PSNR {scores['psnr']:.2f} dB  SSIM {scores['ssim']:.4f}")
            if scores["psnr"] > best["psnr"]:
                best = {**scores, "step": step + 1}
                save_checkpoint(out_dir / "best.safetensors", model, name="bilateral", meta={"val": best})
            save_training_state(state_path, {"model": model}, {"model": opt}, step + 1, {"best": best})
    bar.close()
    model.eval()
    save_checkpoint(out_dir / "final.safetensors", model, name="bilateral")
    return {"history": history, "best": best, "out_dir": str(out_dir), "model": model}
