"""Training on several processes with PyTorch's own engine (torchrun + DistributedDataParallel).

Under ``torchrun`` (which sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT) every trainer joins one
process group: NCCL where each process has a GPU, gloo on CPU. Gradients are averaged across ranks by
DDP, so a step over per-rank batches of B equals one process's step over the global batch of B x world
(the data streams are sharded so that the ranks' batches together are exactly that global batch). Only
rank 0 writes checkpoints, logs and sample grids and shows progress; the stop condition (a signal on
any rank) is agreed on by all. A plain ``python -m edgeenhance ...`` is a world of one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch

from edgeenhance.errors import UserError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None  # None: a single process, no process group

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


_WORLD = World()


def world() -> World:
    return _WORLD


def launched() -> bool:
    """Whether torchrun (or another launcher that sets the same variables) started this process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: str | None = "auto", timeout_s: float = 1800.0) -> tuple[World, torch.device]:
    """Join the process group if launched by torchrun; returns the world and this rank's device.

    ``device``: auto (a GPU per rank where there are enough, else CPU), cpu or cuda."""
    global _WORLD
    if not launched():
        from edgeenhance.train.common import pick_device

        return _WORLD, pick_device(device)
    import torch.distributed as dist

    device = device or "auto"

    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local, local_n = int(os.environ.get("LOCAL_RANK", "0")), int(os.environ.get("LOCAL_WORLD_SIZE", size))
    if device not in ("auto", "cpu"):
        from edgeenhance.models.registry import check_device

        if check_device(device).type != "cuda":
            raise UserError(f"--device {device}: under torchrun use auto, cpu or cuda")
    # every process of this machine decides alike: NCCL only if each has a GPU of its own (a mix of
    # NCCL and gloo ranks would wait on each other forever)
    gpus = torch.cuda.device_count()
    use_gpu = device != "cpu" and gpus >= local_n
    if device.startswith("cuda") and not use_gpu:
        raise UserError(f"--device {device}: {local_n} processes on this machine but {gpus} GPU(s); "
                        f"use --nproc-per-node {max(gpus, 1)} or --device cpu")
    if device == "auto" and 0 < gpus < local_n and rank == 0:
        import warnings

        warnings.warn(f"{local_n} processes per machine but {gpus} GPU(s): training on CPU (gloo); "
                      f"use --nproc-per-node {gpus} to train on the GPUs", stacklevel=2)
    backend = "nccl" if use_gpu else "gloo"
    if use_gpu:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    _WORLD = World(rank, size, local, backend)
    return _WORLD, torch.device(f"cuda:{local}" if use_gpu else "cpu")


def teardown() -> None:
    global _WORLD
    if _WORLD.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    _WORLD = World()


class _Method(torch.nn.Module):
    """Calls one method of a model as its forward: DDP synchronizes gradients of what goes through
    its own forward, and trainers call e.g. ``forward_with_illumination``."""

    def __init__(self, model: torch.nn.Module, method: str):
        super().__init__()
        self.module, self.method = model, method

    def forward(self, *args, **kw):
        return getattr(self.module, self.method)(*args, **kw)


def wrap(model: torch.nn.Module, device: torch.device, method: str = "forward", compile: bool = False,
         log=print):
    """What a step function calls: ``model.<method>`` DDP-wrapped in a distributed run (gradients
    averaged across ranks during backward), the model itself otherwise; with ``compile``, through
    ``torch.compile`` (falling back to eager with a warning where it cannot compile)."""
    fn = model if method == "forward" else _Method(model, method)
    if _WORLD.distributed and any(p.requires_grad for p in model.parameters()):
        import warnings

        from torch.nn.parallel import DistributedDataParallel as DDP

        # depthwise convolutions' gradients come in another memory layout than DDP's buckets: a copy,
        # harmless, that torch reports once per process
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        fn = DDP(fn, device_ids=[device.index] if device.type == "cuda" else None)
    if compile:
        fn = _Compiled(fn, log)
    return fn


class _Compiled:
    """``torch.compile(fn)``; on the first call's failure (no compiler, an unsupported op), a warning
    and plain eager execution from then on."""

    def __init__(self, fn, log):
        self.eager, self.log, self.compiled = fn, log, False
        try:
            self.fn = torch.compile(fn)
        except Exception as e:  # torch.compile raises several types where it is unavailable
            self._fallback(e)

    def _fallback(self, e):
        self.log(f"warning: --compile: torch.compile failed ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                 "training in eager mode")
        self.fn = self.eager

    def __call__(self, *args, **kw):
        if self.fn is self.eager or self.compiled:
            return self.fn(*args, **kw)
        try:
            out = self.fn(*args, **kw)
        except Exception as e:  # the compile happens at the first call; later errors are real ones
            self._fallback(e)
            return self.eager(*args, **kw)
        self.compiled = True
        return out


def autocast(device: torch.device, enabled: bool | None):
    """bf16 mixed precision on GPUs (``enabled`` None: on where a GPU runs the step); nothing on CPU."""
    from contextlib import nullcontext

    if device.type == "cuda" and enabled is not False:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def announce(log, batch: int, lr: float, device: torch.device, per: str = "") -> None:
    """The start-of-run line: processes, global batch (= per-process batch x processes), learning rate."""
    w = _WORLD
    procs = f"{w.size} processes ({w.backend})" if w.distributed else f"1 process ({device.type})"
    log(f"{procs}: global batch {batch * w.size} = {batch} per process x {w.size} process"
        f"{'es' if w.size > 1 else ''}{per}, lr {lr:g}")


def any_rank(flag: bool) -> bool:
    """True on every rank if ``flag`` is true on any (a signal, a stop condition)."""
    if not _WORLD.distributed:
        return bool(flag)
    import torch.distributed as dist

    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def gather(obj) -> list:
    """Every rank's ``obj``, in rank order (on every rank)."""
    if not _WORLD.distributed:
        return [obj]
    import torch.distributed as dist

    out = [None] * _WORLD.size
    dist.all_gather_object(out, obj)
    return out


def fingerprint(model: torch.nn.Module) -> str:
    """A hash of the parameters' bytes: equal on every rank after each DDP step."""
    import hashlib

    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def shard(items, rank: int | None = None, size: int | None = None):
    """This rank's contiguous share of a global batch, a list or a batch tensor (sizes differ by at
    most one; with one process, all of it)."""
    rank = _WORLD.rank if rank is None else rank
    size = _WORLD.size if size is None else size
    n = len(items)
    return items[rank * n // size:(rank + 1) * n // size]


def scale_lr(lr: float, how: str) -> float:
    """``--lr-scale linear``: the learning rate times the world size (Goyal et al. 2017); ``none``: as given."""
    if how not in ("linear", "none"):
        raise UserError(f"--lr-scale: '{how}' is not linear or none")
    return lr * _WORLD.size if how == "linear" else lr


def _device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if _WORLD.backend == "nccl" else torch.device("cpu")
