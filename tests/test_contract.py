"""One place per concept: a model family and an export target, each added from this file alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgeenhance.cli import main
from edgeenhance.export import TARGETS, Exporter, ExportOptions, Target
from edgeenhance.fileio import atomic_path
from edgeenhance.models.base import FAMILIES, Enhancer
from edgeenhance.runtime.engines import Engine, open_engine


class ToyTint(Enhancer):
    """A new family: one class; declaring ``family`` registers it."""

    family = "toy_tint"
    fixes = "a test family: a residual tint"
    exposure_task = "under"
    pad_multiple = 2
    int8_float_modules = ("head",)

    def __init__(self, width: int = 4):
        super().__init__()
        self.config = dict(width=width)
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1), nn.ReLU())
        self.head = nn.Conv2d(width, 12, 1)

    def forward(self, x):
        r = nn.functional.pixel_shuffle(self.head(self.body(x)), 2)
        return torch.clamp(x + 0.2 * torch.tanh(r), 0.0, 1.0)


def toy_model() -> ToyTint:
    torch.manual_seed(0)
    return ToyTint().eval()


def test_a_new_family_registers_itself_and_round_trips_a_checkpoint(tmp_path):
    from edgeenhance.models.registry import deploy_forms, load_model, save_checkpoint

    assert FAMILIES["toy_tint"] is ToyTint
    m = toy_model()
    save_checkpoint(tmp_path / "toy.safetensors", m)
    back = load_model(str(tmp_path / "toy.safetensors"))
    assert isinstance(back, ToyTint) and back.config == {"width": 4}
    assert list(deploy_forms(back)) == ["full"]
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(back(x), m(x))


def test_a_new_family_exports_to_every_target_with_int8_verified(tmp_path):
    int8ish = [p for p in ("int8", "w8a8") if any(p in t.precisions for t in TARGETS.values())]
    ex = Exporter(toy_model(), ExportOptions(size=(32, 32), calib_images=8, verify_images=2, progress=False),
                  log=lambda *_: None)
    manifest = ex.export(list(TARGETS), ["fp32", *int8ish], tmp_path)
    got = {(e["target"], e["precision"]) for e in manifest["files"]}
    want = {(t.name, p) for t in TARGETS.values() for p in ["fp32", *int8ish] if p in t.precisions}
    assert got == want and any(p != "fp32" for _, p in got)
    assert manifest["family"] == "toy_tint"
    for e in manifest["files"]:
        assert e["verification"]["passed"], e["file"]
        assert (tmp_path / e["file"]).exists()
    # the int8 files keep the layer the model asked for in float
    assert manifest["int8_float_modules"]["modules"] == ["head"]


def _to_torchscript(exp, out_dir: Path, precision: str) -> Path:
    out = out_dir / exp.filename("torchscript", precision)
    with torch.no_grad():
        traced = torch.jit.trace(exp.graph_for("torchscript", precision), exp.example())
    with atomic_path(out) as tmp:
        traced.save(str(tmp))
    return out


class TorchScriptEngine(Engine):
    fmt, runtime = "torchscript", f"torch.jit {torch.__version__}"

    def __init__(self, path, threads=None):
        self.name, self.module = Path(path).name, torch.jit.load(str(path)).eval()

    def run(self, x):
        self.check_input(x)
        with torch.no_grad():
            return self.module(torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy()


@pytest.fixture
def torchscript_target(monkeypatch):
    """A new target: one row (its converter and engine are the two functions above)."""
    row = Target("torchscript", ".pt", ("fp32",), _to_torchscript, TorchScriptEngine, "PyTorch (TorchScript)")
    monkeypatch.setitem(TARGETS, row.name, row)
    return row


def test_a_new_target_row_shows_in_help_and_manifest(torchscript_target, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["export", "--help"])
    assert e.value.code == 0
    helptext = capsys.readouterr().out
    assert "torchscript" in helptext and "PyTorch (TorchScript)" in helptext

    out = tmp_path / "ts"
    assert main(["export", "--model", "student-small", "--target", "torchscript", "--size", "32x32",
                 "--verify-images", "1", "--quiet", "-o", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    [entry] = manifest["files"]
    assert entry["target"] == "torchscript" and entry["file"].endswith("_full_fp32.pt")
    assert entry["executes"] == "PyTorch (TorchScript)" and entry["verification"]["passed"]
    assert entry["verification"]["psnr_vs_float"] > 60
    assert isinstance(open_engine(out / entry["file"]), TorchScriptEngine)  # the runtime's map derives from the row


def test_without_the_row_the_target_is_unknown(tmp_path, capsys):
    assert "torchscript" not in TARGETS
    with pytest.raises(SystemExit):
        main(["export", "--target", "torchscript", "-o", str(tmp_path)])
    assert "invalid choice: 'torchscript'" in capsys.readouterr().err


def test_every_family_names_a_trainer_that_exists():
    from edgeenhance.export.targets import resolve
    from edgeenhance.models.base import load_builtin_families

    trained = {name: cls.trainer for name, cls in load_builtin_families().items() if not cls.classical}
    assert {"bilateral", "student", "resnet_generator"} <= set(trained)
    for name, ref in trained.items():
        if name == "toy_tint":
            continue
        assert callable(resolve(ref)), (name, ref)
