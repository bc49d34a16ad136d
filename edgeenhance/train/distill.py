"""Distil the CycleGAN teacher's over->normal generator into a phone-sized student."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgeenhance.data.datasets import CropSampler
from edgeenhance.errors import UserError
from edgeenhance.models.registry import save_checkpoint
from edgeenhance.models.student import student as build_student
from edgeenhance.train.common import (SAVE_EVERY_S, GracefulStop, SaveClock, TrainingState, keep_state, pick_device,
                                      save_training_state, seed_everything)
from edgeenhance.train.gan import gan_loss


def student_fidelity(student, teacher, imgs, device="cpu") -> float:
    """Mean PSNR(student, teacher) over images."""
    from edgeenhance.evaluate import enhance_array
    from edgeenhance.metrics import psnr

    return float(np.mean([psnr(enhance_array(student, im, device), enhance_array(teacher, im, device)) for im in imgs]))


def _checkpoint(spec, family: str, option: str, what: str, device="cpu"):
    """A model from a checkpoint path (or an already built model), refused unless of ``family``."""
    from edgeenhance.models.registry import load_model

    if isinstance(spec, (str, Path)):
        try:
            spec = load_model(str(spec), device)
        except UserError as e:
            raise UserError(f"{option}: {e}") from None
    if getattr(spec, "family", None) != family:
        raise UserError(f"{option} must be {what}; got a {getattr(spec, 'family', type(spec).__name__)} model")
    return spec


def load_teacher(spec, device="cpu"):
    """The CycleGAN over -> normal generator from a checkpoint path (or a built model), checked."""
    return _checkpoint(spec, "resnet_generator", "--teacher",
                       "a CycleGAN generator checkpoint (teacher.safetensors from `train cyclegan`)", device)


def check_inputs(teacher, discriminator=None, init=None, student_size="small", w_adv=0.0, device="cpu"):
    """(teacher, discriminator or None, init student or None), each read and checked: the right model
    family, and an ``init`` of the ``student_size`` asked for. Run before any data work, so that a
    wrong file is reported in a second, not after the training images are rendered."""
    teacher = load_teacher(teacher, device)
    if w_adv > 0 and discriminator is None:
        raise UserError("--adv needs --discriminator (discriminator_normal.safetensors from `train cyclegan`)")
    if discriminator is not None:
        discriminator = _checkpoint(discriminator, "patch_discriminator", "--discriminator",
                                    "a CycleGAN discriminator (discriminator_normal.safetensors from `train cyclegan`)",
                                    device)
    if init is not None:
        init = _checkpoint(init, "student", "--init", "a student checkpoint (from `distill`)", device)
        want = build_student(student_size).config
        if init.config != want:
            raise UserError(f"--init: a student with {init.config}, but --student {student_size} is {want}; "
                            "pass the --student size it was trained as")
    return teacher, discriminator, init


def distill(out_dir, teacher, over_imgs, val_imgs, student_size="small", steps=2000, batch=8, crop=256, lr=2e-3,
            w_feat=1.0, w_adv=0.0, discriminator=None, resume=False, seed=0, device=None, val_every=250,
            progress=True, log=print, cache_teacher=False, init=None, save_every_s=SAVE_EVERY_S) -> dict:
    """Train the student on L1(student, teacher) + feature matching (+ adversarial with the teacher's
    discriminator when ``w_adv`` > 0). Writes ``out_dir/{last,best,student}.safetensors``.

    ``cache_teacher`` runs the teacher once per training image up front and trains on pixel L1
    against those outputs only (no feature term): the affordable way on a CPU. ``init`` starts from
    an existing student checkpoint (fine-tuning). ``teacher``, ``discriminator`` and ``init`` are
    checkpoint paths or models. The training state is also written every ``save_every_s`` seconds
    and on SIGINT/SIGTERM, after which the run stops (the summary's ``stopped`` names the signal); a
    resumed run continues as the uninterrupted one."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    state_path = out_dir / "last.safetensors"
    state = TrainingState(state_path) if resume else None  # inputs are checked before any data work
    dev = pick_device(device)
    teacher, disc, init = check_inputs(teacher, discriminator, init, student_size, w_adv, dev)
    seed_everything(seed)
    teacher = teacher.to(dev).eval().requires_grad_(False)
    stu = build_student(student_size).to(dev)
    if init is not None:
        stu.load_state_dict(init.state_dict())
    t_ch = teacher.blocks[0].block[1].in_channels
    s_ch = stu.blocks[0].body[0].in_channels
    adapter = nn.Conv2d(s_ch, t_ch, 1).to(dev)
    opt = torch.optim.Adam(list(stu.parameters()) + list(adapter.parameters()), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1), eta_min=lr * 0.02)
    if w_adv > 0:
        disc = disc.to(dev).eval().requires_grad_(False)
    else:
        disc = None
    models = {"student": stu, "adapter": adapter}
    start, best = 0, -1.0
    if state is not None:
        state.restore(models, {"student": opt}, dev, {"student": sched})
        start, best = state.step, state.extra.get("best", best)
    if cache_teacher:
        from edgeenhance.evaluate import enhance_array

        targets = [enhance_array(teacher, im, dev) for im in tqdm(over_imgs, desc="teacher outputs", disable=not progress)]
        sampler = CropSampler(list(zip(over_imgs, targets)), crop=crop, seed=seed)
    else:
        sampler = CropSampler(over_imgs, crop=crop, seed=seed)
    if state is not None:
        state.restore_random({"sampler": sampler.rng})
        log(f"resumed at step {start}")

    def save_state(step):
        save_training_state(state_path, models, {"student": opt}, step, {"best": best}, {"student": sched},
                            {"sampler": sampler.rng})

    history, clock, stopped = [], SaveClock(save_every_s), None
    bar = tqdm(range(start, steps), desc=f"distill {student_size}", unit="step", disable=not progress,
               initial=start, total=steps)
    with GracefulStop() as stop:
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
            validated = (step + 1) % val_every == 0 or step + 1 == steps
            if validated:
                stu.eval()
                fid = student_fidelity(stu, teacher, val_imgs, dev)
                stu.train()
                log(f"step {step + 1}: loss {loss.item():.4f}  PSNR(student, teacher) {fid:.2f} dB")
                if fid > best:
                    best = fid
                    save_checkpoint(out_dir / "best.safetensors", stu, name=f"student-{student_size}",
                                    meta={"psnr_vs_teacher": fid, "step": step + 1})
            stopped = keep_state(save_state, step + 1, clock, stop, state_path, log, validated)
            if stopped:
                break
    bar.close()
    stu.eval()
    if stopped is None:
        save_checkpoint(out_dir / "student.safetensors", stu, name=f"student-{student_size}")
    return {"history": history, "best_psnr_vs_teacher": best, "student": stu, "stopped": stopped,
            "signum": stop.signum}
