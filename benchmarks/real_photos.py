#!/usr/bin/env python3
"""The low-light models on real photos: the validation split of ../shared/data, never trained on
(the last 15% of each folder by name; see edgeenhance.data.photosets).

Sets:
- real dark frames (SICE part 1 frames with mean luminance < 0.3, LOL our485 low): no targets;
  NIQE, LOE, mean luminance, lift of the darkest 30%, newly clipped pixels, time per image;
- pairs synthesized from held-out well-exposed photos at -2..-4 EV with ISO noise (long side 512):
  PSNR / SSIM against the photo;
- the held-out well-exposed photos themselves: PSNR(output, input) (a camera app runs the model on
  every frame: it should leave good photos nearly alone);
- int8: the grid form exported to int8 TFLite (calibrated as `edgeenhance export` does by default),
  run through the deployed pipeline at each photo's full resolution; PSNR(int8, float), mean and worst.

Writes benchmarks/results/real_photos.json and a contact sheet (input | each method) of eight dark frames.

    python benchmarks/real_photos.py --model bilateral --model lime [--model CKPT ...] [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DARK_MAX = 0.3


def dark_frames(data: Path, n: int | None):
    from edgeenhance.data.imageio import read_image
    from edgeenhance.data.photosets import photo_files
    from edgeenhance.noref import mean_luminance

    out = []
    for sub in ("sice_part1", "lol_our485_low"):
        for f in photo_files(data / "exposure" / sub, "val"):
            img = read_image(f)
            if mean_luminance(img) < DARK_MAX:
                out.append((f"{sub}/{f.name}", img))
    return out[::max(1, len(out) // n)] if n else out


def held_out_photos(data: Path):
    from edgeenhance.data.imageio import read_image
    from edgeenhance.data.photosets import photo_files

    return [(f"{f.parent.name}/{f.name}", read_image(f)) for f in photo_files(data / "photos", "val")]


def int8_fidelity(model, photos, threads: int) -> dict:
    """PSNR(int8 TFLite grid pipeline, float deployed path) per photo at full resolution."""
    from edgeenhance.evaluate import fast_enhance
    from edgeenhance.export.exporter import Exporter
    from edgeenhance.export.manifest import find_entry
    from edgeenhance.metrics import psnr
    from edgeenhance.runtime.engines import open_engine
    from edgeenhance.runtime.pipeline import make_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        manifest = Exporter(model, form="grid", progress=False, log=lambda *_: None).export(["tflite"], ["int8"], tmp)
        path = Path(tmp) / manifest["files"][0]["file"]
        entry = find_entry(path)
        pipe = make_pipeline(open_engine(path, threads), entry)
        size = path.stat().st_size
        scores = {name: min(psnr(pipe(img), fast_enhance(model, img)), 120.0) for name, img in photos}
    worst = min(scores, key=scores.get)
    return {"mean_db": float(np.mean(list(scores.values()))), "worst_db": scores[worst], "worst_photo": worst,
            "photos": len(scores), "file_bytes": size}


def table(rows: dict) -> str:
    """The results as a Markdown table (also what docs/results_real_photos.md shows)."""
    lines = ["| method | NIQE (dark) | LOE | mean lum | darkest-30% lift | newly clipped | PSNR / SSIM (pairs) "
             "| PSNR(out, in) well-exposed | ms/img (dark) |", "|---|---|---|---|---|---|---|---|---|"]
    for lab, r in rows.items():
        d, p, w = r["dark"], r["pairs"], r["well_exposed"]
        keep = f"{w['psnr_vs_input']:.2f}" if w.get("psnr_vs_input") else "-"
        lines.append(f"| {lab} | {d['niqe']:.2f} | {d['loe']:.0f} | {d['mean_lum']:.3f} | {d['dark_lift']:+.3f} | "
                     f"{100 * d['new_clipped']:.2f}% | {p['psnr']:.2f} / {p['ssim']:.3f} | {keep} | "
                     f"{1000 * d['sec_per_image']:.1f} |")
    for lab, r in rows.items():
        if "int8" in r:
            i = r["int8"]
            lines.append(f"\n{lab}: int8 TFLite grid form vs float, each photo at full resolution: mean {i['mean_db']:.2f} dB, "
                         f"worst {i['worst_db']:.2f} dB ({i['worst_photo']}; {i['photos']} photos)")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, help="zoo name or checkpoint (repeat)")
    p.add_argument("--label", action="append", help="display name per --model (default: the spec)")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--n-dark", type=int, default=None, help="subsample the dark frames to about N (default: all)")
    p.add_argument("--no-int8", action="store_true", help="skip the int8 fidelity check")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "real_photos.json")
    p.add_argument("--sheet", type=Path, default=ROOT / "docs" / "real_photos_sheet.png")
    p.add_argument("--doc", type=Path, default=ROOT / "docs" / "results_real_photos.md")
    a = p.parse_args(argv)

    import torch

    from edgeenhance.data.photosets import heldout_pairs
    from edgeenhance.evaluate import evaluate, evaluate_input, evaluate_noref, evaluate_noref_input, fast_enhance
    from edgeenhance.fileio import write_json, write_text
    from edgeenhance.metrics import psnr
    from edgeenhance.models.registry import load_model
    from edgeenhance.sheet import contact_sheet

    torch.set_num_threads(a.threads)
    labels = a.label or a.model
    models = {lab: load_model(m) for lab, m in zip(labels, a.model)}
    dark = dark_frames(a.data, a.n_dark)
    photos = held_out_photos(a.data)
    pairs = heldout_pairs([(img * 255).round().astype(np.uint8) for _, img in photos])
    print(f"{len(dark)} real dark frames, {len(pairs)} synthesized pairs, {len(photos)} well-exposed photos")

    sheet_idx = np.linspace(0, len(dark) - 1, min(8, len(dark))).astype(int)
    rows = {"input": {"dark": evaluate_noref_input([d for _, d in dark]), "pairs": evaluate_input(pairs),
                      "well_exposed": {"psnr_vs_input": None}}}
    sheet_cols = {"input": [dark[i][1] for i in sheet_idx]}
    for lab, m in models.items():
        t = time.time()
        fast_enhance(m, dark[0][1])  # warm-up: numba compiles the slicing pass on first use
        r = evaluate_noref(m, [d for _, d in dark], keep_outputs=True, progress=True, desc=f"{lab} dark")
        outs = r.pop("outputs")
        sheet_cols[lab] = [outs[i] for i in sheet_idx]
        same = [psnr(np.clip(fast_enhance(m, img), 0, 1), img) for _, img in photos]
        rows[lab] = {"dark": r, "pairs": evaluate(m, pairs, progress=True, desc=f"{lab} pairs"),
                     "well_exposed": {"psnr_vs_input": float(np.mean(same)), "worst": float(np.min(same))}}
        if not a.no_int8 and getattr(m, "family", None) == "bilateral":
            rows[lab]["int8"] = int8_fidelity(m, dark + photos, a.threads)
        print(f"{lab}: {time.time() - t:.0f} s")

    print(table(rows))
    contact_sheet([[sheet_cols[c][k] for c in sheet_cols] for k in range(len(sheet_idx))], list(sheet_cols), a.sheet)
    write_json(a.out, {"data": "../shared/data (validation split)", "threads": a.threads, "sets": {
        "dark": {"n": len(dark), "what": "real low-light frames: SICE part 1 (mean luminance < 0.3) + LOL our485 low"},
        "pairs": {"n": len(pairs), "what": "pairs synthesized from held-out photos, -2..-4 EV with ISO noise, long side 512"},
        "well_exposed": {"n": len(photos), "what": "held-out well-exposed photos: PSNR(output, input)"}},
        "models": dict(zip(labels, a.model)), "results": rows})
    sets = "\n".join(f"- {k}: {v['n']} images, {v['what']}" for k, v in json.loads(a.out.read_text())["sets"].items())
    write_text(a.doc, f"# Low-light models on real photos\n\nGenerated by `benchmarks/real_photos.py` from "
                      f"`{a.out.relative_to(ROOT) if a.out.is_relative_to(ROOT) else a.out}` (validation split of "
                      f"../shared/data, never trained on; {a.threads} threads).\n\n{sets}\n\n{table(rows)}\n\n"
                      f"Models: {', '.join(f'{k} = `{v}`' for k, v in zip(labels, a.model))}.\n\n"
                      f"![contact sheet: input and each method on eight dark frames]({a.sheet.name})\n")
    print(f"wrote {a.out}, {a.doc} and {a.sheet}")


if __name__ == "__main__":
    main()
