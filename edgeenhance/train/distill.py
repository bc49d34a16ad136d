"""Distil the CycleGAN teacher's over->normal generator into a phone-sized student."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgeenhance.data.datasets import CropSampler
from edgeenhance.errors import UserError
from edgeenhance.models.registry import load_model, save_checkpoint
from edgeenhance.models.student import student as build_student
from edgeenhance.train.common import load_training_state, pick_device, save_training_state, seed_everything
from edgeenhance.train.gan import gan_loss


def student_fidelity(student, teacher, imgs, device="cpu") -> float:
    """Mean PSNR(student, teacher) over images."""
    from edgeenhance.evaluate import enhance_array
    from edgeenhance.metrics import psnr

    return float(np.mean([psnr(enhance_array(student, im, device), enhance_array(teacher, im, device)) for im in imgs]))


def distill(out_dir, teacher, over_imgs, val_imgs, student_size="small", steps=2000, batch=8, crop=256, lr=2e-3,
            w_feat=1.0, w_adv=0.0, discriminator=None, resume=False, seed=0, device=None, val_every=250,
            progress=True, log=print, cache_teacher=False, init=None) -> dict:
    """Train the student on L1(student, teacher) + feature matching (+ adversarial with the teacher's
    discriminator when ``w_adv`` > 0). Writes ``out_dir/{last,best,student}.safetensors``.

    ``cache_teacher`` runs the teacher once per training image up front and trains on pixel L1
    against those outputs only (no feature term): the affordable way on a CPU. ``init`` starts from
    an existing student checkpoint (fine-tuning)."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    dev = pick_device(device)
    seed_everything(seed)
    if isinstance(teacher, (str, Path)):
        teacher = load_model(str(teacher), dev)
    if getattr(teacher, "family", None) != "resnet_generator":
        raise UserError("--teacher must be a CycleGAN generator checkpoint (teacher.safetensors from `train cyclegan`)")
    teacher = teacher.to(dev).eval().requires_grad_(False)
    stu = build_student(student_size).to(dev)
    if init is not None:
        stu.load_state_dict(load_model(str(init)).state_dict())
    t_ch = teacher.blocks[0].block[1].in_channels
    s_ch = stu.blocks[0].body[0].in_channels
    adapter = nn.Conv2d(s_ch, t_ch, 1).to(dev)
    opt = torch.optim.Adam(list(stu.parameters()) + list(adapter.parameters()), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1), eta_min=lr * 0.02)
    disc = None
    if w_adv > 0:
        if discriminator is None:
            raise UserError("--adv needs --discriminator (discriminator_normal.safetensors from `train cyclegan`)")
        disc = (load_model(str(discriminator), dev) if isinstance(discriminator, (str, Path)) else discriminator)
        disc = disc.to(dev).eval().requires_grad_(False)
    if cache_teacher:
        from edgeenhance.evaluate import enhance_array

        targets = [enhance_array(teacher, im, dev) for im in tqdm(over_imgs, desc="teacher outputs", disable=not progress)]
        sampler = CropSampler(list(zip(over_imgs, targets)), crop=crop, seed=seed)
    else:
        sampler = CropSampler(over_imgs, crop=crop, seed=seed)
    start, best = 0, -1.0
    if resume:
        start, extra = load_training_state(out_dir / "last.safetensors", {"student": stu, "adapter": adapter},
                                           {"student": opt}, dev)
        best = extra.get("best", best)
        for _ in range(start):
            sched.step()
        log(f"resumed at step {start}")
    history = []
    bar = tqdm(range(start, steps), desc=f"distill {student_size}", unit="step", disable=not progress,
               initial=start, total=steps)
    for step in bar:
        if cache_teacher:
            x, t_out = (t.to(dev) for t in sampler.paired_batch(batch))
            s_out = stu(x)
            loss = F.l1_loss(s_out, t_out)
        else:
            x = sampler.batch(0, batch).to(dev)
            with torch.no_grad():
                t_out, t_feat = teacher.features(x)
            s_out, s_feat = stu.features(x)
            loss = F.l1_loss(s_out, t_out) + w_feat * F.l1_loss(adapter(s_feat["mid"]), t_feat["mid"]) * 0.1
        if disc is not None:
            loss = loss + w_adv * gan_loss(disc(s_out), True)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        history.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if (step + 1) % val_every == 0 or step + 1 == steps:
            stu.eval()
            fid = student_fidelity(stu, teacher, val_imgs, dev)
            stu.train()
            log(f"step {step + 1}: loss {loss.item():.4f}  PSNR(student, teacher) {fid:.2f} dB")
            if fid > best:
                best = fid
                save_checkpoint(out_dir / "best.safetensors", stu, name=f"student-{student_size}",
                                meta={"psnr_vs_teacher": fid, "step": step + 1})
            save_training_state(out_dir / "last.safetensors", {"student": stu, "adapter": adapter}, {"student": opt},
                                step + 1, {"best": best})
    stu.eval()
    save_checkpoint(out_dir / "student.safetensors", stu, name=f"student-{student_size}")
    return {"history": history, "best_psnr_vs_teacher": best, "student": stu}
