#!/usr/bin/env python3
"""The enhancers on real photos: the validation split of ../shared/data, never trained on (the last
15% of each folder by name; see edgeenhance.data.photosets). ``--exposure under`` (default) scores
the low-light models, ``--exposure over`` the over-exposure ones.

Sets:
- real badly exposed frames, no targets: under: SICE part 1 frames with mean luminance < 0.3 and LOL
  our485 low; over: SICE part 1 frames with mean luminance > 0.6. NIQE, LOE, mean luminance, lift
  of the darkest 30% / drop of the brightest 30%, clipped pixels before and after, newly clipped
  pixels, time per image;
- pairs synthesized from held-out well-exposed photos (under: -2..-4 EV with ISO noise; over:
  +1..+2.5 EV, clipped per channel before the tone curve; long side 512): PSNR / SSIM against the photo;
- under: mild pairs, the same photos at -0.5..-1.5 EV (a slightly dark photo, as a camera or a raw
  converter leaves it: what an expert retouch brightens, as in FiveK, whose retouches are not shared
  here): PSNR / SSIM against the photo; a model must bring them closer to it than the input is;
- under: real brackets, the held-out SICE part 1 frames darker than mean luminance 0.3 against the
  exposure fusion of their bracket (edgeenhance.data.brackets): real dark frames with a real target;
- the held-out well-exposed photos themselves: PSNR(output, input) (a camera app runs the model on
  every frame: it should leave good photos nearly alone);
- int8 (models with a grid form): the grid form exported to int8 TFLite (calibrated as `edgeenhance
  export` does by default), run through the deployed pipeline at each photo's full resolution;
  PSNR(int8, float), mean and worst, and the int8 / fp32 file sizes; with ``--calib-train N``, also
  calibrated as `edgeenhance export --calib DIR` does on N real frames of the training split (a third
  each from the real frame folders and the well-exposed photos, evenly spaced by name).

Writes benchmarks/results/real_photos[_over].json, docs/results_real_photos[_over].md and a contact
sheet (input | each method) of eight real frames.

    python benchmarks/real_photos.py --model bilateral --model lime [--model CKPT ...] [--data ../shared/data]
    python benchmarks/real_photos.py --exposure over --model bilateral-over --model student-small --model tonecomp
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

FOLDERS = {"under": ("sice_part1", "lol_our485_low"), "over": ("sice_part1",)}
PAIRS_EV = {"under": (-4.0, -2.0), "over": (1.0, 2.5)}
MILD_EV = {"under": (-1.5, -0.5)}  # slightly dark photos (a stand-in for FiveK's raw renderings; no retouch is shared)
BRACKETS = {"under": "sice_part1"}  # held-out dark frames with their bracket's exposure fusion (real pairs)
SUFFIX = {"under": "", "over": "_over"}


def real_frames(data: Path, n: int | None, exposure: str = "under"):
    """Held-out real frames that are badly exposed the ``exposure`` way (the training filter)."""
    from edgeenhance.data.imageio import read_image
    from edgeenhance.data.photosets import photo_files
    from edgeenhance.train.bilateral import badly_exposed

    out = []
    for sub in FOLDERS[exposure]:
        for f in photo_files(data / "exposure" / sub, "val"):
            img = read_image(f)
            if badly_exposed(img, exposure):
                out.append((f"{sub}/{f.name}", img))
    return out[::max(1, len(out) // n)] if n else out


def held_out_photos(data: Path):
    from edgeenhance.data.imageio import read_image
    from edgeenhance.data.photosets import photo_files

    return [(f"{f.parent.name}/{f.name}", read_image(f)) for f in photo_files(data / "photos", "val")]


def training_calibration(data: Path, n: int, exposure: str, folder: Path) -> Path:
    """``folder`` filled with links to ``n`` training-split frames (never validation ones): real badly
    exposed frames and well-exposed photos in equal shares, evenly spaced by name."""
    from edgeenhance.data.photosets import photo_files

    sets = [photo_files(data / "exposure" / sub, "train") for sub in FOLDERS[exposure]] + [
        photo_files(data / "photos", "train")]
    each = -(-n // len(sets))
    for i in range(each):
        for j, files in enumerate(sets):
            f = files[i * len(files) // each]
            (folder / f"{i:03d}_{j}_{f.name}").symlink_to(f.resolve())
    return folder


def int8_fidelity(model, photos, threads: int, spec: str | None = None, calib: str = "synthetic",
                  calib_images: int = 32) -> dict:
    """PSNR(int8 TFLite grid pipeline, float deployed path) per photo at full resolution. With a zoo
    ``spec``, the export is what `edgeenhance export --model SPEC --int8 [--calib CALIB]` writes (from
    the model's int8-tuned weights where it ships them), still compared with the float model."""
    from edgeenhance.evaluate import fast_enhance
    from edgeenhance.export import Exporter, ExportOptions
    from edgeenhance.export.manifest import find_entry
    from edgeenhance.metrics import psnr
    from edgeenhance.runtime.engines import open_engine
    from edgeenhance.runtime.pipeline import make_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        opts = ExportOptions(form="grid", progress=False, calib=calib, calib_images=calib_images)
        manifest = Exporter(spec or model, opts, log=lambda *_: None).export(
            ["tflite"], ["fp32", "int8"], tmp)
        files = {f["precision"]: Path(tmp) / f["file"] for f in manifest["files"]}
        path = files["int8"]
        pipe = make_pipeline(open_engine(path, threads), find_entry(path))
        size, fp32_size = path.stat().st_size, files["fp32"].stat().st_size
        scores = {name: min(psnr(pipe(img), fast_enhance(model, img)), 120.0) for name, img in photos}
    worst = min(scores, key=scores.get)
    return {"mean_db": float(np.mean(list(scores.values()))), "worst_db": scores[worst], "worst_photo": worst,
            "photos": len(scores), "file_bytes": size, "fp32_file_bytes": fp32_size,
            "calibration": calib if calib == "synthetic" else f"{calib_images} real training-split frames"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, help="zoo name or checkpoint (repeat)")
    p.add_argument("--label", action="append", help="display name per --model (default: the spec)")
    p.add_argument("--exposure", choices=["under", "over"], default="under",
                   help="low-light models on dark frames (under, default) or over-exposure models on bright ones")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--n-dark", type=int, default=None, help="subsample the real frames to about N (default: all)")
    p.add_argument("--no-int8", action="store_true", help="skip the int8 fidelity check")
    p.add_argument("--calib-train", type=int, default=0, metavar="N",
                   help="also measure int8 calibrated on N real training-split frames (default: only rendered)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, help="default benchmarks/results/real_photos[_over].json")
    p.add_argument("--sheet", type=Path, help="default docs/real_photos[_over]_sheet.png")
    p.add_argument("--doc", type=Path, help="default docs/results_real_photos[_over].md")
    a = p.parse_args(argv)
    sfx = SUFFIX[a.exposure]
    a.out = a.out or ROOT / "benchmarks" / "results" / f"real_photos{sfx}.json"
    a.sheet = a.sheet or ROOT / "docs" / f"real_photos{sfx}_sheet.png"
    a.doc = a.doc or ROOT / "docs" / f"results_real_photos{sfx}.md"

    import torch

    from edgeenhance.data.brackets import bracket_pairs
    from edgeenhance.data.photosets import heldout_pairs
    from edgeenhance.evaluate import evaluate, evaluate_input, evaluate_noref, evaluate_noref_input, fast_enhance
    from edgeenhance.fileio import write_json, write_text
    from edgeenhance.metrics import psnr
    from edgeenhance.models.registry import ZOO, deploy_forms, is_classical, load_model
    from edgeenhance.sheet import contact_sheet
    from render_results import render_real_photos

    torch.set_num_threads(a.threads)
    labels = a.label or a.model
    models = {lab: load_model(m) for lab, m in zip(labels, a.model)}
    real = "dark" if a.exposure == "under" else "bright"
    dark = real_frames(a.data, a.n_dark, a.exposure)
    photos = held_out_photos(a.data)
    photos8 = [(img * 255).round().astype(np.uint8) for _, img in photos]
    pairs = heldout_pairs(photos8, kind=a.exposure, ev_range=PAIRS_EV[a.exposure])
    mild = heldout_pairs(photos8, kind=a.exposure, ev_range=MILD_EV[a.exposure]) if a.exposure in MILD_EV else []
    brackets = [(x.astype(np.float32) / 255, y.astype(np.float32) / 255) for x, y in
                bracket_pairs(a.data / "exposure" / BRACKETS[a.exposure], "val")] if a.exposure in BRACKETS else []
    print(f"{len(dark)} real {real} frames, {len(pairs)} synthesized pairs, {len(brackets)} real bracket pairs, "
          f"{len(photos)} well-exposed photos")

    sheet_idx = np.linspace(0, len(dark) - 1, min(8, len(dark))).astype(int)
    rows = {"input": {"dark": evaluate_noref_input([d for _, d in dark]), "pairs": evaluate_input(pairs),
                      "well_exposed": {"psnr_vs_input": None}}}
    paired = {k: v for k, v in (("mild", mild), ("brackets", brackets)) if v}
    for k, v in paired.items():
        rows["input"][k] = evaluate_input(v)
    sheet_cols = {"input": [dark[i][1] for i in sheet_idx]}
    for (lab, m), spec in zip(models.items(), a.model):
        t = time.time()
        # warm-up, once per frame size: numba compiles the slicing pass on first use, and oneDNN builds its
        # kernels per input shape (without this the first model timed paid for them: 2x the ms/img of the next)
        for img in {d.shape: d for _, d in dark}.values():
            fast_enhance(m, img)
        r = evaluate_noref(m, [d for _, d in dark], keep_outputs=True, progress=True, desc=f"{lab} {real}")
        outs = r.pop("outputs")
        sheet_cols[lab] = [outs[i] for i in sheet_idx]
        same = [psnr(np.clip(fast_enhance(m, img), 0, 1), img) for _, img in photos]
        rows[lab] = {"dark": r, "pairs": evaluate(m, pairs, progress=True, desc=f"{lab} pairs"),
                     "well_exposed": {"psnr_vs_input": float(np.mean(same)), "worst": float(np.min(same))}}
        for k, v in paired.items():
            rows[lab][k] = evaluate(m, v, progress=True, desc=f"{lab} {k}")
        if not a.no_int8 and not is_classical(m) and "grid" in deploy_forms(m):
            zoo = spec if spec in ZOO else None
            rows[lab]["int8"] = int8_fidelity(m, dark + photos, a.threads, zoo)
            if a.calib_train:
                with tempfile.TemporaryDirectory() as tmp:
                    calib = training_calibration(a.data, a.calib_train, a.exposure, Path(tmp))
                    rows[lab]["int8_calib"] = int8_fidelity(m, dark + photos, a.threads, zoo, str(calib), a.calib_train)
        print(f"{lab}: {time.time() - t:.0f} s")

    contact_sheet([[sheet_cols[c][k] for c in sheet_cols] for k in range(len(sheet_idx))], list(sheet_cols), a.sheet)
    what = ("real low-light frames: SICE part 1 (mean luminance < 0.3) + LOL our485 low" if a.exposure == "under" else
            "real over-exposed frames: SICE part 1 (mean luminance > 0.6)")
    ev = PAIRS_EV[a.exposure]
    pairs_what = (f"pairs synthesized from held-out photos, {ev[0]:+g}..{ev[1]:+g} EV"
                  + (" with ISO noise" if a.exposure == "under" else ", clipped per channel before the tone curve")
                  + ", long side 512")
    write_json(a.out, {"data": "../shared/data (validation split)", "exposure": a.exposure, "threads": a.threads,
                       "sets": {"dark": {"n": len(dark), "what": what},
                                "pairs": {"n": len(pairs), "what": pairs_what},
                                **({"mild": {"n": len(mild), "what": "mild pairs: the same photos at {:+g}..{:+g} EV "
                                             "with ISO noise, long side 512 (slightly dark photos, as FiveK's inputs; "
                                             "no expert retouch is shared)".format(*MILD_EV[a.exposure])}} if mild else {}),
                                **({"brackets": {"n": len(brackets), "what": "real brackets: held-out SICE part 1 frames "
                                                 "darker than mean luminance 0.3 against the exposure fusion of their "
                                                 "bracket (edgeenhance.data.brackets)"}} if brackets else {}),
                                "well_exposed": {"n": len(photos), "what": "held-out well-exposed photos: PSNR(output, input)"}},
                       "models": dict(zip(labels, a.model)), "results": rows})
    results = "\n".join(render_real_photos(json.loads(a.out.read_text())))
    print(results)
    title = "Low-light models on real photos" if a.exposure == "under" else "Over-exposure models on real photos"
    write_text(a.doc, f"# {title}\n\nGenerated by `benchmarks/real_photos.py{' --exposure over' if sfx else ''}` from "
                      f"`{a.out.relative_to(ROOT) if a.out.is_relative_to(ROOT) else a.out}` (validation split of "
                      f"../shared/data, never trained on; {a.threads} threads).\n\n{results}\n"
                      f"Models: {', '.join(f'{k} = `{v}`' for k, v in zip(labels, a.model))}.\n\n"
                      f"![contact sheet: input and each method on eight {real} frames]({a.sheet.name})\n")
    print(f"wrote {a.out}, {a.doc} and {a.sheet}")


if __name__ == "__main__":
    main()
