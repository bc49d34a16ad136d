#!/usr/bin/env python3
"""docs/results.md from benchmarks/results/*.json: one section per file, its key numbers as tables.

    python benchmarks/render_results.py                 # rewrite docs/results.md
    python benchmarks/render_results.py --check         # exit 1 if docs/results.md is out of date

The benchmarks write the JSON files (run_all.py, preview_speed.py, real_photos.py); this script only
reads them. Each section names its file and, where the JSON records them, the date, host CPU and
threads. Structures this script knows get their own tables; any other JSON gets a generic table of its
values by key path. Standard library only; the page is a pure function of the JSON files (sorted by
name), written atomically.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GENERIC_MAX_ROWS = 60  # values shown for a JSON of unknown structure
DATE_KEYS = ("date", "created", "timestamp", "measured_at")
HOST_KEYS = ("machine", "host")


# -- formatting --------------------------------------------------------------------------------------
def num(v, nd: int = 2, unit: str = "") -> str:
    """One number as a table cell; '-' for missing values."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}{unit}"
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return f"{v:.{nd}f}{unit}"
    return cell(v)


def cell(v) -> str:
    """Any value as one table cell (no newlines, pipes escaped)."""
    if isinstance(v, (bool, int, float)) or v is None:
        return num(v, 4) if not isinstance(v, float) else f"{v:.4g}"
    if isinstance(v, list):
        if len(v) <= 8 and all(isinstance(x, (str, int, float, bool)) or x is None for x in v):
            return ", ".join(cell(x) for x in v)
        return f"({len(v)} values)"
    if isinstance(v, dict):
        return f"({len(v)} keys)"
    return str(v).replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(c if isinstance(c, str) else cell(c) for c in r) + " |" for r in rows]
    return out


def get(d, *keys, default=None):
    """d[k1][k2]... or ``default`` where any level is missing or not a dict."""
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


# -- provenance ----------------------------------------------------------------------------------------
def provenance(name: str, data, docs: Path) -> list[str]:
    """Where a section's numbers come from: the file, and the date, host, threads and note it records."""
    parts = [f"Source: [`benchmarks/results/{name}`](../benchmarks/results/{name})"]
    if isinstance(data, dict):
        for k in DATE_KEYS:
            if isinstance(data.get(k), str):
                parts.append(f"date {data[k]}")
                break
        else:
            parts.append("date not recorded (see `git log` of the file)")
        for k in HOST_KEYS:
            h = data.get(k)
            if isinstance(h, dict):
                feats = h.get("int8_features")
                parts.append(f"host {h.get('cpu', 'unknown CPU')} ({h.get('machine', '?')}"
                             + (f"; int8 features: {', '.join(map(str, feats)) or 'none'}" if isinstance(feats, list)
                                else "") + ")")
                break
            if isinstance(h, str):
                parts.append(f"host {h}")
                break
        if isinstance(data.get("threads"), int):
            parts.append(f"{data['threads']} threads")
    lines = ["; ".join(parts) + "."]
    if isinstance(data, dict) and isinstance(data.get("note"), str):
        lines.append(f"Note: {cell(data['note'])}")
    page = docs / f"results_{Path(name).stem}.md"
    if page.is_file():
        lines.append(f"Detailed page: [{page.name}]({page.name}).")
    return lines


# -- known structures ----------------------------------------------------------------------------------
def is_run_all(d) -> bool:
    return isinstance(d, dict) and isinstance(d.get("rows"), list) and isinstance(d.get("summary"), dict)


def default_int8(entry: dict) -> str | None:
    """The file of a summary entry that the main int8 numbers are about: the one run_all names, or (older
    JSON) the first TFLite file in its accuracy table."""
    f = get(entry, "files", "int8")
    if isinstance(f, str):
        return f
    acc = entry.get("int8_psnr_vs_float_over_bench_photos") or {}
    return next((k for k in acc if k.endswith(".tflite")), None)


def targets(met: dict) -> str:
    """run_all's targets_met ({name: True/False/None}) as one cell: 'all', or what was missed or not measured."""
    if not isinstance(met, dict) or not met:
        return "-"
    missed = [t for t, ok in met.items() if ok is False]
    unmeasured = [t for t, ok in met.items() if ok is None]
    if not missed and not unmeasured:
        return "all"
    return "; ".join(f"{what}: {', '.join(ts)}" for what, ts in (("missed", missed), ("not measured", unmeasured))
                     if ts)


def render_run_all(d: dict) -> list[str]:
    """benchmarks/run_all.py: int8 vs fp32 per model and size, accuracy per file, latency per file."""
    out = []
    if isinstance(d.get("numpy_1080p_pass_ms"), (int, float)):
        out += [f"numpy 1080p read+write pass: {num(d['numpy_1080p_pass_ms'])} ms.", ""]
    summary = {k: v for k, v in d["summary"].items() if isinstance(v, dict) and "model_int8_speedup" in v}
    if summary:
        out += ["**int8 vs fp32 TFLite.** model x: invoke() medians, each int8 file interleaved run by run with "
                "its fp32 file as a pair after 0.5 s warm-up (lowest-highest of 5 rounds in brackets); other x: "
                "bilateral `--all-int8`, student `--float-weights`; end to end: numpy in, numpy out, each file "
                "in a fresh process (p50).", ""]
        rows = []
        for k, e in summary.items():
            r = e.get("model_int8_speedup_by_round") or {}
            other = e.get("model_all_int8_speedup", e.get("model_float_weights_ptq_speedup"))
            acc = (e.get("int8_psnr_vs_float_over_bench_photos") or {}).get(default_int8(e)) or {}
            met = e.get("targets_met") or {}
            rows.append([k, num(e.get("model_int8_speedup"), 2, "x")
                         + (f" ({num(r.get('rounds_min'))}-{num(r.get('rounds_max'))})" if r else ""),
                         num(other, 2, "x"), num(get(e, "end_to_end_ms", "fp32")), num(get(e, "end_to_end_ms", "int8")),
                         num(e.get("end_to_end_int8_speedup"), 2, "x"), num(e.get("tflite_int8_file_ratio"), 3),
                         f"{num(acc.get('mean'), 1)} / {num(acc.get('min'), 1)}",
                         targets(met)])
        out += table(["model@size", "model x", "other x", "e2e fp32 ms", "e2e int8 ms", "e2e x",
                      "int8/fp32 file", "PSNR(int8, float) mean / worst dB", "targets met"], rows) + [""]
        acc_rows = [[k, f, num(v.get("mean")), num(v.get("min")), num(v.get("n"))]
                    for k, e in summary.items()
                    for f, v in (e.get("int8_psnr_vs_float_over_bench_photos") or {}).items() if isinstance(v, dict)]
        if acc_rows:
            out += ["**PSNR(int8 file, PyTorch float)** over the bench photos, per file.", ""]
            out += table(["model@size", "file", "mean dB", "worst dB", "photos"], acc_rows) + [""]
    e2e = d["summary"].get("bilateral_1080p_end_to_end")
    if isinstance(e2e, dict) and "ms" in e2e:
        parts = ", ".join(f"{k} {num(v)}" for k, v in (e2e.get("parts_ms") or {}).items())
        out += [f"**Bilateral grid form, 1920x1080 end to end** ({e2e.get('file', '?')}): {num(e2e['ms'])} ms = "
                f"{num(e2e.get('ratio_to_numpy_pass'), 1)}x a numpy 1080p read+write pass "
                f"({num(e2e.get('numpy_pass_ms'))} ms, interleaved)" + (f"; {parts} ms" if parts else "") + ".", ""]
    sizes, files = [], {}
    for r in d["rows"]:
        if not isinstance(r, dict):
            continue
        s = str(r.get("size_name", r.get("size", "?")))
        if s not in sizes:
            sizes.append(s)
        key = (str(r.get("model", "?")), str(r.get("file", "?")))
        files.setdefault(key, {"bytes": r.get("file_size_bytes")})
        files[key][s] = "failed" if "error" in r else num(get(r, "latency_ms", "p50"), 1)
    if files:
        out += ["**End to end p50 latency (ms) per file and photo size.**", ""]
        out += table(["model", "file", *sizes, "KB"],
                     [[m, f, *(v.get(s, "-") for s in sizes), num(v["bytes"] / 1024, 0) if v.get("bytes") else "-"]
                      for (m, f), v in files.items()]) + [""]
    return out


def is_preview_speed(d) -> bool:
    return isinstance(d, dict) and isinstance(d.get("results"), dict) and d["results"] and all(
        isinstance(v, dict) and "int8_ms" in v for v in d["results"].values())


def render_preview_speed(d: dict) -> list[str]:
    """benchmarks/preview_speed.py: each model end to end at one photo size against a frame budget."""
    size = "x".join(str(x) for x in reversed(d.get("size") or [])) or "?"  # [H, W] -> WxH
    budget = d.get("budget_ms")
    rows = []
    for m, r in d["results"].items():
        parts = ", ".join(f"{k} {num(v, 1)}" for k, v in (r.get("int8_parts_ms") or {}).items())
        rows.append([m, cell(r.get("form", "-")), num(r.get("fp32_ms"), 1), num(r.get("int8_ms"), 1), parts or "-",
                     num(r.get("speedup"), 2, "x"), num(r.get("size_ratio"), 3), num(r.get("meets_budget"))])
    return [f"Photo {size}, medians of interleaved runs" + (f"; budget {num(budget, 0)} ms per frame." if budget else "."),
            ""] + table(["model", "form", "fp32 ms", "int8 ms", "int8 parts (ms)", "int8/fp32 speed-up",
                         "int8/fp32 file", f"<= {num(budget, 0)} ms" if budget else "in budget"], rows) + [""]


def is_real_photos(d) -> bool:
    return isinstance(d, dict) and isinstance(d.get("sets"), dict) and isinstance(d.get("results"), dict) and all(
        isinstance(v, dict) for v in d["results"].values())


PAIRED_EXTRA = (("mild", "mild pairs"), ("brackets", "real brackets"))  # optional paired sets of real_photos.json


def render_real_photos(d: dict) -> list[str]:
    """benchmarks/real_photos.py: each method on real frames, synthesized pairs and well-exposed photos."""
    over = d.get("exposure") == "over"
    real = "bright" if over else "dark"
    out = [f"- {real if k == 'dark' else k}: {get(v, 'n', default='?')} images, {get(v, 'what', default='')}"
           for k, v in d["sets"].items()] + [""]
    # optional paired sets, in newer files (under): slightly dark pairs (a FiveK stand-in), real brackets
    extra = [(k, name) for k, name in PAIRED_EXTRA if k in d["sets"]]
    rows = []
    for m, r in d["results"].items():
        dk, p, w = r.get("dark") or {}, r.get("pairs") or {}, r.get("well_exposed") or {}
        moved = dk.get("bright_drop") if over else dk.get("dark_lift")
        rows.append([m, num(dk.get("niqe")), num(dk.get("loe"), 0), num(dk.get("mean_lum"), 3),
                     "-" if moved is None else f"{moved:+.3f}",
                     "-" if dk.get("clipped_after") is None else f"{100 * dk['clipped_after']:.2f}%",
                     "-" if dk.get("new_clipped") is None else f"{100 * dk['new_clipped']:.2f}%",
                     f"{num(p.get('psnr'))} / {num(p.get('ssim'), 3)}",
                     *[f"{num(get(r, k, 'psnr'))} / {num(get(r, k, 'ssim'), 3)}" for k, _ in extra],
                     "-" if w.get("psnr_vs_input") is None else f"{num(w['psnr_vs_input'])} (worst {num(w.get('worst'))})",
                     num(1000 * dk["sec_per_image"], 1) if isinstance(dk.get("sec_per_image"), (int, float)) else "-"])
    out += table(["method", f"NIQE ({real})", "LOE", "mean lum",
                  "brightest-30% drop" if over else "darkest-30% lift", "clipped after", "newly clipped",
                  "PSNR / SSIM (pairs)", *[f"PSNR / SSIM ({name})" for _, name in extra], "PSNR(out, in) well-exposed",
                  f"ms/img ({real})"], rows) + [""]
    int8 = [[m, cell(i.get("calibration", "synthetic")), num(i.get("mean_db")), num(i.get("worst_db")),
             cell(i.get("worst_photo", "-")), num(i.get("photos")), num(i.get("file_bytes")),
             num(i["file_bytes"] / i["fp32_file_bytes"], 3) if i.get("file_bytes") and i.get("fp32_file_bytes") else "-"]
            for m, r in d["results"].items() for key in ("int8", "int8_calib") if isinstance(i := r.get(key), dict)]
    if int8:
        out += ["**PSNR(int8 TFLite, float)**, each photo at full resolution (calibration: rendered frames, as "
                "`export --int8` by default, or real training-split frames, as `--calib DIR`).", ""]
        out += table(["method", "calibration", "mean dB", "worst dB", "worst photo", "photos", "int8 bytes",
                      "int8/fp32 file"], int8) + [""]
    return out


def is_train_throughput(d) -> bool:
    return isinstance(d, dict) and d.get("benchmark") == "train_throughput" and isinstance(d.get("rows"), list)


def render_train_throughput(d: dict) -> list[str]:
    """benchmarks/train_throughput.py: training samples/s at 1 and 2 processes (and 1 GPU)."""
    rows = [[num(r.get("processes"), 0), cell(r.get("device")), cell(r.get("backend")),
             num(r.get("threads_per_process"), 0), num(r.get("global_batch"), 0), num(r.get("samples_per_s"), 1)]
            for r in d["rows"]]
    out = [f"`train {d.get('model', '?')}` on {cell(d.get('data'))} data, {num(d.get('crop'), 0)} px crops; samples/s "
           "inside the training loop after the first step.", ""]
    out += table(["processes", "device", "backend", "threads each", "global batch", "samples/s"], rows) + [""]
    out.append(f"Scaling, 2 processes / 1 process on CPU: **{num(d.get('scaling_2proc_cpu'), 2, 'x')}**"
               + (f"; 1 GPU / 1 CPU process: {num(d['gpu_vs_cpu1'], 2, 'x')}." if d.get("gpu_vs_cpu1") else
                  "; no GPU on the host that measured it."))
    return out + [""]


def is_pairs_brightness(d) -> bool:
    return isinstance(d, dict) and d.get("benchmark") == "pairs_brightness" and isinstance(d.get("results"), dict)


def render_pairs_brightness(d: dict) -> list[str]:
    """benchmarks/pairs_brightness.py: the pairs' PSNR with each output scaled by the best gain for it."""
    tg = d.get("targets") or {}
    lift, clip = tg.get("lift"), tg.get("new_clipped")
    rows = []
    for m, r in d["results"].items():
        for key, what in (("as_is", "as is"), ("best_single_gain", "best one gain for all"),
                          ("best_gain_per_pair", "best gain per pair (oracle)"), ("best_rule", "best rule k(m)"),
                          ("best_rule_with_targets", f"best rule k(m), lift >= {num(lift)}, newly clipped <= "
                                                     f"{num(100 * clip if clip is not None else None, 0)}%")):
            v = r.get(key) or {}
            gains = v.get("gain_at")
            rows.append([m, what, num(v.get("pairs_psnr")), "-" if v.get("lift") is None else f"{v['lift']:+.3f}",
                         "-" if v.get("new_clipped") is None else f"{100 * v['new_clipped']:.2f}%",
                         num(v.get("gain")) if "gain" in v else
                         ", ".join(f"{k}: {num(g)}" for k, g in gains.items()) if isinstance(gains, dict) else "-"])
    sets = d.get("sets") or {}
    return [f"Each output scaled by a gain k; pairs: {cell(sets.get('pairs', '?'))}; lift and newly clipped: "
            f"{cell(sets.get('dark', '?'))}. A rule: {cell(d.get('rule', '?'))}.", ""] + table(
        ["model", "gain", "pairs PSNR", "darkest-30% lift", "newly clipped", "gain (at mean luminance)"], rows) + [""]


# -- anything else -------------------------------------------------------------------------------------
def leaves(v, path=""):
    """(key path, value) of every scalar (and short list of scalars) in ``v``, in document order."""
    if isinstance(v, dict):
        for k, x in v.items():
            yield from leaves(x, f"{path}.{k}" if path else str(k))
    elif isinstance(v, list) and not (len(v) <= 8 and all(not isinstance(x, (dict, list)) for x in v)):
        for i, x in enumerate(v):
            yield from leaves(x, f"{path}[{i}]")
    else:
        yield path or "(value)", v


def render_generic(d) -> list[str]:
    """Any JSON: its values by key path (the first GENERIC_MAX_ROWS)."""
    items = [(p, v) for p, v in leaves(d) if p not in (*DATE_KEYS, "note")]
    rows = [[f"`{p}`", cell(v)] for p, v in items[:GENERIC_MAX_ROWS]]
    out = ["No renderer knows this file's structure; its values by key path:", ""] + table(["key", "value"], rows)
    if len(items) > GENERIC_MAX_ROWS:
        out.append(f"\n... and {len(items) - GENERIC_MAX_ROWS} more values in the file.")
    return out + [""]


RENDERERS = [  # (test, renderer, what the section is about)
    (is_run_all, render_run_all, "`benchmarks/run_all.py`: speed, size and accuracy targets of the shipped models"),
    (is_preview_speed, render_preview_speed, "`benchmarks/preview_speed.py`: camera-preview speed"),
    # before real_photos, whose test (sets and results) this file passes too
    (is_pairs_brightness, render_pairs_brightness,
     "`benchmarks/pairs_brightness.py`: how much of the pairs' error is brightness"),
    (is_real_photos, render_real_photos, "`benchmarks/real_photos.py`: models on real photos"),
    (is_train_throughput, render_train_throughput, "`benchmarks/train_throughput.py`: training throughput"),
]


def render_file(path: Path, docs: Path) -> list[str]:
    out = [f"## {path.stem}", ""]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return out + [f"`benchmarks/results/{path.name}` is not readable JSON ({type(e).__name__}: {e}).", ""]
    for test, render, what in RENDERERS:
        if test(data):
            try:
                body = render(data)
            except (KeyError, TypeError, ValueError, AttributeError, ZeroDivisionError) as e:
                body = [f"(The {what.split(':')[0]} renderer failed on this file: {type(e).__name__}: {e}.)", ""]
                body += render_generic(data)
            return out + [f"From {what}.", *provenance(path.name, data, docs), ""] + body
    return out + provenance(path.name, data, docs) + [""] + render_generic(data)


def render(results: Path, docs: Path) -> str:
    """The whole page as text (deterministic: files by name, values in file order)."""
    files = sorted(results.glob("*.json"), key=lambda p: p.name)
    out = ["# Measured results", "",
           "Generated by `benchmarks/render_results.py` from `benchmarks/results/*.json`; do not edit by hand. "
           "Rerun it after a benchmark writes new numbers. What each benchmark measures and how is in its "
           "script's docstring (`python benchmarks/<script>.py --help`).", ""]
    if not files:
        out += ["No results yet: run a benchmark (e.g. `make bench`).", ""]
    else:
        out += ["Contents: " + ", ".join(f"[{p.stem}](#{p.stem.lower()})" for p in files) + ".", ""]
    for p in files:
        out += render_file(p, docs)
    pages = sorted(p for p in docs.glob("results_*.md"))
    if pages:
        out += ["## Detailed pages", ""]
        for p in pages:
            title = p.read_text(encoding="utf-8").split("\n", 1)[0].lstrip("# ").strip() or p.stem
            out.append(f"- [{title}]({p.name})")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results", help="folder of *.json")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results.md")
    ap.add_argument("--check", action="store_true", help="only check that --out is up to date (exit 1 if not)")
    a = ap.parse_args(argv)
    text = render(a.results, a.out.parent)
    if a.check:
        current = a.out.read_text(encoding="utf-8") if a.out.is_file() else None
        if current != text:
            print(f"{a.out} is out of date: run python benchmarks/render_results.py", file=sys.stderr)
            return 1
        return 0
    from edgeenhance.fileio import write_text  # written to a temp file beside it, then renamed

    write_text(a.out, text)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
