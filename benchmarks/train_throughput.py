#!/usr/bin/env python3
"""Training throughput (samples/s) of `edgeenhance train bilateral` at 1 and 2 processes on CPU (gloo,
started by torchrun) and, where a GPU exists, on 1 GPU; the scaling ratio is 2-process samples/s over
1-process samples/s at the same per-process batch (so the 2-process run trains a global batch twice
as large). Samples/s is measured inside the training loop (OUT/world.json), after the first step, so
start-up and data loading do not count.

    python benchmarks/train_throughput.py [--steps 40] [--batch 8] [--crop 128] [--data synthetic]

Writes benchmarks/results/train_throughput.json and prints a table. On CPU, N processes share the
machine's cores: each gets cores / N threads (OMP_NUM_THREADS).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(nproc: int, device: str, a, out: Path) -> dict:
    args = ["train", "bilateral", "--data", a.data, "--n-images", "64", "--val-images", "2", "--crop", str(a.crop),
            "--batch", str(a.batch), "--steps", str(a.steps), "--val-every", str(10 * a.steps), "--device", device,
            "--quiet", "-o", str(out)]
    launcher = [sys.executable, "-m", "edgeenhance"] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--rdzv-backend", "c10d",
        "--rdzv-endpoint", f"127.0.0.1:{_port()}", "-m", "edgeenhance"]
    threads = max(1, (os.cpu_count() or 1) // nproc)
    r = subprocess.run(launcher + args, capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
    if r.returncode != 0:
        raise SystemExit(f"{nproc} process(es) on {device} failed:\n{r.stderr[-2000:]}")
    w = json.loads((out / "world.json").read_text())
    return {"processes": nproc, "device": device, "backend": w["backend"], "threads_per_process": threads,
            "per_process_batch": a.batch, "global_batch": w["global_batch"], "steps_timed": w["steps_timed"],
            "samples_per_s": w["samples_per_s"], "steps_per_s": w["steps_per_s"]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch", type=int, default=8, help="per-process batch (default 8)")
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--data", default="synthetic", help="'synthetic' or a folder of photos")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "train_throughput.json")
    a = p.parse_args(argv)

    import torch

    from benchmarks.run_all import cpu_info
    from edgeenhance.fileio import write_json

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for nproc in (1, 2):
            rows.append(run(nproc, "cpu", a, Path(tmp) / f"cpu{nproc}"))
        if torch.cuda.is_available():
            rows.append(run(1, "cuda", a, Path(tmp) / "gpu1"))
    cpu1, cpu2 = rows[0]["samples_per_s"], rows[1]["samples_per_s"]
    import datetime

    result = {"benchmark": "train_throughput", "date": datetime.date.today().isoformat(), "model": "bilateral", "data": a.data, "crop": a.crop,
              "host": {**cpu_info(), "cores": os.cpu_count(),
                       "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
              "rows": rows, "scaling_2proc_cpu": round(cpu2 / cpu1, 3),
              "note": "samples/s inside the training loop after the first step; 2 processes share the cores"}
    if torch.cuda.is_available():
        result["gpu_vs_cpu1"] = round(rows[2]["samples_per_s"] / cpu1, 2)
    print(f"{'processes':>9} {'device':>6} {'threads':>7} {'global batch':>12} {'samples/s':>10}")
    for r in rows:
        print(f"{r['processes']:>9} {r['device']:>6} {r['threads_per_process']:>7} {r['global_batch']:>12} "
              f"{r['samples_per_s']:>10.2f}")
    print(f"scaling 2 processes / 1 process (CPU): {result['scaling_2proc_cpu']:.2f}x")
    write_json(a.json, result)
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
