"""The model zoo and the one interface every exporter, quantizer and runtime uses.

``load_model(spec)`` takes a zoo name or a ``.safetensors`` checkpoint and returns a model;
``deploy_forms(model)`` says which deployable graphs it has (the model's own ``deploy_forms``).
A model family is one class in its own module (see ``models/base.py``); a shipped model is also
one ``ZooEntry`` in ``ZOO``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from edgeenhance.errors import UserError
from edgeenhance.fileio import atomic_path
from edgeenhance.models.base import DeployForm

WEIGHTS_DIR = Path(__file__).parent / "weights"


def _families() -> dict[str, Callable[..., nn.Module]]:
    from edgeenhance.models.base import load_builtin_families

    return load_builtin_families()


@dataclass
class ZooEntry:
    name: str
    family: str
    weights: str | None  # file in WEIGHTS_DIR; None: a classical algorithm
    fixes: str
    config: dict = field(default_factory=dict)
    # weights fine-tuned for int8 (quantization-aware, ``edgeenhance quantize --qat``): int8 exports
    # start from them and are verified against the float ``weights``
    int8_weights: str | None = None
    exposure: str | None = None  # the exposure errors it was trained to fix, if not its family's default


ZOO = {
    # no int8-tuned weights: plain int8 of these (grid op in float) held closer to float than QAT's did
    "bilateral": ZooEntry("bilateral", "bilateral", "bilateral.safetensors", "under-exposed and low-light photos"),
    "bilateral-over": ZooEntry("bilateral-over", "bilateral", "bilateral_over.safetensors",
                               "over-exposed photos: bright skies, sunlit faces, +1..+3 EV (trained on real photos)",
                               exposure="over"),
    "student-small": ZooEntry("student-small", "student", "student_small.safetensors",
                              "over-exposed rendered scenes (distilled from a CycleGAN teacher trained on the "
                              "renderer; on real photos use bilateral-over)", dict(width=16, blocks=4),
                              int8_weights="student_small_int8.safetensors"),
    "lime": ZooEntry("lime", "lime", None, "low-light photos (classical LIME baseline, no training)"),
    "tonecomp": ZooEntry("tonecomp", "tonecomp", None, "over-exposed photos (classical highlight tone compression)"),
}


def is_classical(model) -> bool:
    return bool(getattr(model, "classical", False))


def save_checkpoint(path, model: nn.Module, name: str | None = None, extra: dict[str, torch.Tensor] | None = None,
                    meta: dict | None = None) -> None:
    """Weights (and optional extra tensors, e.g. optimizer state) as safetensors, atomically."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for k, v in (extra or {}).items():
        tensors[k] = v.detach().cpu().contiguous()
    metadata = {"family": model.family, "config": json.dumps(model.config), "name": name or model.family,
                "meta": json.dumps(meta or {})}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def read_checkpoint(path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, metadata) of a safetensors checkpoint; a clear error for anything else."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises several types for corrupt headers
        raise UserError(f"{path}: not a readable safetensors checkpoint ({e})") from None
    if "family" not in meta:
        raise UserError(f"{path}: safetensors file has no edgeenhance metadata (family/config)")
    for key in ("config", "meta"):
        try:
            meta[key] = json.loads(meta.get(key, "{}"))
        except json.JSONDecodeError as e:
            raise UserError(f"{path}: checkpoint metadata '{key}' is not valid JSON ({e})") from None
        if not isinstance(meta[key], dict):
            raise UserError(f"{path}: checkpoint metadata '{key}' is not a JSON object")
    return tensors, meta


MAX_MODEL_BYTES = 1 << 30  # float32 weights; the largest family member trained here (CycleGAN) is 45 MB
MAX_CONFIG_INT = 1 << 16


def check_config(family: str, config) -> dict:
    """A family's constructor arguments, checked before anything is built: known keys only, numbers of
    the right type within bounds, and weights that fit in MAX_MODEL_BYTES (sized on torch's meta device,
    which allocates nothing)."""
    import inspect
    import math

    fams = _families()
    if family not in fams:
        raise UserError(f"unknown model family '{family}' (known: {', '.join(fams)})")
    if not isinstance(config, dict):
        raise UserError(f"a {family} config must be an object of settings, not {type(config).__name__}")
    params = {k: v for k, v in inspect.signature(fams[family].__init__).parameters.items() if k != "self"}
    for key, value in config.items():
        if key not in params:
            raise UserError(f"unknown {family} setting '{key}' (known: {', '.join(params)})")
        default = params[key].default
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_CONFIG_INT
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else:
            ok = True
        if not ok:
            raise UserError(f"{family} setting {key}={value!r} is out of bounds (a whole number 0..{MAX_CONFIG_INT})"
                            if isinstance(default, int) and not isinstance(default, bool) else
                            f"{family} setting {key}={value!r} is not a valid value")
    try:
        with torch.device("meta"):
            shell = fams[family](**config)
    except Exception as e:  # the constructors raise several types for settings that do not fit together
        raise UserError(f"{family} settings {config} do not make a model ({type(e).__name__}: {e})") from None
    tensors = [*shell.parameters(), *shell.buffers()] if isinstance(shell, nn.Module) else []
    size = 4 * sum(t.numel() for t in tensors)
    if size > MAX_MODEL_BYTES:
        raise UserError(f"{family} settings {config} ask for {size / 2**30:.1f} GiB of weights (at most "
                        f"{MAX_MODEL_BYTES / 2**30:.0f} GiB)")
    return config


def build(family: str, config: dict) -> nn.Module:
    return _families()[family](**check_config(family, config))


def check_device(device) -> torch.device:
    """A torch device that exists here, or a clear error (not a CUDA assertion deep inside torch)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"--device: '{device}' is not a device (cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device} asked for, but no CUDA device is available here (use --device cpu)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UserError(f"--device {device}: there are {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"--device {device} asked for, but MPS is not available here (use --device cpu)")
    return dev


def load_model(spec: str, device: str = "cpu"):
    """A zoo name (see ``ZOO``) or a path to a checkpoint written by edgeenhance, in eval mode."""
    check_device(device)
    if spec in ZOO and ZOO[spec].weights is None:  # a classical algorithm: built from its settings
        return build(ZOO[spec].family, dict(ZOO[spec].config))
    if spec in ZOO:
        entry = ZOO[spec]
        path = WEIGHTS_DIR / entry.weights
        if not path.exists():
            raise UserError(f"shipped weights for '{spec}' are missing ({path}); reinstall edgeenhance")
    else:
        path = Path(spec)
        if not path.exists():
            raise UserError(f"'{spec}' is neither a model name ({', '.join(ZOO)}) nor an existing checkpoint file")
    tensors, meta = read_checkpoint(path)
    try:
        model = build(meta["family"], meta["config"])
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise UserError(f"{path}: weights do not fit a {meta['family']} model with config {meta['config']} ({e})") from None
    model.name = spec if spec in ZOO else meta.get("name", path.stem)
    exposure = ZOO[spec].exposure if spec in ZOO else meta["meta"].get("exposure")
    if exposure in ("under", "over"):  # calibration, verification and bench photos follow it
        model.exposure_task = exposure
    mark_int8_tuned(model, bool(meta["meta"].get("all_int8")), meta["meta"].get("weight_granularity", "channel"))
    return model.to(device).eval()


def mark_int8_tuned(model, all_int8: bool, weight_scales: str = "channel"):
    """Record how weights were fine-tuned for int8 (QAT), so that exports quantize the graph QAT saw:
    with every layer in int8, no layer is kept float; with one scale per weight tensor, TFLite and
    ONNX int8 files use those and the graph is not range-equalized (that would rescale weight rows QAT fitted
    to one shared scale)."""
    if all_int8:
        for m in model.modules():
            if hasattr(m, "int8_float_modules"):
                m.int8_float_modules = ()
    if weight_scales == "tensor":
        model.int8_weight_scales = "tensor"
        for m in model.modules():
            if hasattr(m, "int8_equalize"):
                m.int8_equalize = ()
    return model


def load_int8_model(spec: str):
    """The zoo model's int8-tuned weights (``ZooEntry.int8_weights``) as a model, or None if it ships none."""
    entry = ZOO.get(spec) if isinstance(spec, str) else None
    if entry is None or entry.int8_weights is None:
        return None
    model = load_model(str(WEIGHTS_DIR / entry.int8_weights))
    model.name = f"{spec} (int8-tuned weights)"
    return model


def deploy_forms(model) -> dict[str, DeployForm]:
    """The deployable forms of a model, by name (the model declares them)."""
    if is_classical(model):
        raise UserError(f"'{model.family}' is a classical algorithm, not a network: it cannot be exported")
    if not hasattr(model, "deploy_forms"):
        raise UserError(f"'{getattr(model, 'family', model)}' is not an enhancer: it has no deployable form")
    return model.deploy_forms()


def get_form(model, form: str) -> DeployForm:
    forms = deploy_forms(model)
    if form not in forms:
        raise UserError(f"model '{getattr(model, 'name', model.family)}' has no '{form}' form (has: {', '.join(forms)})")
    return forms[form]
