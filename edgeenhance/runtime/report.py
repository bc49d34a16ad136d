"""A self-contained HTML report from benchmark results: before/after images, difference heat
maps against the float model, latency and accuracy charts (images embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

from edgeenhance.errors import UserError


def _png(fig_or_array) -> str:
    buf = io.BytesIO()
    if isinstance(fig_or_array, np.ndarray):
        from PIL import Image

        Image.fromarray(np.round(np.clip(fig_or_array, 0, 1) * 255).astype(np.uint8)).save(buf, "PNG")
    else:
        fig_or_array.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _heat(diff: np.ndarray, vmax: float = 0.05) -> np.ndarray:
    import matplotlib

    return matplotlib.colormaps["inferno"](np.clip(diff.max(axis=2) / vmax, 0, 1))[..., :3]


def _charts(rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if all(_num(_get(r, "latency_ms", k)) is not None for k in ("p50", "p90"))]
    names = [_label(r.get("file")) for r in ok]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(ok) + 1))
    p50 = [r["latency_ms"]["p50"] for r in ok]
    p90 = [r["latency_ms"]["p90"] for r in ok]
    ax.barh(names, p50, xerr=[np.zeros(len(ok)), np.subtract(p90, p50)], color="#4c78a8")
    ax.set_xlabel("latency (ms, p50 with p90 whisker)")
    ax.invert_yaxis()
    lat = _png(fig)
    plt.close(fig)
    acc_rows = [r for r in ok if _num(r.get("psnr_vs_float")) is not None]
    acc = None
    if acc_rows:
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(acc_rows) + 1))
        ax.barh([_label(r.get("file")) for r in acc_rows], [r["psnr_vs_float"] for r in acc_rows], color="#59a14f")
        ax.axvline(35, color="red", ls="--", lw=1, label="int8 threshold (35 dB)")
        ax.set_xlabel("PSNR against the PyTorch float model (dB)")
        ax.legend(loc="lower right")
        ax.invert_yaxis()
        acc = _png(fig)
        plt.close(fig)
    return lat, acc


def _get(row, *keys):
    for k in keys:
        row = row.get(k) if isinstance(row, dict) else None
    return row


def _num(v):
    """``v`` if it is a real number (results files are input: a field may hold anything)."""
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) else None


def _label(v) -> str:
    # matplotlib reads $...$ as mathematics (and fails on some); a chart label is plain text
    return str(v if v is not None else "?").replace("$", r"\$")


def _previews(rows, base_dirs, size=(256, 384)):
    """Run each model file once on a preview image: before, after and |after - float| heat map."""
    from edgeenhance.evaluate import enhance_array
    from edgeenhance.export.calib import task_exposure
    from edgeenhance.export.manifest import find_entry, reference_model
    from edgeenhance.models.registry import load_model
    from edgeenhance.runtime.bench import test_image
    from edgeenhance.runtime.engines import open_engine
    from edgeenhance.runtime.pipeline import make_pipeline

    out = []
    for r in rows:
        name = r.get("file")
        if r.get("format") in (None, "torch") or "error" in r or not isinstance(name, str) or Path(name).name != name:
            continue  # only plain names of files in the benchmarked folders
        path = next((Path(d) / name for d in base_dirs if isinstance(d, str) and (Path(d) / name).exists()), None)
        try:
            entry = find_entry(path) if path else None
            spec = reference_model(path, entry)
            if not spec:
                continue
            engine = open_engine(path)
            model = load_model(spec)
            psize = tuple(engine.input_shape[2:]) if engine.input_shape and entry.get("form") != "grid" else size
            img = test_image(psize, seed=4_000_001, exposure=task_exposure(model))
            after = make_pipeline(engine, entry)(img)
            ref = enhance_array(model, img)
        except UserError:
            continue
        out.append((name, img, after, _heat(np.abs(after - ref))))
    return out


def write_report(results_files: list[Path], out: Path) -> Path:
    from edgeenhance.fileio import write_text

    rows, hosts, base_dirs = [], [], []
    for f in results_files:
        f = Path(f)
        if not f.exists():
            raise UserError(f"{f}: no such results file")
        try:
            data = json.loads(f.read_text())
            if not isinstance(data["results"], list) or not all(isinstance(r, dict) for r in data["results"]):
                raise TypeError
            rows += data["results"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
            raise UserError(f"{f}: not a results JSON written by `edgeenhance bench --json`") from None
        hosts.append(data.get("host", {}))
        dirs = data.get("model_dirs", [])
        base_dirs += [d for d in (dirs if isinstance(dirs, list) else []) if isinstance(d, str)] + [str(f.parent)]
    lat, acc = _charts(rows)
    h = ["<!doctype html><html><head><meta charset='utf-8'><title>edgeenhance report</title><style>",
         "body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}"
         "img{max-width:100%}.row{display:flex;gap:8px}.row figure{margin:0;flex:1}</style></head><body>",
         "<h1>edgeenhance benchmark report</h1>"]
    for host in hosts:
        h.append(f"<p>Host: {html.escape(json.dumps(host))}</p>")
    h.append("<table><tr><th>model file</th><th>precision</th><th>runtime</th><th>size</th><th>threads</th>"
             "<th>p50 ms</th><th>p90 ms</th><th>peak MB</th><th>file KB</th><th>PSNR vs float</th><th>max err</th>"
             "<th>speed-up vs torch fp32</th></tr>")
    # Every value is escaped: results files and the manifests behind them are input, not markup.
    def text(v) -> str:
        return html.escape("-" if v is None else str(v))

    def f(v, fmt="{:.2f}") -> str:
        return "-" if _num(v) is None else fmt.format(v)

    for r in rows:
        if "error" in r:
            h.append(f"<tr><td>{text(r.get('file'))}</td><td colspan=11>failed: {text(r['error'])}</td></tr>")
            continue
        size = _num(r.get("file_size_bytes"))
        h.append(f"<tr><td>{text(r.get('file'))}</td><td>{text(r.get('precision'))}</td><td>{text(r.get('runtime'))}</td>"
                 f"<td>{text(r.get('size'))}</td><td>{text(r.get('threads'))}</td><td>{f(_get(r, 'latency_ms', 'p50'))}</td>"
                 f"<td>{f(_get(r, 'latency_ms', 'p90'))}</td><td>{f(r.get('peak_rss_mb'), '{:.0f}')}</td>"
                 f"<td>{f(size / 1024 if size else None, '{:.0f}')}</td>"
                 f"<td>{f(r.get('psnr_vs_float'))}</td><td>{f(r.get('max_abs_error'), '{:.4f}')}</td>"
                 f"<td>{f(r.get('speedup_vs_torch_float'))}</td></tr>")
    h.append("</table><h2>Latency</h2>" + f"<img src='{lat}'>")
    if acc:
        h.append("<h2>Accuracy against the float model</h2>" + f"<img src='{acc}'>")
    previews = _previews(rows, base_dirs)
    if previews:
        h.append("<h2>Before / after / difference to the float model (heat map, 0 to 0.05)</h2>")
        for name, before, after, heat in previews:
            h.append(f"<h3>{html.escape(name)}</h3><div class='row'>"
                     f"<figure><img src='{_png(before)}'><figcaption>input</figcaption></figure>"
                     f"<figure><img src='{_png(after)}'><figcaption>output</figcaption></figure>"
                     f"<figure><img src='{_png(heat)}'><figcaption>|output - float|</figcaption></figure></div>")
    h.append("</body></html>")
    write_text(out, "\n".join(h))
    return Path(out)
