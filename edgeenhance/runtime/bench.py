"""Host benchmarks: latency percentiles, peak memory, file size and accuracy against the float
reference, each model file measured in a fresh process so memory figures do not mix."""

from __future__ import annotations

import multiprocessing as mp
import os
import platform
import time
from pathlib import Path

import numpy as np

from edgeenhance.errors import UserError


def test_image(size: tuple[int, int], seed: int = 4_000_000, exposure: str = "under") -> np.ndarray:
    """A rendered photo at ``size`` (rendered small and upsampled: content, not detail, matters here)."""
    from edgeenhance.data.synth import render_single
    from edgeenhance.runtime.fused_slice import resize_bilinear

    h, w = size
    s = min(1.0, 384 / max(h, w))
    img = render_single(seed, exposure, (max(8, round(h * s)), max(8, round(w * s))))
    return img if img.shape[:2] == (h, w) else resize_bilinear(img, size)


def _stats(times: list[float]) -> dict:
    t = np.asarray(times) * 1000
    return {"p50": float(np.percentile(t, 50)), "p90": float(np.percentile(t, 90)), "mean": float(t.mean()),
            "std": float(t.std()), "min": float(t.min())}


def _peak_rss_mb() -> float:
    """Peak resident memory of this process. VmHWM, not ru_maxrss: the latter survives exec, so a
    child spawned from a big parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _measure(kind: str, target: str, size, threads: int, runs: int, warmup: int, reference: bool,
             label: str | None = None) -> dict:
    """Runs in a child process: one model file (or the PyTorch float reference of a zoo model or checkpoint,
    shown as ``label``)."""
    import torch

    torch.set_num_threads(threads)
    from edgeenhance.evaluate import enhance_array
    from edgeenhance.export.calib import task_exposure
    from edgeenhance.export.manifest import find_entry, reference_model
    from edgeenhance.metrics import max_abs_error, psnr
    from edgeenhance.models.registry import load_model
    from edgeenhance.runtime.engines import TorchEngine, open_engine
    from edgeenhance.runtime.pipeline import ImagePipeline, make_pipeline

    base_rss = _peak_rss_mb()
    if kind == "torch":
        model = load_model(target)
        label = label or target
        pipe, entry = ImagePipeline(TorchEngine(model, threads, name=f"{label} (PyTorch float)")), None
        row = {"file": f"{label} (PyTorch fp32)", "format": "torch", "precision": "fp32", "runtime": f"torch {torch.__version__}",
               "model": label, "form": "full", "file_size_bytes": None}
    else:
        path = Path(target)
        entry = find_entry(path)  # refuses a file that is not the one its manifest describes
        engine = open_engine(path, threads)
        pipe = make_pipeline(engine, entry)
        spec = reference_model(path, entry) if reference else None
        model = load_model(spec) if spec else None
        row = {"file": path.name, "format": engine.fmt, "precision": (entry or {}).get("precision", "?"),
               "runtime": engine.runtime, "model": (entry or {}).get("model"), "form": (entry or {}).get("form", "full"),
               "file_size_bytes": (entry or {}).get("size_bytes") or path.stat().st_size,
               "io_dtype": getattr(engine, "io_dtype", "float32")}
    exposure = task_exposure(model) if model is not None else "under"
    img = test_image(size, exposure=exposure)
    if getattr(pipe, "engine", None) is not None and pipe.engine.input_shape is not None and row["form"] != "grid":
        pipe.engine.check_input(np.zeros((1, 3, *size), np.float32))
    for _ in range(warmup):
        out = pipe(img)
    times, parts = [], {}
    for _ in range(runs):
        t0 = time.perf_counter()
        out = pipe(img)
        times.append(time.perf_counter() - t0)
        for k, v in pipe.timings.items():
            parts.setdefault(k, []).append(v)
    row.update(size=f"{size[0]}x{size[1]}", threads=threads, runs=runs, latency_ms=_stats(times),
               parts_ms={k: float(np.median(v) * 1000) for k, v in parts.items()} if len(parts) > 1 else None,
               peak_rss_mb=_peak_rss_mb(), rss_increase_mb=_peak_rss_mb() - base_rss)
    if model is not None and kind != "torch":
        ref = enhance_array(model, img)
        row.update(psnr_vs_float=min(psnr(out, ref), 120.0), max_abs_error=max_abs_error(out, ref))
    return row


def _child(q, args, label=None):
    try:
        q.put(("ok", _measure(*args, label=label)))
    except UserError as e:
        q.put(("user", str(e)))
    except Exception as e:  # report, do not crash the whole benchmark
        q.put(("error", f"{type(e).__name__}: {e}"))


def measure_isolated(kind, target, size, threads, runs, warmup, reference=True, timeout=900, label=None) -> dict:
    """One measurement in a fresh process. Failures become rows with ``error`` (and ``user_error`` where the
    cause is the user's to fix: a corrupt file, a size the model cannot take), so one bad file among
    good ones costs its own row, not the whole run."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q, (kind, target, size, threads, runs, warmup, reference), label))
    p.start()
    p.join(timeout)
    if p.is_alive():
        p.kill()
        return {"file": str(target), "error": f"timed out after {timeout} s"}
    if q.empty():
        return {"file": str(target), "error": f"benchmark process died (exit code {p.exitcode})"}
    status, payload = q.get()
    if status == "user":
        return {"file": str(target), "error": payload, "user_error": True}
    return payload if status == "ok" else {"file": str(target), "error": payload}


def host_info(threads: int) -> dict:
    return {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "threads": threads, "python": platform.python_version(), "system": platform.system()}


def bench(files: list[Path], size=(1080, 1920), threads: int = 2, runs: int = 10, warmup: int = 2,
          reference: bool = True, progress: bool = True) -> dict:
    """Benchmark model files (plus the PyTorch float reference of each model they come from)."""
    from tqdm import tqdm

    from edgeenhance.export.manifest import find_entry, reference_model

    for f in files:
        if not Path(f).exists():
            raise UserError(f"{f}: no such model file")
    rows = []
    models: dict[str, str] = {}  # what load_model takes -> the name shown (a checkpoint's stem, not its path)
    refs: dict[str, str] = {}  # file -> its float model, as load_model takes it
    for f in files:
        try:
            e = find_entry(Path(f))
        except UserError:
            continue  # the file's own row says why
        spec = reference_model(Path(f), e) if reference else None
        if spec:
            refs[str(f)] = spec
            models.setdefault(spec, e["model"])
    jobs = [("torch", m) for m in models] + [("file", str(f)) for f in files]
    float_ms = {}
    for kind, target in tqdm(jobs, desc="bench", unit="model", disable=not progress):
        row = measure_isolated(kind, target, size, threads, runs, warmup, reference, label=models.get(target))
        if kind == "torch":
            row["reference"] = True
            if "latency_ms" in row:
                float_ms[target] = row["latency_ms"]["p50"]
        elif "latency_ms" in row and refs.get(target) in float_ms:
            row["speedup_vs_torch_float"] = float_ms[refs[target]] / row["latency_ms"]["p50"]
        rows.append(row)
    return {"host": host_info(threads), "size": f"{size[0]}x{size[1]}", "results": rows,
            "model_dirs": sorted({str(Path(f).resolve().parent) for f in files})}


COLUMNS = [("file", "model file", 40), ("size", "size", 10), ("precision", "prec", 5), ("latency_ms.p50", "p50 ms", 9),
           ("latency_ms.p90", "p90 ms", 9), ("latency_ms.std", "std", 7), ("peak_rss_mb", "peak MB", 8),
           ("file_size_bytes", "size KB", 9), ("psnr_vs_float", "dB vs fp", 9), ("max_abs_error", "max err", 8)]


def _get(row, key):
    for k in key.split("."):
        row = row.get(k) if isinstance(row, dict) else None
    return row


def format_table(result: dict) -> str:
    lines = [f"size {result['size']}, {result['host']['threads']} thread(s), {result['host']['machine']}"]
    lines.append("".join(f"{h:>{w}}" if i else f"{h:<{w}}" for i, (_, h, w) in enumerate(COLUMNS)))
    for r in result["results"]:
        if "error" in r:
            lines.append(f"{r['file'][:39]:<40}  failed: {r['error']}")
            continue
        cells = []
        for i, (key, _, w) in enumerate(COLUMNS):
            v = _get(r, key)
            if key == "file_size_bytes" and v:
                v = v / 1024
            txt = "-" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))
            cells.append(f"{txt[:w - 1]:<{w}}" if i == 0 else f"{txt:>{w}}")
        lines.append("".join(cells))
        if r.get("parts_ms"):
            lines.append("    parts: " + ", ".join(f"{k} {v:.2f} ms" for k, v in r["parts_ms"].items()))
    return "\n".join(lines)


def write_csv(path: Path, result: dict) -> None:
    import csv
    import io

    from edgeenhance.fileio import write_text

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([k for k, _, _ in COLUMNS] + ["runtime", "size", "threads"])
    for r in result["results"]:
        w.writerow([_get(r, k) for k, _, _ in COLUMNS] + [r.get("runtime"), r.get("size"), r.get("threads")])
    write_text(path, buf.getvalue())
