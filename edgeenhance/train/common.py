"""What every trainer shares: device, seeding, and the training state (models, optimizers, schedulers
and random states in one safetensors file) that periodic saves write and a resume restores. The loop
that uses them is ``train/loop.py``."""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path

import numpy as np
import torch

from edgeenhance.errors import UserError


def pick_device(name: str | None = None) -> torch.device:
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but no CUDA device is available")
    from edgeenhance.models.registry import check_device

    return check_device(name)


def checked_model(spec, family: str, option: str, what: str, device="cpu"):
    """A model from a zoo name or checkpoint path (or an already built model), refused unless of
    ``family``; ``option`` names the command-line option in the errors, ``what`` the expected file."""
    from edgeenhance.models.registry import load_model

    if isinstance(spec, (str, Path)):
        try:
            spec = load_model(str(spec), device)
        except UserError as e:
            raise UserError(f"{option}: {e}") from None
    if getattr(spec, "family", None) != family:
        raise UserError(f"{option} must be {what}; got a {getattr(spec, 'family', type(spec).__name__)} model")
    return spec


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


def _generator_state(g) -> dict:
    if isinstance(g, np.random.Generator):
        return {"numpy": g.bit_generator.state}
    if isinstance(g, random.Random):
        return {"python": g.getstate()}
    raise TypeError(f"cannot save the state of a {type(g).__name__}")


def _set_generator_state(g, state: dict) -> None:
    if isinstance(g, np.random.Generator):
        g.bit_generator.state = state["numpy"]
    else:  # JSON turned the state's tuples into lists
        version, internal, gauss = state["python"]
        g.setstate((version, tuple(internal), gauss))


def _global_random_state() -> tuple[dict, dict[str, torch.Tensor]]:
    """Python's, numpy's and torch's global random states: JSON for the first two, uint8 tensors for torch."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    meta = {"python": random.getstate(), "numpy": [kind, keys.tolist(), pos, has_gauss, gauss]}
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors.update({f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return meta, tensors


def save_training_state(path: Path, models: dict, optims: dict, step: int, extra_meta: dict | None = None,
                        scheds: dict | None = None, generators: dict | None = None,
                        tensors: dict[str, torch.Tensor] | None = None) -> None:
    """All models and optimizers of a run in one safetensors file, written atomically, with everything a
    resumed run needs to continue exactly as the uninterrupted one: LR schedulers, the global random
    states and the ``generators`` of the data samplers (as JSON metadata), and ``tensors`` (e.g. an
    image pool, stored under ``extra.``)."""
    from safetensors.torch import save_file

    from edgeenhance.fileio import atomic_path

    out = {}
    for name, m in models.items():
        out.update({f"{name}.{k}": v.detach().cpu().contiguous() for k, v in m.state_dict().items()})
    for name, o in optims.items():
        out.update({k: v.detach().cpu().contiguous() for k, v in optimizer_tensors(o, f"optim_{name}").items()})
    rng_meta, rng_tensors = _global_random_state()
    out.update({k: v.cpu().contiguous() for k, v in rng_tensors.items()})
    out.update({f"extra.{k}": v.detach().cpu().contiguous() for k, v in (tensors or {}).items()})
    meta = {"step": str(step), "configs": json.dumps({n: getattr(m, "config", {}) for n, m in models.items()}),
            "families": json.dumps({n: getattr(m, "family", "") for n, m in models.items()}),
            "extra": json.dumps(extra_meta or {}),
            "schedulers": json.dumps({n: s.state_dict() for n, s in (scheds or {}).items()}),
            "lrs": json.dumps({n: [g["lr"] for g in o.param_groups] for n, o in optims.items()}),
            "random": json.dumps(rng_meta),
            "generators": json.dumps({n: _generator_state(g) for n, g in (generators or {}).items()})}
    with atomic_path(path) as tmp:
        save_file(out, str(tmp), metadata=meta)


class TrainingState:
    """A training state file, read and checked (a clean UserError for a missing or damaged one), then
    restored in two steps: models and optimizers first (which checks that they match this run), the
    random states last, after the run's set-up has drawn whatever it draws. States written before
    random states were saved resume with their schedulers replayed and fresh random states."""

    def __init__(self, path):
        from safetensors import safe_open

        self.path = path = Path(path)
        if not path.is_file():
            raise UserError(f"--resume: no training state at {path}")
        try:
            with safe_open(str(path), framework="pt") as f:  # checks the header covers the whole file
                meta = f.metadata() or {}
                self.tensors = {k: f.get_tensor(k) for k in f.keys()}
            self.step = int(meta["step"])
            self.meta = {}
            for key in ("configs", "families", "extra", "schedulers", "lrs", "random", "generators"):
                self.meta[key] = json.loads(meta.get(key, "{}"))
                if not isinstance(self.meta[key], dict):
                    raise ValueError(f"'{key}' is not an object")
        except Exception as e:  # safetensors, int() and json raise several types for a damaged file
            raise UserError(f"--resume: {path} is not a readable training state ({type(e).__name__}: {e}); "
                            "delete it to start over, or resume from a copy") from None
        self.extra = self.meta["extra"]

    def restore(self, models: dict, optims: dict, device, scheds: dict | None = None) -> None:
        for name, m in models.items():
            sd = {k[len(name) + 1:]: v for k, v in self.tensors.items() if k.startswith(name + ".")}
            try:
                m.load_state_dict(sd)
            except RuntimeError as e:
                raise UserError(f"--resume: {self.path} does not match this model ({e.__class__.__name__}); "
                                "use the same model options as the run that wrote it") from None
        try:
            for name, o in optims.items():
                load_optimizer_tensors(o, {k: v.to(device) for k, v in self.tensors.items()}, f"optim_{name}")
                for g, lr in zip(o.param_groups, self.meta["lrs"].get(name, [])):
                    g["lr"] = lr
            for name, s in (scheds or {}).items():
                if name in self.meta["schedulers"]:
                    s.load_state_dict(self.meta["schedulers"][name])
                else:  # an older state: replay the schedule from its start
                    with warnings.catch_warnings():  # torch warns of scheduler steps before optimizer steps
                        warnings.simplefilter("ignore", UserWarning)
                        for _ in range(self.step):
                            s.step()
        except (ValueError, KeyError, TypeError) as e:
            raise UserError(f"--resume: {self.path} does not match this run's optimizers ({e}); "
                            "use the same options as the run that wrote it") from None

    def restore_random(self, generators: dict | None = None) -> None:
        """The global random states and those of ``generators`` (numpy Generators, random.Random)."""
        r = self.meta["random"]
        if "python" in r:
            version, internal, gauss = r["python"]
            random.setstate((version, tuple(internal), gauss))
        if "numpy" in r:
            kind, keys, pos, has_gauss, gauss = r["numpy"]
            np.random.set_state((kind, np.array(keys, np.uint32), pos, has_gauss, gauss))
        if "rng.torch" in self.tensors:
            torch.set_rng_state(self.tensors["rng.torch"])
        cuda = [self.tensors[k] for k in sorted(k for k in self.tensors if k.startswith("rng.cuda."))]
        if cuda and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(cuda)
        for name, g in (generators or {}).items():
            if name in self.meta["generators"]:
                _set_generator_state(g, self.meta["generators"][name])

    def extra_tensors(self) -> dict[str, torch.Tensor]:
        return {k[len("extra."):]: v for k, v in self.tensors.items() if k.startswith("extra.")}


def load_training_state(path: Path, models: dict, optims: dict, device) -> tuple[int, dict]:
    """Restore models and optimizers; returns (step, extra metadata)."""
    state = TrainingState(path)
    state.restore(models, optims, device)
    return state.step, state.extra
