"""CycleGAN training: over-exposed (X) <-> well-exposed (Y), unpaired."""

from __future__ import annotations

import itertools
from pathlib import Path

import torch

from edgeenhance.data.datasets import CropSampler
from edgeenhance.errors import UserError
from edgeenhance.models.cyclegan import PatchDiscriminator, ResnetGenerator, init_weights
from edgeenhance.models.registry import save_checkpoint
from edgeenhance.train import distributed
from edgeenhance.train.common import seed_everything
from edgeenhance.train.configs import CycleGANConfig, configured
from edgeenhance.train.gan import ImagePool, gan_loss
from edgeenhance.train.loop import Loop, adam, linear_decay_schedule, optimize


def build_cyclegan(ngf=64, n_blocks=9, ndf=64, seed=0):
    torch.manual_seed(seed)
    nets = {"G": ResnetGenerator(ngf, n_blocks), "F": ResnetGenerator(ngf, n_blocks),
            "D_X": PatchDiscriminator(ndf), "D_Y": PatchDiscriminator(ndf)}
    return {k: init_weights(v) for k, v in nets.items()}


def cyclegan_step(nets, opts, x, y, pools, lam=10.0, lam_id=0.5, gan_mode="lsgan", amp=False, calls=None):
    """One optimisation step (generators, then discriminators). Returns the losses as floats.
    ``calls``: what to call for each net (DDP-wrapped under torchrun; default ``nets``). The generators'
    step calls the discriminators unwrapped: their weights are frozen there, and DDP expects gradients
    for every weight it wraps."""
    calls = calls or nets
    G, Fn, D_X, D_Y = calls["G"], calls["F"], nets["D_X"], nets["D_Y"]
    ctx = distributed.autocast(x.device, amp)
    for d in (D_X, D_Y):
        d.requires_grad_(False)
    with ctx:
        fake_y, fake_x = G(x), Fn(y)
        rec_x, rec_y = Fn(fake_y), G(fake_x)
        loss_g = gan_loss(D_Y(fake_y), True, gan_mode)
        loss_f = gan_loss(D_X(fake_x), True, gan_mode)
        loss_cyc = lam * ((rec_x.float() - x).abs().mean() + (rec_y.float() - y).abs().mean())
        loss_id = torch.zeros((), device=x.device)
        if lam_id > 0:
            loss_id = lam * lam_id * ((G(y).float() - y).abs().mean() + (Fn(x).float() - x).abs().mean())
        total = loss_g + loss_f + loss_cyc + loss_id
    optimize(opts["G"], total)
    for d in (D_X, D_Y):
        d.requires_grad_(True)
    D_X, D_Y = calls["D_X"], calls["D_Y"]
    with ctx:
        fy, fx = pools["Y"].query(fake_y.float()), pools["X"].query(fake_x.float())
        loss_dy = 0.5 * (gan_loss(D_Y(y), True, gan_mode) + gan_loss(D_Y(fy), False, gan_mode))
        loss_dx = 0.5 * (gan_loss(D_X(x), True, gan_mode) + gan_loss(D_X(fx), False, gan_mode))
    optimize(opts["D"], loss_dx + loss_dy)
    return {"G_adv": loss_g.item(), "F_adv": loss_f.item(), "cycle": loss_cyc.item(), "identity": loss_id.item(),
            "D_X": loss_dx.item(), "D_Y": loss_dy.item()}


def make_optimizers(nets, lr=2e-4, beta1=0.5):
    return {"G": adam(itertools.chain(nets["G"].parameters(), nets["F"].parameters()), lr, (beta1, 0.999)),
            "D": adam(itertools.chain(nets["D_X"].parameters(), nets["D_Y"].parameters()), lr, (beta1, 0.999))}


def save_sample_grid(path, nets, x):
    """Rows of (input, G(x), F(G(x))) for a few over-exposed images."""
    from edgeenhance.data.imageio import write_image

    with torch.no_grad():
        gy = nets["G"](x).float()
        rec = nets["F"](gy).float()
    rows = [torch.cat([a, b, c], dim=2) for a, b, c in zip(x, gy, rec)]
    write_image(path, torch.cat(rows, dim=1).clamp(0, 1).permute(1, 2, 0).cpu().numpy())


def train_cyclegan(out_dir, over_imgs, normal_imgs, config: CycleGANConfig | None = None, *, log=print,
                   **options) -> dict:
    """Train G: over -> normal and F: normal -> over. Writes per epoch: losses (log.jsonl), a
    sample grid, the training state (last.safetensors) and the teacher generator (teacher.safetensors).
    ``options``: ``CycleGANConfig`` fields, applied over ``config``.

    The training state is also written every ``save_every_s`` seconds and on SIGINT/SIGTERM, after
    which the run stops (the summary's ``stopped`` names the signal); it holds the samplers' and image
    pools' states, so a resumed run, even one stopped mid-epoch, continues as the uninterrupted one."""
    import json

    c = configured(CycleGANConfig, config, options)
    out_dir = Path(out_dir)
    world, dev = distributed.setup(c.device)
    loop = Loop(out_dir, resume=c.resume, save_every_s=c.save_every_s, progress=c.progress, log=log,
                lr_scale=c.lr_scale)
    log = loop.log
    out_dir.mkdir(parents=True, exist_ok=True)
    amp = (dev.type == "cuda") if c.amp is None else c.amp
    seed_everything(c.seed)
    nets = {k: v.to(dev) for k, v in build_cyclegan(c.ngf, c.n_blocks, c.ndf, c.seed).items()}
    if dev.type == "cuda":
        nets = {k: v.to(memory_format=torch.channels_last) for k, v in nets.items()}
    opts = make_optimizers(nets, distributed.scale_lr(c.lr, c.lr_scale))
    scheds = {k: linear_decay_schedule(o, c.epochs) for k, o in opts.items()}  # stepped per epoch
    # one image pool per process, each with its own random stream (rank 0: as a single process)
    pools = {"X": ImagePool(c.pool_size, c.seed + 1_000_003 * world.rank),
             "Y": ImagePool(c.pool_size, c.seed + 1 + 1_000_003 * world.rank)}
    sampler = CropSampler(over_imgs, normal_imgs, crop=c.crop, seed=c.seed)
    spe = c.steps_per_epoch or max(1, max(len(over_imgs), len(normal_imgs)) // (c.batch * world.size))
    fixed = sampler.batch(0, 4).to(dev)  # drawn before a resumed sampler state: the same images every run
    extra = loop.track(nets, opts, scheds, dev)
    sums = {}
    if loop.resuming:
        if "steps_per_epoch" not in extra:  # written at epoch ends only: its step counted epochs
            loop.start = loop.start * spe
        elif extra["steps_per_epoch"] != spe and extra.get("processes", 1) != world.size and not c.steps_per_epoch:
            # another number of processes: the same place in the same epoch, in this run's steps
            old = extra["steps_per_epoch"]
            loop.start = loop.start // old * spe + round(loop.start % old * spe / old)
            sums = extra.get("epoch_sums", {})
        elif extra["steps_per_epoch"] != spe:
            raise UserError(f"--resume: {loop.path} was written with {extra['steps_per_epoch']} steps per epoch, "
                            f"this run has {spe}; use the same data and --batch")
        else:
            sums = extra.get("epoch_sums", {})
        for name, t in loop.state.extra_tensors().items():
            if name.startswith("pool_"):
                pools[name[len("pool_"):]].images = [im.to(dev) for im in t.split(1)]
    loop.track_random({"sampler": sampler.rng, "pool_X": pools["X"].rng, "pool_Y": pools["Y"].rng})
    if loop.resuming:
        log(f"resumed from {loop.path} at epoch {loop.start // spe + 1}, step {loop.start % spe}")
    loop.samples_per_step = c.batch * world.size
    distributed.announce(log, c.batch, opts["G"].param_groups[0]["lr"], dev, " (per domain)")
    calls = {k: distributed.wrap(v, dev, compile=c.compile, log=log) for k, v in nets.items()}

    def step(_):
        # this process's share of global batches drawn alike by every process
        x = distributed.shard(sampler.batch(0, c.batch * world.size)).to(dev, non_blocking=True)
        y = distributed.shard(sampler.batch(1, c.batch * world.size)).to(dev, non_blocking=True)
        if dev.type == "cuda":
            x, y = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)
        losses = cyclegan_step(nets, opts, x, y, pools, c.lam, c.lam_id, c.gan_mode, amp, calls)
        for name, v in losses.items():
            sums[name] = sums.get(name, 0.0) + v
        return {"cyc": f"{losses['cycle']:.3f}", "D": f"{losses['D_Y']:.3f}"}

    history = []

    def epoch_end(done):
        epoch = done // spe
        for s in scheds.values():
            s.step()
        means = {name: v / spe for name, v in sums.items()}
        means.update(epoch=epoch, lr=opts["G"].param_groups[0]["lr"])
        sums.clear()
        history.append(means)
        if not world.main:
            return
        with open(out_dir / "log.jsonl", "a") as fh:
            fh.write(json.dumps(means) + "\n")
        log("epoch {epoch}: ".format(**means) + "  ".join(f"{k} {v:.4f}" for k, v in means.items() if k != "epoch"))
        save_sample_grid(out_dir / f"samples_epoch{epoch:03d}.png", nets, fixed)
        save_checkpoint(out_dir / "teacher.safetensors", nets["G"], name="cyclegan-teacher")
        save_checkpoint(out_dir / "discriminator_normal.safetensors", nets["D_Y"], name="D_Y")

    stopped = loop.run(step, c.epochs * spe, desc=lambda i: f"cyclegan epoch {i // spe + 1}/{c.epochs}",
                       val_every=spe, validate=epoch_end,  # "validation" at each epoch's end
                       meta=lambda: {"steps_per_epoch": spe, "epoch_sums": sums, "processes": world.size},
                       tensors=lambda: {f"pool_{n}": torch.cat(p.images) for n, p in pools.items() if p.images})
    return {"history": history, "nets": nets, "out_dir": str(out_dir), "stopped": stopped, "signum": loop.signum}
