"""The one training loop every trainer runs its steps through.

The loop owns: the progress bar, when validation runs, the best checkpoint (``KeepBest``), the
training state ``last.safetensors`` (written at each validation, every ``save_every_s`` seconds and on
SIGINT/SIGTERM, after which the run stops) and an exact resume. A trainer provides its models,
optimizers and schedulers, a step function and a validation function:

    loop = Loop(out_dir, resume=cfg.resume, save_every_s=cfg.save_every_s, progress=cfg.progress, log=log)
    opt = adam(model.parameters(), cfg.lr)
    sched = cosine(opt, cfg.steps, floor=0.05)
    extra = loop.track({"model": model}, {"model": opt}, {"model": sched}, device)  # restored on resume
    sampler = ...                                   # data set-up may draw random numbers ...
    loop.track_random({"sampler": sampler.rng})     # ... so random states are restored after it
    loop.run(step, cfg.steps, val_every=250, validate=validate, best=KeepBest(out_dir / "best.safetensors",
             model, "bilateral"), meta=lambda: {...})

A GAN trainer tracks several optimizers and steps them in its step function.

Under torchrun (``train/distributed.py``) every rank runs the loop: each rank's step sees its share of
the global batch and DDP averages the gradients; validation runs on every rank (so that anything it
steps, like the CycleGAN's epoch schedulers, stays in step), but only rank 0 shows progress, logs,
keeps the best checkpoint and writes the training state; a signal on any rank stops all of them after
the same step. At the end, ``OUT/world.json`` records the world, the global batch, the measured
samples/s and a fingerprint of the parameters on every rank (identical after DDP steps).
"""

from __future__ import annotations

import copy
import math
import os
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Callable

import torch

from edgeenhance.train import distributed
from edgeenhance.train.common import TrainingState, save_training_state
from edgeenhance.train.configs import SAVE_EVERY_S

# --- optimizer and schedules ----------------------------------------------------------------------


def adam(params, lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, betas=betas)


def cosine(opt: torch.optim.Optimizer, steps: int, floor: float):
    """Cosine decay over ``steps`` optimizer steps, from the optimizer's learning rate to ``floor`` times it."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1), eta_min=opt.defaults["lr"] * floor)


def linear_decay(epochs: int, decay_start: int | None = None):
    """LR factor per epoch: 1 for the first half (or until ``decay_start``), then linear to 0 at
    ``epochs``, as in the CycleGAN paper's recipe (100 constant + 100 decaying epochs)."""
    start = epochs // 2 if decay_start is None else decay_start
    span = max(epochs - start, 1)
    return lambda epoch: 1.0 - max(0, epoch - start) / span


def linear_decay_schedule(opt: torch.optim.Optimizer, epochs: int):
    """``linear_decay`` as a scheduler, stepped once per epoch."""
    return torch.optim.lr_scheduler.LambdaLR(opt, linear_decay(epochs))


def optimize(opt: torch.optim.Optimizer, loss: torch.Tensor, *scheds) -> None:
    """One optimizer step on ``loss``, then one step of each scheduler."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    for s in scheds:
        s.step()


@contextmanager
def evaluating(*models):
    """``models`` in eval mode for a validation, back in training mode after it."""
    for m in models:
        m.eval()
    try:
        yield
    finally:
        for m in models:
            m.train()


class WeightAverage:
    """An exponential moving average of a model's weights (Polyak averaging): ``model`` is the averaged
    copy, to validate and save in place of the trained one. Where losses pull against each other (a
    supervised and a zero-reference term) the trained weights swing from step to step; their average
    does not. Track ``model`` with the loop so that a resume continues the average."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"weight-average decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model).requires_grad_(False)

    @torch.no_grad()
    def update(self, trained: torch.nn.Module, step: int) -> None:
        """After optimizer step ``step`` (0-based): early steps weigh more, so the start is forgotten."""
        d = min(self.decay, (1 + step) / (10 + step))
        for a, p in zip(self.model.parameters(), trained.parameters()):
            a.lerp_(p.detach(), 1.0 - d)
        for a, b in zip(self.model.buffers(), trained.buffers()):
            a.copy_(b)


# --- stopping and periodic saves ------------------------------------------------------------------


class GracefulStop:
    """While active, SIGINT and SIGTERM only set a flag: the loop finishes its step, saves and stops.
    A second signal stops at once (KeyboardInterrupt); the last saved state is intact (atomic writes)."""

    def __init__(self):
        self.signum = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signals can only be caught there
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, signal.SIG_DFL if h is None else h)  # None: a handler not set from Python
        self._old = {}
        return False

    def __bool__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


class SaveClock:
    """Says when a periodic save is due: every ``every_s`` seconds of training (0: after every step)."""

    def __init__(self, every_s: float = SAVE_EVERY_S):
        self.every_s, self.last = every_s, time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self.last >= self.every_s

    def saved(self) -> None:
        self.last = time.monotonic()


def stopped_message(stop: GracefulStop, step: int, path: Path) -> str:
    return (f"{stop.name}: stopped after step {step}; training state saved to {path} "
            "(run the same command with --resume to continue)")


# --- the best checkpoint and the loop -------------------------------------------------------------


class KeepBest:
    """The checkpoint of the best validation so far (higher scores are better): ``offer(score, record)``
    writes ``model`` to ``path`` as ``name``, with ``meta(record)`` (default: ``record``) as metadata,
    when ``score`` beats every earlier one. ``score``/``record``: where a resumed run left off."""

    def __init__(self, path, model, name: str, meta: Callable | None = None, score: float = -math.inf, record=None):
        self.path, self.model, self.name, self.meta = Path(path), model, name, meta
        self.score, self.record = score, record

    def offer(self, score: float, record) -> bool:
        if not score > self.score:  # nan never wins
            return False
        from edgeenhance.models.registry import save_checkpoint

        self.score, self.record = score, record
        save_checkpoint(self.path, self.model, name=self.name, meta=self.meta(record) if self.meta else record)
        return True


class Loop:
    """Runs a trainer's steps; see the module's text. Without ``out_dir`` nothing is saved and signals
    are not caught (a fine-tuning pass inside another command)."""

    def __init__(self, out_dir=None, *, resume: bool = False, save_every_s: float = SAVE_EVERY_S,
                 progress: bool = True, log: Callable = print, lr_scale: str = "none"):
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.path = None if out_dir is None else self.out_dir / "last.safetensors"
        if not resume and self.path is not None and self.path.is_file() \
                and int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0:
            log(f"torchrun restarted the job: resuming from {self.path}")  # (torchrun --max-restarts)
            resume = True
        # read and checked now, before the trainer loads any data: a bad state is reported in a second
        self.state = TrainingState(self.path) if resume else None
        self.world = distributed.world()
        self.main = self.world.main
        self.save_every_s, self.progress = save_every_s, progress and self.main
        self.log = log if self.main else _silent  # one voice: rank 0's
        self.samples_per_step = None  # the global batch, for world.json's samples/s (set by the trainer)
        self.lr_scale = lr_scale  # "linear": a resume with another number of processes rescales the lr
        self.models, self.optims, self.scheds, self.generators = {}, {}, {}, {}
        self.start, self.stopped, self.signum = 0, None, None

    @property
    def resuming(self) -> bool:
        return self.state is not None

    def track(self, models: dict, optims: dict | None = None, scheds: dict | None = None, device="cpu") -> dict:
        """Models, optimizers and LR schedulers saved in the training state; restored now when resuming
        (``start`` becomes the saved step). Returns the extra metadata the run saved ({} on a fresh run)."""
        self.models, self.optims, self.scheds = dict(models), dict(optims or {}), dict(scheds or {})
        if self.state is None:
            return {}
        self.state.restore(self.models, self.optims, device, self.scheds)
        self.start = self.state.step
        self._rescale_for_world(int(self.state.extra.get("processes", 1)))
        return self.state.extra

    def _rescale_for_world(self, before: int) -> None:
        """A resume with another number of processes: the global batch changes with them; with
        --lr-scale linear the learning rates (and schedules) follow it."""
        now = self.world.size
        if before == now:
            return
        f = now / before if self.lr_scale == "linear" else 1.0
        for opt in self.optims.values():
            for g in opt.param_groups:
                g["lr"] *= f
                if "initial_lr" in g:
                    g["initial_lr"] *= f
        for s in self.scheds.values():
            s.base_lrs = [b * f for b in s.base_lrs]
            if hasattr(s, "eta_min"):
                s.eta_min *= f
        self.log(f"resumed with {now} process(es), saved with {before}: the global batch changes with them; "
                 + (f"learning rates x{f:g} (--lr-scale linear)" if f != 1 else "learning rates kept (--lr-scale none)"))

    def track_random(self, generators: dict) -> None:
        """Random generators of the data (numpy Generators, random.Random) saved with the global random
        states; all restored now when resuming. Call it after the data set-up has drawn what it draws."""
        self.generators = dict(generators)
        if self.state is not None:
            self.state.restore_random(self.generators)

    def save(self, step: int, meta: dict | None = None, tensors: dict | None = None) -> None:
        if not self.main:
            return
        meta = {**(meta or {}), "processes": self.world.size}
        save_training_state(self.path, self.models, self.optims, step, meta, self.scheds, self.generators, tensors)

    def run(self, step: Callable, total: int, *, desc: str | Callable = "train", val_every: int | None = None,
            validate: Callable | None = None, best: KeepBest | None = None, meta: Callable | None = None,
            tensors: Callable | None = None) -> str | None:
        """``step(i)`` for i from ``start`` to ``total`` - 1; it returns the progress bar's postfix (a dict)
        or None. After step i, when i + 1 is a multiple of ``val_every`` or is ``total`` (``val_every``
        None: at the end only), ``validate(i + 1)`` runs; what it returns, None or (score, record), is
        offered to ``best``. ``meta()`` and ``tensors()`` give the trainer's own part of the training
        state (JSON metadata, tensors). ``desc``: the bar's text, or a function of i. Returns the name of
        the signal that stopped the run (also ``self.stopped``; ``self.signum`` its number), or None."""
        from tqdm import tqdm

        bar = tqdm(range(self.start, total), desc=desc if isinstance(desc, str) else desc(self.start), unit="step",
                   disable=not self.progress, initial=self.start, total=total)
        clock = SaveClock(self.save_every_s)
        fail_at = os.environ.get("EDGEENHANCE_FAIL_AT")  # "RANK:STEP": fault injection for the distributed tests
        t_first, timed = None, 0
        try:
            with GracefulStop() if self.path is not None else nullcontext() as stop:
                for i in bar:
                    if callable(desc):
                        bar.set_description(desc(i))
                    if fail_at == f"{self.world.rank}:{i}":
                        raise RuntimeError(f"injected failure at step {i} (EDGEENHANCE_FAIL_AT={fail_at})")
                    postfix = step(i)
                    if postfix:
                        bar.set_postfix(postfix)
                    done = i + 1
                    if t_first is None:  # throughput counts from the end of the first step (warm-up)
                        t_first = time.perf_counter()
                    else:
                        timed += 1
                    validated = validate is not None and (done % (val_every or total) == 0 or done == total)
                    if validated:
                        result = validate(done)
                        if result is not None and best is not None and self.main:
                            best.offer(*result)
                    if self.path is None:
                        continue
                    if self.world.distributed and distributed.any_rank(bool(stop)) and not stop:
                        stop.signum = signal.SIGTERM  # another rank was signalled: stop after the same step
                    if validated or stop or clock.due():
                        self.save(done, meta() if meta else None, tensors() if tensors else None)
                        clock.saved()
                    if stop:
                        self.log(stopped_message(stop, done, self.path))
                        self.stopped, self.signum = stop.name, stop.signum
                        break
        finally:
            bar.close()
        seconds = time.perf_counter() - t_first if t_first is not None else 0.0
        if self.stopped is None and self.out_dir is not None:
            self.write_world(timed, seconds)
        return self.stopped

    def write_world(self, steps_timed: int, seconds: float) -> None:
        """OUT/world.json: processes, global batch, samples/s, and each rank's parameter fingerprint
        (an error if the ranks' parameters differ: DDP keeps them identical)."""
        prints = distributed.gather({n: distributed.fingerprint(m) for n, m in self.models.items()})
        if any(p != prints[0] for p in prints):
            raise RuntimeError(f"the ranks' parameters differ after training: {prints}")
        if not self.main:
            return
        from edgeenhance.fileio import write_json

        sps = steps_timed / seconds if seconds > 0 else None
        w = self.world
        write_json(self.out_dir / "world.json", {
            "world_size": w.size, "backend": w.backend or "none (one process)", "global_batch": self.samples_per_step,
            "per_process_batch": None if self.samples_per_step is None else self.samples_per_step // w.size,
            "steps_timed": steps_timed, "seconds": round(seconds, 3),
            "steps_per_s": None if sps is None else round(sps, 4),
            "samples_per_s": None if sps is None or self.samples_per_step is None else round(sps * self.samples_per_step, 3),
            "fingerprints": [",".join(f"{n}={h}" for n, h in sorted(p.items())) for p in prints]})


def _silent(*_args, **_kw):
    pass
