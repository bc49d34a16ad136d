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
from edgeenhance.train import distributed
from edgeenhance.train.common import checked_model, seed_everything
from edgeenhance.train.configs import DistillConfig, configured
from edgeenhance.train.gan import gan_loss
from edgeenhance.train.loop import KeepBest, Loop, adam, cosine, evaluating, optimize


def student_fidelity(student, teacher, imgs, device="cpu") -> float:
    """Mean PSNR(student, teacher) over images."""
    from edgeenhance.evaluate import enhance_array
    from edgeenhance.metrics import psnr

    return float(np.mean([psnr(enhance_array(student, im, device), enhance_array(teacher, im, device)) for im in imgs]))


def load_teacher(spec, device="cpu"):
    """The CycleGAN over -> normal generator from a checkpoint path (or a built model), checked."""
    return checked_model(spec, "resnet_generator", "--teacher",
                         "a CycleGAN generator checkpoint (teacher.safetensors from `train cyclegan`)", device)


def check_inputs(teacher, discriminator=None, init=None, student_size="small", w_adv=0.0, device="cpu"):
    """(teacher, discriminator or None, init student or None), each read and checked: the right model
    family, and an ``init`` of the ``student_size`` asked for. Run before any data work, so that a
    wrong file is reported in a second, not after the training images are rendered."""
    teacher = load_teacher(teacher, device)
    if w_adv > 0 and discriminator is None:
        raise UserError("--adv needs --discriminator (discriminator_normal.safetensors from `train cyclegan`)")
    if discriminator is not None:
        discriminator = checked_model(discriminator, "patch_discriminator", "--discriminator",
                                      "a CycleGAN discriminator (discriminator_normal.safetensors from "
                                      "`train cyclegan`)", device)
    if init is not None:
        init = checked_model(init, "student", "--init", "a student checkpoint (from `distill`)", device)
        want = build_student(student_size).config
        if init.config != want:
            raise UserError(f"--init: a student with {init.config}, but --student {student_size} is {want}; "
                            "pass the --student size it was trained as")
    return teacher, discriminator, init


def distill(out_dir, teacher, over_imgs, val_imgs, config: DistillConfig | None = None, *, log=print,
            **options) -> dict:
    """Train the student on L1(student, teacher) + feature matching (+ adversarial with the teacher's
    discriminator when ``w_adv`` > 0). Writes ``out_dir/{last,best,student}.safetensors``.
    ``options``: ``DistillConfig`` fields, applied over ``config``.

    ``cache_teacher`` runs the teacher once per training image up front and trains on pixel L1
    against those outputs only (no feature term): the affordable way on a CPU. ``init`` starts from
    an existing student checkpoint (fine-tuning). ``teacher``, ``discriminator`` and ``init`` are
    checkpoint paths or models. The training state is also written every ``save_every_s`` seconds
    and on SIGINT/SIGTERM, after which the run stops (the summary's ``stopped`` names the signal); a
    resumed run continues as the uninterrupted one."""
    from tqdm import tqdm

    c = configured(DistillConfig, config, options)
    out_dir = Path(out_dir)
    world, dev = distributed.setup(c.device)
    loop = Loop(out_dir, resume=c.resume, save_every_s=c.save_every_s, progress=c.progress, log=log,
                lr_scale=c.lr_scale)
    log = loop.log
    teacher, disc, init = check_inputs(teacher, c.discriminator, c.init, c.student_size, c.w_adv, dev)
    seed_everything(c.seed)
    teacher = teacher.to(dev).eval().requires_grad_(False)
    stu = build_student(c.student_size).to(dev)
    if init is not None:
        stu.load_state_dict(init.state_dict())
    if dev.type == "cuda":  # tensor-core friendly layout for the convolutions
        teacher, stu = teacher.to(memory_format=torch.channels_last), stu.to(memory_format=torch.channels_last)
    t_ch = teacher.blocks[0].block[1].in_channels
    s_ch = stu.blocks[0].body[0].in_channels
    adapter = nn.Conv2d(s_ch, t_ch, 1).to(dev)
    opt = adam(list(stu.parameters()) + list(adapter.parameters()), distributed.scale_lr(c.lr, c.lr_scale))
    sched = cosine(opt, c.steps, floor=0.02)
    disc = disc.to(dev).eval().requires_grad_(False) if c.w_adv > 0 else None
    extra = loop.track({"student": stu, "adapter": adapter}, {"student": opt}, {"student": sched}, dev)
    if c.cache_teacher:
        from edgeenhance.evaluate import enhance_array

        targets = [enhance_array(teacher, im, dev) for im in tqdm(over_imgs, desc="teacher outputs",
                                                                  disable=not loop.progress)]
        sampler = CropSampler(list(zip(over_imgs, targets)), crop=c.crop, seed=c.seed)
    else:
        sampler = CropSampler(over_imgs, crop=c.crop, seed=c.seed)
    loop.track_random({"sampler": sampler.rng})
    if loop.resuming:
        log(f"resumed at step {loop.start}")
    loop.samples_per_step = c.batch * world.size
    distributed.announce(log, c.batch, opt.param_groups[0]["lr"], dev)
    # what the step calls: DDP-wrapped under torchrun (the frozen teacher and discriminator are not)
    net = distributed.wrap(stu, dev, "forward" if c.cache_teacher else "features", c.compile, log)
    adapt = distributed.wrap(adapter, dev, compile=c.compile, log=log)

    history = []

    def step(_):
        if c.cache_teacher:
            # this process's share of a global batch drawn alike by every process
            x, t_out = (distributed.shard(t).to(dev) for t in sampler.paired_batch(c.batch * world.size))
            with distributed.autocast(dev, c.amp):
                s_out = net(x).float()
            loss = F.l1_loss(s_out, t_out)
        else:
            x = distributed.shard(sampler.batch(0, c.batch * world.size)).to(dev)
            with torch.no_grad(), distributed.autocast(dev, c.amp):
                t_out, t_feat = teacher.features(x)
            with distributed.autocast(dev, c.amp):
                s_out, s_feat = net(x)
                feat = adapt(s_feat["mid"])
            s_out, t_out = s_out.float(), t_out.float()
            loss = F.l1_loss(s_out, t_out) + c.w_feat * F.l1_loss(feat.float(), t_feat["mid"].float()) * 0.1
        if disc is not None:
            loss = loss + c.w_adv * gan_loss(disc(s_out), True)
        optimize(opt, loss, sched)
        history.append(loss.item())
        return {"loss": f"{history[-1]:.4f}"}

    def validate(done):
        with evaluating(stu):
            fid = student_fidelity(stu, teacher, val_imgs, dev)
        log(f"step {done}: loss {history[-1]:.4f}  PSNR(student, teacher) {fid:.2f} dB")
        return fid, {"psnr_vs_teacher": fid, "step": done}

    name = f"student-{c.student_size}"
    keep = KeepBest(out_dir / "best.safetensors", stu, name, score=extra.get("best", -1.0))
    stopped = loop.run(step, c.steps, desc=f"distill {c.student_size}", val_every=c.val_every, validate=validate,
                       best=keep, meta=lambda: {"best": keep.score})
    stu.eval()
    if stopped is None and world.main:
        save_checkpoint(out_dir / "student.safetensors", stu, name=name)
    return {"history": history, "best_psnr_vs_teacher": keep.score, "student": stu, "stopped": stopped,
            "signum": loop.signum}
