from pathlib import Path

import numpy as np
import pytest

from edgeenhance.errors import UserError
from edgeenhance.models.registry import load_model
from edgeenhance.train.bilateral import train_bilateral
from edgeenhance.train.common import load_training_state


def small_run(tmp_path, **kw):
    args = dict(steps=40, batch=4, crop=64, n_images=12, val_images=2, val_every=20, progress=False, lr=3e-3,
                model_config=dict(lowres=64, grid_size=8, bins=4, width=4), log=lambda *_: None)
    args.update(kw)
    return train_bilateral(tmp_path, **args)


def test_short_training_lowers_loss(tmp_path):
    r = small_run(tmp_path)
    h = r["history"]
    assert np.mean(h[-8:]) < 0.8 * np.mean(h[:8])
    m = load_model(str(tmp_path / "best.safetensors"))
    assert m.config["bins"] == 4


def test_zero_reference_lowers_loss(tmp_path):
    r = small_run(tmp_path, zero_reference=True)
    h = r["history"]
    assert np.mean(h[-8:]) < np.mean(h[:8])


def test_resume_continues_from_saved_step(tmp_path):
    small_run(tmp_path, steps=20)
    r = small_run(tmp_path, steps=30, resume=True)
    assert len(r["history"]) == 10
    import torch

    from edgeenhance.models.bilateral import BilateralEnhancer

    m = BilateralEnhancer(lowres=64, grid_size=8, bins=4, width=4)
    opt = torch.optim.Adam(m.parameters())
    step, _ = load_training_state(tmp_path / "last.safetensors", {"model": m}, {"model": opt}, "cpu")
    assert step == 30 and len(opt.state) > 0


def test_resume_without_state_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="no training state"):
        small_run(tmp_path, resume=True)


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def real_folder(tmp_path, sub, n, name):
    """A small copy of a folder of ../shared/data (the real photos CI has beside the repo)."""
    import shutil

    src = SHARED / sub
    assert src.is_dir(), f"{src} is missing: the real-photo tests need ../shared/data beside the repo"
    dst = tmp_path / name
    dst.mkdir()
    for f in sorted(src.iterdir())[:n]:
        shutil.copy(f, dst / f.name)
    return dst


def test_short_real_photo_run_lowers_the_loss_and_lifts_real_dark_frames(tmp_path):
    photos = real_folder(tmp_path, "photos/bsd100", 12, "photos")
    dark = real_folder(tmp_path, "exposure/lol_our485_low", 8, "dark")
    logs = []
    r = small_run(tmp_path / "run", data=str(photos), zero_ref=[dark], steps=60, val_every=60, lr=5e-3,
                  log=logs.append, workers=0)
    h = r["history"]
    assert np.mean(h[-10:]) < 0.8 * np.mean(h[:10])
    assert r["best"]["dark_lift"] > 0.005  # the identity start lifts nothing
    assert any("real low-light frames" in line for line in logs)


def test_real_photo_folder_without_dark_frames_is_a_clear_error(tmp_path):
    photos = real_folder(tmp_path, "photos/bsd100", 6, "photos")
    with pytest.raises(UserError, match="no frames darker"):
        small_run(tmp_path / "run", data=str(photos), zero_ref=[photos], steps=2)
