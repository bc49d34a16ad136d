#!/usr/bin/env python3
"""Speed, size and accuracy targets of the shipped models, measured side by side in one run.

Prints tables and writes benchmarks/results/results.json (rendered into docs/results.md by
benchmarks/render_results.py). Usage:
    python benchmarks/run_all.py [--threads 2] [--runs 10] [--sizes 256,512,1080p,12mp] [--models ...]

Each file is timed end to end in a fresh process (the rows). The int8/fp32 model speed-up is
measured as TFLite's benchmark_model does, invoke() alone, the fp32 and int8 files interleaved run
by run as a pair (medians; each variant, bilateral --all-int8 and NCHW, student from its float
weights, in its own pair with its fp32 file): the grid network is under a millisecond, where end-to-end times
are ruled by the slicing pass and by machine noise. PSNR(int8, float) is reported on the timing photo
(rows) and, in the summary, as mean and worst over eight bench photos (seeds 4,000,000-4,000,007)
per size. The summary says which targets each model meets. The files measured are the ones each
export's manifest.json lists (target, precision), never names rebuilt here.

Targets (issue: export, int8 quantization and the runtime harness):
- int8 TFLite >= 2x faster than fp32 TFLite, file <= 30% of fp32, PSNR(int8, float) >= 38 dB
  (bilateral) / 32 dB (student);
- bilateral model at 1920x1080 end to end <= 20x one numpy pass that reads and writes a 1080p
  float RGB frame.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = {"256": (256, 256), "512": (512, 512), "1080p": (1080, 1920), "12mp": (3000, 4000)}


class NumpyPass:
    """One pass that reads and writes a 1080p float32 RGB frame (the floor the target is relative to);
    buffers allocated and touched once, so no page faults are timed."""

    def __init__(self):
        self.a = np.random.default_rng(0).random((1080, 1920, 3), dtype=np.float32)
        self.out = np.empty_like(self.a)
        self()

    def __call__(self) -> float:
        t = time.perf_counter()
        np.multiply(self.a, np.float32(1.0), out=self.out)
        return time.perf_counter() - t


def listed(out_dir: Path, target: str | None = None, precision: str | None = None,
           form: str | None = None, model: str | None = None) -> list[Path]:
    """The files OUT/manifest.json lists, filtered by target, precision, form and model (an entry without
    a form or model has the manifest's top-level one), sorted by name."""
    from edgeenhance.export.manifest import read_manifest

    m = read_manifest(out_dir)
    if m is None:
        raise FileNotFoundError(f"{out_dir}: no manifest.json (export into it first)")
    want = {"target": target, "precision": precision, "form": form, "model": model}
    hits = [e["file"] for e in m["files"]
            if all(v is None or e.get(k, m.get(k)) == v for k, v in want.items())]
    return [Path(out_dir) / f for f in sorted(hits)]


def exported(out_dir: Path, target: str, precision: str, form: str | None = None, model: str | None = None) -> Path:
    """The one file an export wrote into OUT for (target, precision), as its manifest.json names it."""
    hits = listed(out_dir, target, precision, form, model)
    if len(hits) != 1:
        raise LookupError(f"{out_dir}/manifest.json lists {len(hits)} {target} {precision} files"
                          f"{'' if form is None else f' of form {form}'}, not one: {[h.name for h in hits]}")
    return hits[0]


def rel(path: Path) -> str:
    """How rows and the summary name a file: its export folder and its name."""
    return f"{path.parent.name}/{path.name}"


def numpy_pass_ms(runs=20) -> float:
    p = NumpyPass()
    return float(np.median([p() for _ in range(runs)]) * 1000)


def end_to_end_vs_numpy(path: Path, threads: int, runs: int = 30) -> dict:
    """The grid form at 1080p end to end and the numpy pass, interleaved run by run so that the
    shared machine's load falls on both alike; medians and their ratio."""
    from edgeenhance.export.manifest import find_entry
    from edgeenhance.runtime.bench import test_image
    from edgeenhance.runtime.engines import open_engine
    from edgeenhance.runtime.pipeline import make_pipeline

    img = test_image((1080, 1920))
    pipe = make_pipeline(open_engine(path, threads), find_entry(path))
    numpy_pass = NumpyPass()
    for _ in range(3):
        pipe(img)
    e2e, floor, parts = [], [], {}
    for _ in range(runs):
        t = time.perf_counter()
        pipe(img)
        e2e.append(time.perf_counter() - t)
        for k, v in pipe.timings.items():
            parts.setdefault(k, []).append(v)
        floor.append(numpy_pass())
    ms, floor_ms = float(np.median(e2e) * 1000), float(np.median(floor) * 1000)
    return {"file": path.name, "ms": ms, "numpy_pass_ms": floor_ms, "ratio_to_numpy_pass": ms / floor_ms,
            "parts_ms": {k: float(np.median(v) * 1000) for k, v in parts.items()}, "runs": runs,
            "threads": threads, "measured": "interleaved with the numpy pass, medians"}


def lime_ms(size, runs=3) -> float:
    from edgeenhance.models.lime import Lime
    from edgeenhance.runtime.bench import test_image

    img = test_image(size)
    lime = Lime()
    lime.enhance(img)
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        lime.enhance(img)
        ts.append(time.perf_counter() - t)
    return float(np.median(ts) * 1000)


def model_speed(files: dict[str, Path], threads: int, runs: int, rounds: int = 5, warmup_s: float = 0.5) -> dict:
    """Model latency as TFLite's benchmark_model measures it: interpreter invoke() alone, input set
    once, after at least ``warmup_s`` seconds of warm-up runs per file (its --warmup_min_secs).
    The files run interleaved, run by run, so the shared machine's load falls on all alike;
    medians in ms over all runs, and under "rounds" the medians of ``rounds`` equal slices of the
    runs in order (their spread shows how far the machine's load moved a ratio during the run)."""
    from edgeenhance.runtime.engines import LiteRTEngine, quantize

    engines = {k: LiteRTEngine(f, threads) for k, f in files.items()}
    for e in engines.values():
        x = np.random.default_rng(0).random(tuple(e.inp["shape"]), dtype=np.float32)  # the file's own layout
        e.it.set_tensor(e.inp["index"], quantize(x, e.inp))
        start, n = time.perf_counter(), 0
        while n < 3 or time.perf_counter() - start < warmup_s:
            e.it.invoke()
            n += 1
    times = {k: [] for k in engines}
    for _ in range(runs):
        for k, e in engines.items():
            t = time.perf_counter()
            e.it.invoke()
            times[k].append(time.perf_counter() - t)
    out = {k: float(np.median(v) * 1000) for k, v in times.items()}
    out["rounds"] = {k: [float(np.median(c) * 1000) for c in np.array_split(np.asarray(v), rounds)]
                     for k, v in times.items()}
    return out


def paired_speed(files: dict[str, Path], pairs, threads: int, runs: int) -> dict:
    """``model_speed`` of each (fp32, int8) pair of ``files`` keys, the two files interleaved on their
    own, keyed "fp32_key/int8_key". Why pairs: a file's time depends on what else is in the rotation.
    With the five bilateral files in one rotation, the int8 file's speed-up was 1.94-2.02x against
    2.12-2.14x for the same two files as a pair (same process, 800 runs each): the other files evict
    its weights and activations from the caches, which costs a 0.2 ms model relatively more than a
    0.45 ms one."""
    return {f"{a}/{b}": model_speed({a: files[a], b: files[b]}, threads, runs) for a, b in pairs}


def speedup_by_round(ms: dict) -> dict:
    """fp32 / int8 time per round of ``model_speed`` (lowest, median, highest; the ratio over all runs
    is ``model_int8_speedup``)."""
    per_round = [a / b for a, b in zip(ms["rounds"]["fp32"], ms["rounds"]["int8"])]
    return {"rounds_min": min(per_round), "rounds_median": float(np.median(per_round)),
            "rounds_max": max(per_round), "rounds": [round(r, 3) for r in per_round]}


def cpu_info() -> dict:
    """The CPU the numbers were measured on (int8 speed-ups depend on it: VNNI, AVX-512)."""
    import platform

    info = {"machine": platform.machine(), "cpu": platform.processor() or "unknown", "int8_features": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        if line.startswith("model name"):
            info["cpu"] = line.split(":", 1)[1].strip()
        elif line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            info["int8_features"] = sorted(flags & {"avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8"})
            break
    return info


ACCURACY_SEEDS = range(4_000_000, 4_000_008)  # bench photos: disjoint from training, calibration, verification


def accuracy(files: list[Path], model_name: str, size) -> dict:
    """PSNR(file, PyTorch float) over the bench photos: mean and worst, per file."""
    from edgeenhance.evaluate import enhance_array
    from edgeenhance.export.calib import task_exposure
    from edgeenhance.export.manifest import find_entry
    from edgeenhance.metrics import psnr
    from edgeenhance.models.registry import load_model
    from edgeenhance.runtime.bench import test_image
    from edgeenhance.runtime.engines import open_engine
    from edgeenhance.runtime.pipeline import make_pipeline

    model = load_model(model_name)
    imgs = [test_image(size, seed, task_exposure(model)) for seed in ACCURACY_SEEDS]
    refs = [enhance_array(model, im) for im in imgs]
    out = {}
    for f in files:
        pipe = make_pipeline(open_engine(f, 2), find_entry(f))
        vals = [min(psnr(pipe(im), ref), 120.0) for im, ref in zip(imgs, refs)]
        out[rel(f)] = {"mean": float(np.mean(vals)), "min": float(np.min(vals)), "n": len(vals),
                       "per_image": [round(v, 2) for v in vals]}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--sizes", default="256,512,1080p,12mp")
    ap.add_argument("--models", default="bilateral,student-small")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--json-name", default="results.json")
    a = ap.parse_args()
    from edgeenhance.export import ExportOptions, Exporter
    from edgeenhance.fileio import write_json
    from edgeenhance.runtime.bench import measure_isolated

    options = ExportOptions(calib_images=32, verify_images=2, progress=False)  # the benchmark's export settings

    def export(model, out, targets, precisions, **changes):
        """One export with ``options`` (some changed); returns its folder, whose manifest names the files."""
        Exporter(model, options.but(**changes), log=lambda *_: None).export(targets, precisions, out)
        return out

    sizes = [s for s in a.sizes.split(",") if s]
    a.out.mkdir(parents=True, exist_ok=True)
    rows, acc, speed, names = [], {}, {}, {}
    floor = numpy_pass_ms()
    print(f"numpy 1080p read+write pass: {floor:.2f} ms")
    # Bilateral: one grid export serves every photo size.
    models = a.models.split(",")
    if "bilateral" in models:
        bil = export("bilateral", a.out / "bilateral_grid", ["tflite", "onnx"], ["fp32", "int8"], form="grid",
                     size=(512, 512), verify_images=4)
        # --all-int8: the global path in int8 too
        bil8 = export("bilateral", a.out / "bilateral_grid_all_int8", ["tflite"], ["int8"], form="grid",
                      size=(512, 512), verify_images=4, all_int8=True, min_psnr=0)
        # --layout nchw: TRANSPOSE ops at both ends, for comparison
        bilc = export("bilateral", a.out / "bilateral_grid_nchw", ["tflite"], ["fp32", "int8"], form="grid",
                      size=(512, 512), layout="nchw")
        bil_files = {"fp32": exported(bil, "tflite", "fp32"), "int8": exported(bil, "tflite", "int8"),
                     "int8_all": exported(bil8, "tflite", "int8"),
                     "fp32_nchw": exported(bilc, "tflite", "fp32"), "int8_nchw": exported(bilc, "tflite", "int8")}
        # The grid network's input size is fixed whatever the photo size: one model-level measurement.
        speed["bilateral"] = paired_speed(bil_files, [("fp32", "int8"), ("fp32", "int8_all"), ("fp32_nchw", "int8_nchw")],
                                          a.threads, max(50, a.runs * 80))
    for s in (sizes if "bilateral" in models else []):
        size = SIZES[s]
        names[("bilateral", s)] = {k: rel(bil_files[k]) for k in ("fp32", "int8")}
        for f in listed(bil, "tflite") + listed(bil, "onnx"):
            r = measure_isolated("file", str(f), size, a.threads, a.runs, 2)
            rows.append(dict(r, model="bilateral", size_name=s, file=rel(f)))
        rows.append(dict(measure_isolated("torch", "bilateral", size, a.threads, max(2, a.runs // 3), 1),
                         model="bilateral", size_name=s))
        rows.append({"model": "lime", "file": "LIME (numpy/scipy)", "size_name": s, "precision": "fp64",
                     "latency_ms": {"p50": lime_ms(size)}})
        if s != "12mp":  # the float reference takes ~16 s per 12 MP photo
            acc[("bilateral", s)] = accuracy([exported(bil, "tflite", "int8"), exported(bil, "onnx", "int8"),
                                              exported(bil8, "tflite", "int8")], "bilateral", size)
        print(f"  bilateral done at {s}")
    # Student: fixed-size graphs, one export per size (12 MP skipped: the float reference alone takes minutes).
    for s in [x for x in sizes if x != "12mp" and "student-small" in models]:
        size = SIZES[s]
        d = export("student-small", a.out / f"student_{s}", ["tflite", "onnx"], ["fp32", "int8"], size=size)
        # For comparison: plain post-training int8 of the float weights (encoder kept float), what the
        # exporter gives with --float-weights; the default above starts from the shipped QAT weights.
        dp = export("student-small", a.out / f"student_{s}_ptq", ["tflite"], ["int8"], size=size, float_weights=True)
        ptq = exported(dp, "tflite", "int8")
        names[("student-small", s)] = {k: rel(exported(d, "tflite", k)) for k in ("fp32", "int8")}
        speed[("student-small", s)] = paired_speed(
            {"fp32": exported(d, "tflite", "fp32"), "int8": exported(d, "tflite", "int8"), "int8_ptq": ptq},
            [("fp32", "int8"), ("fp32", "int8_ptq")], a.threads, max(10, a.runs * {"256": 30, "512": 8}.get(s, 2)))
        for f in listed(d, "tflite") + listed(d, "onnx") + [ptq]:
            rows.append(dict(measure_isolated("file", str(f), size, a.threads, a.runs, 2), model="student-small",
                             size_name=s, file=rel(f)))
        rows.append(dict(measure_isolated("torch", "student-small", size, a.threads, max(2, a.runs // 3), 1),
                         model="student-small", size_name=s))
        acc[("student-small", s)] = accuracy(listed(d, precision="int8") + [ptq], "student-small", size)
        print(f"  student done at {s}")
    summary = summarize(rows, acc, speed, names)
    if "bilateral" in models:
        summary["bilateral_1080p_end_to_end"] = end_to_end_vs_numpy(exported(bil, "tflite", "int8"), a.threads)
    write_json(a.out / a.json_name, {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                     "threads": a.threads, "machine": cpu_info(), "numpy_1080p_pass_ms": floor,
                                     "rows": rows, "summary": summary})
    print_tables(rows, summary)
    return 0


def _row(rows, model, size, file):
    for r in rows:
        if r.get("model") == model and r.get("size_name") == size and r.get("file") == file and "latency_ms" in r:
            return r
    return None


MIN_PSNR = {"bilateral": 38.0, "student-small": 32.0}  # the targets for PSNR(int8, float)


def summarize(rows, acc, speed, names):
    """Per model and size: int8 vs fp32 TFLite (model alone and end to end), file ratio, accuracy over
    the bench photos, and whether each target is met. ``names[(model, size)]`` gives the default fp32
    and int8 TFLite files ("folder/file", as the manifest named them)."""
    out = {}
    for model in ("bilateral", "student-small"):
        for s in SIZES:
            files = names.get((model, s))
            if not files:
                continue
            f32, i8 = _row(rows, model, s, files["fp32"]), _row(rows, model, s, files["int8"])
            ms = speed.get("bilateral") if model == "bilateral" else speed.get((model, s))
            if not (f32 and i8 and ms):
                continue
            main = ms["fp32/int8"]
            bench = acc.get((model, s), {}).get(files["int8"])
            e = {"files": dict(files), "model_ms_invoke": ms, "model_int8_speedup": main["fp32"] / main["int8"],
                 "model_int8_speedup_by_round": speedup_by_round(main),
                 "end_to_end_ms": {"fp32": f32["latency_ms"]["p50"], "int8": i8["latency_ms"]["p50"]},
                 "end_to_end_int8_speedup": f32["latency_ms"]["p50"] / i8["latency_ms"]["p50"],
                 "tflite_int8_file_ratio": i8["file_size_bytes"] / f32["file_size_bytes"],
                 "int8_psnr_vs_float_over_bench_photos": acc.get((model, s))}
            for key, pair in (("model_all_int8_speedup", "fp32/int8_all"),
                              ("model_float_weights_ptq_speedup", "fp32/int8_ptq"),
                              ("model_int8_speedup_nchw_layout", "fp32_nchw/int8_nchw")):
                if pair in ms:
                    slow, fast = pair.split("/")  # paired_speed's key: "fp32_key/int8_key"
                    e[key] = ms[pair][slow] / ms[pair][fast]
            e["targets_met"] = {"int8_2x_faster_model": e["model_int8_speedup"] >= 2.0,
                                "int8_file_at_most_30pct": e["tflite_int8_file_ratio"] <= 0.30,
                                f"psnr_worst_at_least_{MIN_PSNR[model]:.0f}dB":
                                    None if bench is None else bench["min"] >= MIN_PSNR[model]}
            out[f"{model}@{s}"] = e
    return out


def print_tables(rows, summary):
    print(f"\n{'model':<14}{'size':<7}{'file':<56}{'p50 ms':>10}{'KB':>8}{'dB vs fp':>10}")
    for r in rows:
        if "error" in r:
            print(f"{r.get('model', ''):<14}{r.get('size_name', ''):<7}{r['file'][:55]:<56}  failed: {r['error']}")
            continue
        kb = (r.get("file_size_bytes") or 0) / 1024
        ps = r.get("psnr_vs_float")
        print(f"{r['model']:<14}{r['size_name']:<7}{r['file'][:55]:<56}{r['latency_ms']['p50']:>10.2f}"
              f"{kb:>8.0f}{'-' if ps is None else f'{ps:.2f}':>10}")
    print("\nint8 vs fp32 TFLite (model: invoke() medians, each pair interleaved, and the range over 5 rounds;"
          " e2e: the isolated rows above)")
    print(f"{'model@size':<22}{'model x':>9}{'rounds':>12}{'other x':>9}{'e2e x':>8}{'file':>7}{'worst dB':>10}  targets met")
    print("  (other: bilateral --all-int8; student plain post-training int8 of the float weights, --float-weights)")
    for k, e in summary.items():
        if "model_int8_speedup" not in e:
            continue
        acc = e.get("int8_psnr_vs_float_over_bench_photos") or {}
        worst = (acc.get(e["files"]["int8"]) or {}).get("min")
        allx = e.get("model_all_int8_speedup", e.get("model_float_weights_ptq_speedup"))
        r = e["model_int8_speedup_by_round"]
        print(f"{k:<22}{e['model_int8_speedup']:>9.2f}{r['rounds_min']:>6.2f}-{r['rounds_max']:<5.2f}"
              f"{'-' if allx is None else f'{allx:.2f}':>9}"
              f"{e['end_to_end_int8_speedup']:>8.2f}{e['tflite_int8_file_ratio']:>7.3f}"
              f"{'-' if worst is None else f'{worst:.1f}':>10}  {e['targets_met']}")
    print("\nsummary:")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    sys.exit(main())
