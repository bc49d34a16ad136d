"""What every training loop shares: device, seeding, checkpoints with optimizer state, resume."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch

from edgeenhance.errors import UserError


def pick_device(name: str | None = None) -> torch.device:
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but no CUDA device is available")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def optimizer_tensors(opt: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    """Adam-style optimizer state flattened to named tensors (safetensors holds no pickles)."""
    out = {}
    for i, state in opt.state_dict()["state"].items():
        for k, v in state.items():
            out[f"{prefix}.{i}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    return out


def load_optimizer_tensors(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], prefix: str) -> None:
    sd = opt.state_dict()
    state: dict[int, dict] = {}
    for name, v in tensors.items():
        if name.startswith(prefix + "."):
            _, i, k = name.rsplit(".", 2)
            state.setdefault(int(i), {})[k] = v
    sd["state"] = state
    opt.load_state_dict(sd)


def save_training_state(path: Path, models: dict, optims: dict, step: int, extra_meta: dict | None = None) -> None:
    """All models and optimizers of a run in one safetensors file, written atomically."""
    from safetensors.torch import save_file

    from edgeenhance.fileio import atomic_path

    tensors = {}
    for name, m in models.items():
        tensors.update({f"{name}.{k}": v.detach().cpu().contiguous() for k, v in m.state_dict().items()})
    for name, o in optims.items():
        tensors.update({k: v.detach().cpu().contiguous() for k, v in optimizer_tensors(o, f"optim_{name}").items()})
    meta = {"step": str(step), "configs": json.dumps({n: getattr(m, "config", {}) for n, m in models.items()}),
            "families": json.dumps({n: getattr(m, "family", "") for n, m in models.items()}),
            "extra": json.dumps(extra_meta or {})}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_training_state(path: Path, models: dict, optims: dict, device) -> tuple[int, dict]:
    """Restore models and optimizers; returns (step, extra metadata)."""
    from safetensors import safe_open

    if not Path(path).is_file():
        raise UserError(f"--resume: no training state at {path}")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    for name, m in models.items():
        sd = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")}
        try:
            m.load_state_dict(sd)
        except RuntimeError as e:
            raise UserError(f"--resume: {path} does not match this model ({e.__class__.__name__}); "
                            "use the same model options as the run that wrote it") from None
    for name, o in optims.items():
        load_optimizer_tensors(o, {k: v.to(device) for k, v in tensors.items()}, f"optim_{name}")
    return int(meta["step"]), json.loads(meta.get("extra", "{}"))
