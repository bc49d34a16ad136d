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
