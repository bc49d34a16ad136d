"""Training under torchrun: 2 CPU processes (gloo) started through torchrun's own launcher."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from edgeenhance.models.registry import read_checkpoint
from edgeenhance.train.distributed import shard

TINY = ["--data", "synthetic", "--n-images", "6", "--val-images", "2", "--crop", "32", "--val-every", "2",
        "--lr", "1e-2", "--quiet"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(nproc: int, args: list[str], env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node N -m edgeenhance ARGS`` (1 process: plain ``python -m edgeenhance``)."""
    cmd = [sys.executable, "-m", "edgeenhance", *args] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--nnodes", "1",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{_free_port()}", "-m", "edgeenhance", *args]
    e = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e, cwd=Path(__file__).parents[1])


def train(nproc, out, batch, steps, *extra, env=None):
    r = launch(nproc, ["train", "bilateral", *TINY, "--batch", str(batch), "--steps", str(steps), "-o", str(out),
                       *extra], env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def weights(path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in read_checkpoint(path)[0].items() if k.startswith("model.")}


def test_shard_splits_a_global_batch_in_rank_order():
    items = list(range(10))
    parts = [shard(items, r, 3) for r in range(3)]
    assert sum(parts, []) == items and [len(p) for p in parts] == [3, 3, 4]


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "run"
    r = train(2, out, 2, 4)
    return out, r


def test_two_ranks_match_one_process_over_the_same_global_batch(two_rank_run, tmp_path):
    out, r = two_rank_run
    world = json.loads((out / "world.json").read_text())
    assert world["world_size"] == 2 and world["backend"] == "gloo" and world["global_batch"] == 4
    assert len(world["fingerprints"]) == 2 and len(set(world["fingerprints"])) == 1  # identical on both ranks
    assert "global batch 4 = 2 per process x 2 processes" in r.stdout + r.stderr

    single = tmp_path / "single"
    train(1, single, 4, 4)
    a, b = weights(out / "final.safetensors"), weights(single / "final.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)
    # ... and not what one process makes of a per-rank batch alone: the ranks did see each other's half
    half = tmp_path / "half"
    train(1, half, 2, 4)
    c = weights(half / "final.safetensors")
    assert max((a[k] - c[k]).abs().max().item() for k in a) > 1e-4
    # one process wrote: the same files as the single-process run, none per rank
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in single.iterdir())


def test_resume_continues_with_one_and_with_two_processes(two_rank_run, tmp_path):
    out, _ = two_rank_run
    for nproc in (1, 2):
        run = tmp_path / f"resume{nproc}"
        shutil.copytree(out, run)
        r = train(nproc, run, 2, 6, "--resume")
        assert "resumed from" in r.stdout + r.stderr and "at step 4" in r.stdout + r.stderr
        if nproc == 1:  # the global batch halves: said, and the lr kept under --lr-scale none
            assert "resumed with 1 process(es), saved with 2" in r.stdout + r.stderr
        with safe_open(str(run / "last.safetensors"), framework="pt") as f:
            assert f.metadata()["step"] == "6"
        assert not torch.equal(weights(run / "final.safetensors")["model.gridnet.out.weight"],
                               weights(out / "final.safetensors")["model.gridnet.out.weight"])


def test_a_crash_on_one_rank_ends_the_job_with_a_message(tmp_path):
    r = launch(2, ["train", "bilateral", *TINY, "--batch", "2", "--steps", "50", "-o", str(tmp_path / "crash")],
               env={"EDGEENHANCE_FAIL_AT": "1:3"}, timeout=180)
    assert r.returncode != 0
    text = r.stdout + r.stderr
    assert "edgeenhance: error (rank 1 of 2)" in text and "injected failure at step 3" in text


def test_cyclegan_and_distill_run_under_torchrun(tmp_path):
    cg = tmp_path / "cg"
    r = launch(2, ["train", "cyclegan", "--over", "synthetic", "--normal", "synthetic", "--n-images", "8", "--epochs",
                   "2", "--batch", "1", "--crop", "32", "--ngf", "4", "--n-blocks", "1", "--ndf", "4", "--quiet",
                   "-o", str(cg)])
    assert r.returncode == 0, r.stderr[-3000:]
    world = json.loads((cg / "world.json").read_text())
    assert world["global_batch"] == 2 and len(set(world["fingerprints"])) == 1
    assert "G=" in world["fingerprints"][0] and "D_Y=" in world["fingerprints"][0]
    # 8 images per domain / global batch 2: 4 steps per epoch; one log line per epoch (rank 0 alone writes)
    assert len((cg / "log.jsonl").read_text().splitlines()) == 2
    ds = tmp_path / "ds"
    r = launch(2, ["distill", "--teacher", str(cg / "teacher.safetensors"), "--student", "tiny", "--n-images", "8",
                   "--steps", "4", "--batch", "2", "--crop", "32", "--val-images", "2", "--val-every", "2", "--quiet",
                   "-o", str(ds)])
    assert r.returncode == 0, r.stderr[-3000:]
    world = json.loads((ds / "world.json").read_text())
    assert world["global_batch"] == 4 and len(set(world["fingerprints"])) == 1
    assert (ds / "student.safetensors").exists()
