"""Training loop of the bilateral-grid enhancer.

Data sources, mixable in one run:
- a folder of well-exposed real photos: exposure errors synthesized on the fly (``data.exposure``),
  supervised DeepUPE losses against the photo itself;
- folders of real dark photos with no targets (``zero_ref``): Zero-DCE style losses on them (on
  crops darker than ``zero_ref_below`` or with highlights above ``zero_ref_highlights``), and the
  penalty on newly blown pixels on all of them;
- folders of exposure brackets (``brackets``): real dark frames, supervised by their bracket's
  exposure fusion (``data.brackets``), a share of each batch next to the synthesized pairs;
- with ``zero_reference``, a plain folder of (dark) photos as ``data``: Zero-DCE style losses only,
  checkpoints chosen by a no-reference score on its held-out photos (``noref_score``);
- rendered pairs (``data='synthetic'``, or ``render_mix`` next to real photos) and paired dataset
  folders (LOL, FiveK, MSEC, input/+target/), as before.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgeenhance.data.datasets import CropSampler
from edgeenhance.errors import UserError
from edgeenhance.evaluate import evaluate
from edgeenhance.models.bilateral import BilateralEnhancer
from edgeenhance.models.registry import save_checkpoint
from edgeenhance.train import distributed
from edgeenhance.train.common import checked_model, seed_everything
from edgeenhance.train.configs import BilateralConfig, configured
from edgeenhance.train.data import is_photo_folder, paired_data
from edgeenhance.train.loop import KeepBest, Loop, WeightAverage, adam, cosine, evaluating, optimize
from edgeenhance.train.losses import luminance, new_clipping_loss, supervised_loss, zero_reference_loss

DARK_MAX = 0.3  # a real frame counts as low-light below this mean luminance
BRIGHT_MIN = 0.6  # ... and as over-exposed above this one
# Exposure kinds sampled per training pair: some well-exposed frames, so the model learns to leave them
# alone (a camera app runs it on every frame); the over-exposure model sees more of them, as most
# frames of a sunny day are fine.
KINDS = {"under": {"under": 0.9, "normal": 0.1}, "over": {"over": 0.75, "normal": 0.25}}
VAL_EV = {"under": (-4.0, -2.0), "over": (1.0, 2.5)}  # the validation pairs' exposure errors


def _photo_source(data, crop, seed, batch, start, workers, n_val, progress, log, exposure="under", highlights=0.0,
                  ev_range=None):
    from edgeenhance.data.photosets import ExposurePairs, batches, heldout_pairs, load_photos, photo_files
    from edgeenhance.data.exposure import EV_RANGES

    train = load_photos(photo_files(data, "train"), max_side=1024, progress=progress, desc="loading photos")
    val_photos = load_photos(photo_files(data, "val"), max_side=1024)
    lo, hi = ev_range or EV_RANGES[exposure]
    log(f"{data}: {len(train)} training photos, {len(val_photos)} held out; {exposure}-exposure errors of {lo:+g} "
        f"to {hi:+g} EV synthesized")
    pairs = ExposurePairs(train, crop, seed, kinds=KINDS[exposure], highlights=highlights, ev_range=ev_range)
    it = batches(pairs, batch, start, workers, *_shard())
    val = heldout_pairs(val_photos, n_val, kind=exposure, ev_range=VAL_EV[exposure])
    if exposure == "over":
        # and well-exposed photos (as many as in training, other photos): selected by PSNR on the mix, a
        # checkpoint that darkens every bright photo, good or bad, loses (such a one scored 18 dB on them)
        n_ok = max(1, round(len(val) * KINDS[exposure]["normal"] / KINDS[exposure]["over"]))
        val += heldout_pairs(val_photos[len(val):], n_ok, kind="normal", ev_range=(0.0, 0.0))
    return it, val


def _shard() -> tuple[int, int]:
    """(rank, processes): each process loads its own share of every global batch of the photo streams."""
    w = distributed.world()
    return w.rank, w.size


def badly_exposed(img, exposure: str) -> bool:
    from edgeenhance.noref import mean_luminance

    return mean_luminance(img) < DARK_MAX if exposure == "under" else mean_luminance(img) > BRIGHT_MIN


def _real_source(folders, crop, seed, batch, start, workers, progress, log, exposure="under"):
    """Real badly exposed frames without targets (dark ones for ``under``, bright ones for ``over``)."""
    from edgeenhance.data.photosets import PhotoCrops, batches, load_photos, photo_files

    def keep(img):
        return badly_exposed(img, exposure)

    train = []
    for f in folders:
        train += load_photos(photo_files(f, "train"), max_side=1024, progress=progress, desc=f"loading {Path(f).name}",
                             keep=keep)
    if not train:
        what = f"darker than mean luminance {DARK_MAX}" if exposure == "under" else f"brighter than mean luminance {BRIGHT_MIN}"
        raise UserError(f"--zero-ref: no frames {what} in {', '.join(map(str, folders))}")
    val = _held_out_frames(folders, exposure)
    kind = "low-light" if exposure == "under" else "over-exposed"
    log(f"zero-reference: {len(train)} real {kind} frames, {len(val)} held out")
    return batches(PhotoCrops(train, crop, seed + 1), batch, start, workers, *_shard()), val


def _held_out_frames(folders, exposure="under") -> list[np.ndarray]:
    """The held-out frames of ``folders`` that are badly exposed the ``exposure`` way, as float32,
    long side at most 512: what each validation scores (lift or drop, newly clipped)."""
    from edgeenhance.data.photosets import load_photos, photo_files

    val = []
    for f in folders:
        val += load_photos(photo_files(f, "val"), max_side=512, keep=lambda img: badly_exposed(img, exposure))
    return [v.astype(np.float32) / 255 for v in val]


def _bracket_source(folders, crop, seed, batch, start, workers, progress, log, scored=()):
    """Real dark frames paired with the fusion of their exposure bracket; returns the batches and the
    held-out dark frames of the folders not in ``scored`` (already scored as zero-reference frames)."""
    from edgeenhance.data.brackets import BracketPairs, bracket_pairs
    from edgeenhance.data.photosets import batches

    pairs = [p for f in folders for p in bracket_pairs(f, "train", DARK_MAX, progress=progress)]
    val = _held_out_frames([f for f in folders if Path(f) not in scored])
    log(f"brackets: {len(pairs)} real dark frames paired with their bracket's exposure fusion, {len(val)} held out")
    return batches(BracketPairs(pairs, crop, seed + 2), batch, start, workers, *_shard()), val


def _init_model(spec, model_config):
    """The model to fine-tune from (``--init``), checked: a bilateral model whose options agree with
    ``model_config`` where both are given; None without one."""
    if spec is None:
        return None
    init = checked_model(spec, "bilateral", "--init", "a bilateral model (a zoo name or a checkpoint from "
                         "`train bilateral`)")
    clash = {k: v for k, v in (model_config or {}).items() if init.config.get(k) != v}
    if clash:
        raise UserError(f"--init: its model has {', '.join(f'{k}={init.config.get(k)}' for k in clash)}, "
                        f"but {', '.join(f'{k}={v}' for k, v in clash.items())} was asked for")
    return init


def _ev_range_ok(r, exposure) -> bool:
    try:
        lo, hi = map(float, r)
    except (TypeError, ValueError):
        return False
    return lo <= hi and (hi <= 0.0 if exposure == "under" else lo >= 0.0)


def _zero_ref_crops(x: torch.Tensor, below: float, highlights: float = 1.0) -> torch.Tensor:
    """Which images of the batch get the zero-reference losses: a mean luminance below ``below`` (all of
    them at 1), or a brightest 2% above ``highlights`` (a dark frame with a lamp or a window; none at 1)."""
    lum = luminance(x).flatten(1)
    chosen = lum.mean(1) < below
    if highlights < 1.0:  # the quantile sorts every crop (16 ms of a 700 ms step on one core): only when asked
        chosen |= torch.quantile(lum, 0.98, dim=1) > highlights
    return chosen


def _real_scores(model, frames, dev) -> dict:
    """On real badly exposed frames: mean lift of the darkest 30%, drop of the brightest 30%, and the
    fraction of newly clipped pixels."""
    from edgeenhance.evaluate import fast_enhance
    from edgeenhance.noref import bright_drop, dark_lift, newly_clipped

    outs = [(x, np.clip(fast_enhance(model, x, dev), 0, 1)) for x in frames]
    return {"dark_lift": float(np.mean([dark_lift(x, y) for x, y in outs])),
            "bright_drop": float(np.mean([bright_drop(x, y) for x, y in outs])),
            "new_clipped": float(np.mean([newly_clipped(x, y) for x, y in outs]))}


def _plain_dark_source(data, crop, seed, batch, start, workers, n_val, progress, log):
    """--zero-reference on a plain folder of photos: crops of the photos themselves (no targets); its
    held-out photos (the last 15% by name) validate with ``noref_score``."""
    from edgeenhance.data.photosets import PhotoCrops, batches, load_photos, photo_files

    train = load_photos(photo_files(data, "train"), max_side=1024, progress=progress, desc="loading photos")
    val = load_photos(photo_files(data, "val")[:n_val], max_side=512)
    log(f"{data}: {len(train)} training photos without targets (zero-reference), {len(val)} held out; "
        f"checkpoints chosen by {NOREF_SCORE}")
    return (batches(PhotoCrops(train, crop, seed), batch, start, workers, *_shard()),
            [v.astype(np.float32) / 255 for v in val])


NOREF_SCORE = "no-reference score = dark lift - 2 x newly clipped - LOE fraction"


def noref_score(model, frames, dev) -> dict:
    """Validation without targets, higher is better: mean luminance gain of the darkest 30% of each
    held-out photo (``noref.dark_lift``), less twice the fraction of newly clipped pixels and the
    fraction of pixel pairs whose lightness order flipped (``noref.loe_fraction``): lift the shadows,
    without blowing out highlights or reordering light and dark."""
    from edgeenhance.evaluate import fast_enhance
    from edgeenhance.noref import dark_lift, loe_fraction, newly_clipped

    outs = [(x, np.clip(fast_enhance(model, x, dev), 0, 1)) for x in frames]
    r = {"dark_lift": float(np.mean([dark_lift(x, y) for x, y in outs])),
         "new_clipped": float(np.mean([newly_clipped(x, y) for x, y in outs])),
         "loe_fraction": float(np.mean([loe_fraction(x, y) for x, y in outs]))}
    r["score"] = r["dark_lift"] - 2 * r["new_clipped"] - r["loe_fraction"]
    return r


def train_bilateral(out_dir, config: BilateralConfig | None = None, *, log=print, **options) -> dict:
    """Train and write ``out_dir/{last,best,final}.safetensors``; returns a summary with the loss history.
    ``options``: ``BilateralConfig`` fields, applied over ``config``.

    The training state (``last.safetensors``) is written at each validation, every ``save_every_s``
    seconds, and on SIGINT/SIGTERM, after which the run stops (the summary's ``stopped`` names the
    signal). A resumed run continues exactly as the uninterrupted one would have. ``best`` is chosen
    by validation PSNR, or, for ``zero_reference`` on a plain folder of photos (no targets), by
    ``noref_score`` on its held-out photos."""
    c = configured(BilateralConfig, config, options)
    out_dir = Path(out_dir)
    if not 0.0 <= c.render_mix < 1.0:
        raise UserError(f"--render-mix must be in [0, 1), got {c.render_mix}")
    if c.brackets and not 0.0 < c.bracket_mix + c.render_mix < 1.0:
        raise UserError(f"--bracket-mix must be in (0, 1) with --render-mix (together below 1), got {c.bracket_mix}")
    for f in c.brackets:  # before any data work
        if not Path(f).is_dir():
            raise UserError(f"--brackets {f}: no such folder")
    if not 0.0 <= c.highlights <= 1.0:
        raise UserError(f"--highlights must be in [0, 1], got {c.highlights}")
    if c.ev_range is not None and not _ev_range_ok(c.ev_range, c.exposure):
        raise UserError(f"--ev-range must be two numbers LO <= HI, both <= 0 for --exposure under (>= 0 for over), "
                        f"got {c.ev_range}")
    if c.ema and not 0.0 < c.ema < 1.0:
        raise UserError(f"--ema must be in (0, 1) (or 0: off), got {c.ema}")
    if not c.clip_weight >= 0.0:
        raise UserError(f"--clip-weight must be 0 or more, got {c.clip_weight}")
    if not 0.0 < c.zero_ref_below <= 1.0:
        raise UserError(f"--zero-ref-below must be in (0, 1], got {c.zero_ref_below}")
    if not 0.0 < c.zero_ref_highlights <= 1.0:
        raise UserError(f"--zero-ref-highlights must be in (0, 1], got {c.zero_ref_highlights}")
    if not 0.0 <= c.zero_ref_shadows < 1.0:
        raise UserError(f"--zero-ref-shadows must be in [0, 1), got {c.zero_ref_shadows}")
    init = _init_model(c.init, c.model_config)  # before any data work: a wrong file fails in a second
    world, dev = distributed.setup(c.device)
    loop = Loop(out_dir, resume=c.resume, save_every_s=c.save_every_s, progress=c.progress, log=log,
                lr_scale=c.lr_scale)
    log, progress = loop.log, loop.progress
    teacher = None
    if c.teacher is not None:
        from edgeenhance.train.distill import load_teacher

        if not c.zero_ref:
            raise UserError("--teacher needs --zero-ref: the real photos the teacher's outputs become targets for")
        teacher = load_teacher(c.teacher, dev)
    seed_everything(c.seed)
    model = BilateralEnhancer(**(init.config if init is not None else c.model_config or {}))
    if init is not None:
        model.load_state_dict(init.state_dict())
    model = model.to(dev)
    opt = adam(model.parameters(), distributed.scale_lr(c.lr, c.lr_scale))
    sched = cosine(opt, c.steps, floor=0.05)
    avg = WeightAverage(model, c.ema) if c.ema else None
    shown = avg.model if avg else model  # what is validated and saved
    extra = loop.track({"model": model, **({"ema": avg.model} if avg else {})}, {"model": opt}, {"model": sched}, dev)
    start, best, running = loop.start, extra.get("best", {"psnr": -1.0}), extra.get("running")

    photos = c.data != "synthetic" and c.layout in (None, "photos") and is_photo_folder(c.data)
    noref = photos and c.zero_reference  # no targets anywhere: validate without them
    batch, crop, seed, workers, exposure = c.batch, c.crop, c.seed, c.workers, c.exposure
    loop.samples_per_step = batch * world.size
    net = distributed.wrap(model, dev, "forward_with_illumination", c.compile, log)  # what the step calls
    n_render = int(round(batch * c.render_mix)) if photos else 0
    n_brackets = max(1, int(round(batch * c.bracket_mix))) if photos and c.brackets and not noref else 0
    if c.brackets and not n_brackets:
        raise UserError("--brackets needs --data, a folder of well-exposed photos (exposure errors are synthesized "
                        "from them next to the bracket pairs)")
    if c.brackets and exposure != "under":
        raise UserError("--brackets pairs dark frames with their bracket's fusion: it is for --exposure under")
    if n_brackets and batch - n_render - n_brackets < 1:
        raise UserError(f"--batch {batch} leaves no synthesized pairs next to {n_brackets} bracket and {n_render} "
                        f"rendered pair(s) per step: raise --batch or lower --bracket-mix")
    rendered = sampler = None
    if noref:
        real_it, val = _plain_dark_source(c.data, crop, seed, batch - n_render, start, workers, c.val_images,
                                          progress, log)
        best = best if "score" in best else {"score": -float("inf")}
    elif photos:
        real_it, val = _photo_source(c.data, crop, seed, batch - n_render - n_brackets, start, workers, c.val_images,
                                     progress, log, exposure, c.highlights, c.ev_range)
    else:
        train, val = paired_data(c.data, c.layout, c.n_images, exposure, crop, seed, c.val_images, c.skip_bad,
                                 progress)
        sampler = CropSampler(train, crop=crop, seed=seed)
    if photos and n_render:
        rendered, _ = paired_data("synthetic", None, c.n_images, exposure, crop, seed, 1, progress=progress)
        sampler = CropSampler(rendered, crop=crop, seed=seed)
    dark_it, dark_val = _real_source(c.zero_ref, crop, seed, max(1, batch // 2), start, workers, progress, log,
                                     exposure) if c.zero_ref else (None, [])
    bracket_it = None
    if n_brackets:
        bracket_it, bracket_val = _bracket_source(c.brackets, crop, seed, n_brackets, start, workers, progress, log,
                                                  scored={Path(f) for f in c.zero_ref})
        dark_val = dark_val + bracket_val
    loop.track_random({"sampler": sampler.rng} if sampler is not None else {})
    if loop.resuming:
        log(f"resumed from {loop.path} at step {start}")
    distributed.announce(log, batch, opt.param_groups[0]["lr"], dev)

    def drawn(n):
        """This process's share of n x processes pairs drawn from the shared sampler (the same draws on
        every process: together the processes train on exactly the global batch)."""
        x, y = sampler.paired_batch(n * world.size)
        return distributed.shard(x), distributed.shard(y)

    def next_pair():
        if not photos:
            return drawn(batch)
        x, y = (next(real_it), None) if noref else next(real_it)
        if n_render:
            rx, ry = drawn(n_render)
            x, y = torch.cat([x, rx]), (None if noref else torch.cat([y, ry]))
        if bracket_it is not None:
            bx, by = next(bracket_it)
            x, y = torch.cat([x, bx]), torch.cat([y, by])
        return x, y

    history = []

    def step(i):
        nonlocal running
        x, y = next_pair()
        x = x.to(dev, non_blocking=True)
        with distributed.autocast(dev, c.amp):
            out, s = net(x)
        out, s = out.float(), s.float()
        loss = zero_reference_loss(out, s, x) if c.zero_reference else supervised_loss(out, s, x, y.to(dev))
        loss = loss + c.clip_weight * new_clipping_loss(x, s)
        if dark_it is not None and (c.zero_ref_weight > 0 or teacher is not None):
            d = next(dark_it).to(dev, non_blocking=True)
            with distributed.autocast(dev, c.amp):
                dout, ds = net(d)
            dout, ds = dout.float(), ds.float()
            loss = loss + c.clip_weight * new_clipping_loss(d, ds)
            dark = _zero_ref_crops(d, c.zero_ref_below, c.zero_ref_highlights)
            if c.zero_ref_weight > 0 and dark.any():
                loss = loss + c.zero_ref_weight * dark.float().mean() * zero_reference_loss(
                    dout[dark], ds[dark], d[dark], c.zero_ref_level, w_color=1.0, one_sided=c.zero_ref_one_sided,
                    shadows=c.zero_ref_shadows)
            if teacher is not None:
                with torch.no_grad():
                    target = teacher(d).clamp(0, 1)
                loss = loss + c.teacher_weight * supervised_loss(dout, ds, d, target)
        optimize(opt, loss, sched)
        if avg is not None:
            avg.update(model, i)
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        history.append(loss.item())
        return {"loss": f"{running:.4f}"}

    key = "score" if noref else "psnr"

    def validate(done):
        with evaluating(shown):
            scores = noref_score(shown, val, dev) if noref else evaluate(shown, val, dev)
            if dark_val:
                scores.update(_real_scores(shown, dark_val, dev))
        shift = (f"lift {scores['dark_lift']:.3f}" if exposure == "under" else
                 f"brightest-30% drop {scores['bright_drop']:.3f}") if dark_val else ""
        real = (f"  real {exposure}-exposed: {shift}, newly clipped {100 * scores['new_clipped']:.2f}%"
                if dark_val else "")
        if noref:
            log(f"step {done}: loss {running:.4f}  val {NOREF_SCORE}: {scores['score']:.4f} (dark lift "
                f"{scores['dark_lift']:.3f}, newly clipped {100 * scores['new_clipped']:.2f}%, LOE fraction "
                f"{scores['loe_fraction']:.4f}){real}")
        else:
            log(f"step {done}: loss {running:.4f}  val PSNR {scores['psnr']:.2f} dB  SSIM {scores['ssim']:.4f}{real}")
        return scores[key], {**scores, "step": done}

    keep = KeepBest(out_dir / "best.safetensors", shown, "bilateral", lambda b: {"val": b, "exposure": exposure},
                    score=best[key], record=best)
    stopped = loop.run(step, c.steps, desc="train bilateral", val_every=c.val_every, validate=validate, best=keep,
                       meta=lambda: {"best": keep.record, "running": running})
    model.eval()
    shown.eval()
    if stopped is None and world.main:
        save_checkpoint(out_dir / "final.safetensors", shown, name="bilateral", meta={"exposure": exposure})
    return {"history": history, "best": keep.record, "out_dir": str(out_dir), "model": shown, "stopped": stopped,
            "selected_by": "noref" if noref else "psnr", "signum": loop.signum}
