#!/usr/bin/env python3
"""Camera-preview speed: each model's deployed TFLite files end to end at 1920x1080, int8 next to fp32.

A preview runs every frame: at 30 fps that is 33 ms a frame. For each model the fp32 and int8 TFLite
files of its default form are exported (the bilateral grid form: resize -> network -> fused
slicing on the host; a full-form model: the network on the whole frame) and timed through the
deployed pipeline on a rendered 1080p photo, fp32 and int8 interleaved run by run (so that load on
the shared machine falls on both alike); medians, the int8 parts, the int8/fp32 speed-up and file
sizes. Writes benchmarks/results/preview_speed.json and docs/results_preview_speed.md.

    python benchmarks/preview_speed.py [--models bilateral-over,bilateral,student-small] [--threads 2] [--runs 30]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUDGET_MS = 33.0  # one frame at 30 fps
SIZE = (1080, 1920)


def time_model(spec: str, threads: int, runs: int, workdir: Path) -> dict:
    from edgeenhance.export import Exporter, ExportOptions
    from edgeenhance.export.manifest import find_entry
    from edgeenhance.models.registry import load_model
    from edgeenhance.runtime.bench import test_image
    from edgeenhance.runtime.engines import open_engine
    from edgeenhance.runtime.pipeline import make_pipeline

    model = load_model(spec)
    form = getattr(model, "default_form", "full")
    size = SIZE if form == "full" else None  # a full-form file takes one fixed size; the grid form any
    manifest = Exporter(spec, ExportOptions(form=form, size=size, progress=False), log=lambda *_: None).export(
        ["tflite"], ["fp32", "int8"], workdir / spec)
    files = {f["precision"]: workdir / spec / f["file"] for f in manifest["files"]}
    pipes = {k: make_pipeline(open_engine(p, threads), find_entry(p)) for k, p in files.items()}
    img = test_image(SIZE, exposure="over")
    for _ in range(3):
        for p in pipes.values():
            p(img)
    ms, parts = {k: [] for k in pipes}, {}
    for _ in range(runs):
        for k, p in pipes.items():
            t = time.perf_counter()
            p(img)
            ms[k].append(time.perf_counter() - t)
            if k == "int8":
                for part, v in p.timings.items():
                    parts.setdefault(part, []).append(v)
    med = {k: float(np.median(v) * 1000) for k, v in ms.items()}
    sizes = {k: p.stat().st_size for k, p in files.items()}
    return {"form": form, "fp32_ms": med["fp32"], "int8_ms": med["int8"], "speedup": med["fp32"] / med["int8"],
            "int8_parts_ms": {k: float(np.median(v) * 1000) for k, v in parts.items()},
            "fp32_bytes": sizes["fp32"], "int8_bytes": sizes["int8"], "size_ratio": sizes["int8"] / sizes["fp32"],
            "meets_budget": med["int8"] <= BUDGET_MS, "runs": runs}


def table(results: dict, threads: int) -> str:
    lines = [f"| model | form | fp32 ms | int8 ms | int8 parts (ms) | int8/fp32 speed-up | int8 file / fp32 | "
             f"<= {BUDGET_MS:g} ms |", "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        parts = ", ".join(f"{k} {v:.1f}" for k, v in r["int8_parts_ms"].items())
        lines.append(f"| {name} | {r['form']} | {r['fp32_ms']:.1f} | {r['int8_ms']:.1f} | {parts} | {r['speedup']:.2f}x "
                     f"| {100 * r['size_ratio']:.1f}% ({r['int8_bytes']:,} B) | {'yes' if r['meets_budget'] else 'no'} |")
    return "\n".join(lines) + f"\n\n1920x1080, {threads} threads, LiteRT (XNNPACK), medians of interleaved runs."


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="bilateral-over,bilateral,student-small", help="comma-separated zoo names")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "preview_speed.json")
    p.add_argument("--doc", type=Path, default=ROOT / "docs" / "results_preview_speed.md")
    a = p.parse_args(argv)

    import torch

    from edgeenhance.fileio import write_json, write_text
    from run_all import cpu_info

    torch.set_num_threads(a.threads)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in a.models.split(","):
            results[spec] = time_model(spec, a.threads, a.runs, Path(tmp))
            print(f"{spec}: int8 {results[spec]['int8_ms']:.1f} ms, fp32 {results[spec]['fp32_ms']:.1f} ms", flush=True)
    text = table(results, a.threads)
    print(text)
    host = cpu_info()
    write_json(a.out, {"size": list(SIZE), "threads": a.threads, "host": host, "budget_ms": BUDGET_MS,
                       "results": results})
    write_text(a.doc, f"# Camera-preview speed\n\nGenerated by `benchmarks/preview_speed.py` from "
                      f"`{a.out.relative_to(ROOT) if a.out.is_relative_to(ROOT) else a.out}` ({host.get('cpu', 'unknown CPU')}; int8 features: {', '.join(host.get('int8_features', [])) or 'none'}: int8 pays on VNNI/AVX-512 hosts and ARM phones, not on AVX2 alone).\n\n{text}\n")
    print(f"wrote {a.out} and {a.doc}")


if __name__ == "__main__":
    main()
