"""The one training loop (edgeenhance/train/loop.py) on a two-parameter model: seconds, no data."""

import os
import signal

import numpy as np
import pytest
import torch
from torch import nn

from edgeenhance.models.registry import read_checkpoint
from edgeenhance.train.loop import KeepBest, Loop, WeightAverage, adam, cosine, optimize


class Line(nn.Module):
    """y = a x + b: enough to see a loss fall and weights move."""

    family, config = "toy-line", {}

    def __init__(self):
        super().__init__()
        self.fit = nn.Linear(1, 1)


def run(out, steps=30, resume=False, stop_after=None, scores=None, val_every=10):
    """Fits y = 2x + 1 on batches drawn from a tracked numpy Generator, with torch noise (the global
    random state), Adam and a cosine schedule. ``stop_after``: SIGINT during that step.
    ``scores``: validation scores in order (default: minus the validation loss)."""
    torch.manual_seed(0)
    model = Line()
    opt = adam(model.parameters(), 0.05)
    sched = cosine(opt, steps, floor=0.05)
    loop = Loop(out, resume=resume, progress=False, log=lambda *_: None)
    saved = loop.track({"model": model}, {"model": opt}, {"model": sched}).get("best")  # None on a fresh run
    rng = np.random.default_rng(0)
    loop.track_random({"data": rng})
    losses, scores = [], list(scores or [])

    def step(i):
        x = torch.from_numpy(rng.random((8, 1), dtype=np.float32))
        y = 2 * x + 1 + 0.01 * torch.randn_like(x)
        loss = ((model.fit(x) - y) ** 2).mean()
        optimize(opt, loss, sched)
        losses.append(loss.item())
        if i + 1 == stop_after:
            os.kill(os.getpid(), signal.SIGINT)

    def validate(done):
        x = torch.linspace(0, 1, 5)[:, None]
        with torch.no_grad():
            score = scores.pop(0) if scores else -((model.fit(x) - (2 * x + 1)) ** 2).mean().item()
        return score, {"step": done, "score": score}

    best = KeepBest(out / "best.safetensors", model, "line", score=saved["score"] if saved else -np.inf, record=saved)
    stopped = loop.run(step, steps, val_every=val_every, validate=validate, best=best,
                       meta=lambda: {"best": best.record})
    return model, losses, best, stopped


def test_the_loop_lowers_a_tiny_models_loss(tmp_path):
    _, losses, best, stopped = run(tmp_path, steps=60)
    assert stopped is None and len(losses) == 60
    assert np.mean(losses[-5:]) < 0.1 * np.mean(losses[:5])
    assert (tmp_path / "last.safetensors").is_file() and best.record["step"] == 60


def test_the_best_checkpoint_is_the_best_validation_not_the_last_step(tmp_path):
    last, _, best, _ = run(tmp_path, steps=30, scores=[0.1, 0.7, 0.4])
    tensors, meta = read_checkpoint(tmp_path / "best.safetensors")
    assert best.score == 0.7 and meta["meta"] == {"step": 20, "score": 0.7} and meta["name"] == "line"
    assert any(not torch.equal(tensors[f"model.{k}"], v) for k, v in last.state_dict().items())
    # it holds the weights of step 20: those a run stopped there (same 30-step schedule) ends with
    at20, _, _, stopped = run(tmp_path / "cut20", steps=30, stop_after=20)
    assert stopped == "SIGINT"
    for k, v in at20.state_dict().items():
        assert torch.equal(tensors[f"model.{k}"], v), k


@pytest.mark.parametrize("stop_after", [5, 10, 17])  # mid-interval, at a validation, after it
def test_resume_after_a_stop_ends_with_the_weights_of_the_uninterrupted_run(tmp_path, stop_after):
    whole, whole_losses, whole_best, _ = run(tmp_path / "whole")
    cut, losses, _, stopped = run(tmp_path / "cut", stop_after=stop_after)
    assert stopped == "SIGINT" and len(losses) == stop_after
    assert any(not torch.equal(a, b) for a, b in zip(whole.state_dict().values(), cut.state_dict().values()))
    resumed, rest, best, stopped = run(tmp_path / "cut", resume=True)
    assert stopped is None and losses + rest == whole_losses
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert best.score == whole_best.score


def test_without_a_run_folder_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = Line()
    opt = adam(model.parameters(), 0.1)
    loop = Loop(progress=False)

    def step(i):
        optimize(opt, ((model.fit(torch.ones(2, 1)) - 3) ** 2).mean())

    assert loop.run(step, 5) is None and list(tmp_path.iterdir()) == []


def test_the_weight_average_follows_the_trained_weights_by_its_decay():
    trained = Line()
    with torch.no_grad():
        trained.fit.weight.fill_(0.0)
    avg = WeightAverage(trained, 0.5)
    assert avg.model is not trained and not avg.model.fit.weight.requires_grad
    with torch.no_grad():
        trained.fit.weight.fill_(1.0)
    avg.update(trained, 0)  # step 0: decay min(0.5, 1/10), the start is mostly forgotten
    assert avg.model.fit.weight.item() == pytest.approx(0.9)
    avg.update(trained, 100)  # later: the decay itself
    assert avg.model.fit.weight.item() == pytest.approx(0.95)
    assert trained.fit.weight.item() == 1.0  # the trained copy is untouched
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(trained, 1.0)
