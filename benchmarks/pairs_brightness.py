#!/usr/bin/env python3
"""How much of a low-light model's error on the synthesized pairs is brightness, and whether a
brightness rule that knows only the photo's mean luminance could meet the pairs' PSNR target and the
real dark frames' lift target at once.

Each model's outputs are scaled by a gain k (clip(k * output)): on the held-out pairs of
`benchmarks/real_photos.py` (-2..-4 EV, with noise) it reports the PSNR at k = 1, with the best
single k for all pairs, and with the best k for each pair (an oracle that knows each photo's
brightness); then the best rule k(m), m the input's mean luminance (piecewise linear in log m, knots
at 0.02 .. 0.3, fitted by coordinate ascent), without a constraint and with the real dark frames'
targets held (darkest-30% lift >= 0.15, newly clipped <= 1%, on the 151 held-out SICE and LOL frames).
A rule is what a network could learn from its global path: if the best rule meets the pairs' target
only by missing the lift, brightness conditioned on the input's level cannot serve both sets.

Writes benchmarks/results/pairs_brightness.json.

    python benchmarks/pairs_brightness.py [--model bilateral [--label NAME] ...] [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GAINS = np.exp(np.linspace(np.log(0.5), np.log(2.0), 41))  # k = 1 is index 20
KNOTS = np.log([0.02, 0.05, 0.08, 0.12, 0.18, 0.3])  # rule knots in log mean luminance
LIFT, CLIP = 0.15, 0.01  # issue 15's targets on real dark frames


def gain_tables(model, pairs, frames) -> dict:
    """Per image and gain: PSNR of each pair, lift and newly clipped fraction of each real frame."""
    from tqdm import tqdm

    from edgeenhance.evaluate import fast_enhance
    from edgeenhance.metrics import psnr
    from edgeenhance.noref import dark_lift, mean_luminance, newly_clipped

    ps, pm, lf, cl, fm = [], [], [], [], []
    for x, y in tqdm(pairs, desc="pairs", unit="img"):
        o = np.clip(fast_enhance(model, x), 0, 1)
        ps.append([psnr(np.clip(o * k, 0, 1), y) for k in GAINS])
        pm.append(mean_luminance(x))
    for x in tqdm(frames, desc="real dark frames", unit="img"):
        o = np.clip(fast_enhance(model, x), 0, 1)
        outs = [np.clip(o * k, 0, 1) for k in GAINS]
        lf.append([dark_lift(x, v) for v in outs])
        cl.append([newly_clipped(x, v) for v in outs])
        fm.append(mean_luminance(x))
    return {k: np.asarray(v, np.float64) for k, v in
            dict(psnr=ps, pair_m=pm, lift=lf, clipped=cl, frame_m=fm).items()}


def at(table: np.ndarray, m: np.ndarray, knots_log_k: np.ndarray) -> np.ndarray:
    """Each row of ``table`` (one image, one value per gain) read at that image's rule gain k(m)."""
    lk = np.log(GAINS)
    idx = (np.interp(np.log(m), KNOTS, knots_log_k) - lk[0]) / (lk[1] - lk[0])
    i0 = np.clip(np.floor(idx).astype(int), 0, len(GAINS) - 2)
    f = np.clip(idx - i0, 0.0, 1.0)
    rows = np.arange(len(m))
    return table[rows, i0] * (1 - f) + table[rows, i0 + 1] * f


def rule_scores(t: dict, v: np.ndarray) -> tuple[float, float, float]:
    return (float(at(t["psnr"], t["pair_m"], v).mean()), float(at(t["lift"], t["frame_m"], v).mean()),
            float(at(t["clipped"], t["frame_m"], v).mean()))


def best_rule(t: dict, constrained: bool) -> dict:
    """Coordinate ascent on the knots' log gains; with ``constrained``, a target missed costs 1 dB per 0.0001."""
    def objective(v):
        ps, lift, clip = rule_scores(t, v)
        miss = max(0.0, LIFT - lift) + max(0.0, clip - CLIP)
        return ps - (1e4 * miss if constrained else 0.0)

    lo, hi = np.log(GAINS[0]), np.log(GAINS[-1])
    v = np.zeros(len(KNOTS))
    for step in (0.3, 0.1, 0.03, 0.01):
        for _ in range(10):
            for j in range(len(v)):
                cands = np.clip(v[j] + np.linspace(-step, step, 13), lo, hi)
                v[j] = max(cands, key=lambda c: objective(np.r_[v[:j], c, v[j + 1:]]))
    ps, lift, clip = rule_scores(t, v)
    return {"pairs_psnr": ps, "lift": lift, "new_clipped": clip,
            "gain_at": {f"{m:.2f}": float(np.exp(g)) for m, g in zip(np.exp(KNOTS), v)}}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", help="zoo name or checkpoint (repeat; default bilateral)")
    p.add_argument("--label", action="append", help="display name per --model (default: the spec)")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pairs_brightness.json")
    a = p.parse_args(argv)

    import torch

    from real_photos import PAIRS_EV, held_out_photos, real_frames

    from edgeenhance.data.photosets import heldout_pairs
    from edgeenhance.errors import UserError
    from edgeenhance.fileio import write_json
    from edgeenhance.models.registry import load_model

    torch.set_num_threads(a.threads)
    if not (a.data / "photos").is_dir():
        p.error(f"{a.data} has no photos/ folder: pass --data, the shared data folder (see its README)")
    specs = a.model or ["bilateral"]
    labels = a.label or specs
    if len(labels) != len(specs):
        p.error(f"{len(labels)} --label for {len(specs)} --model: give one per model, or none")
    try:
        models = {lab: load_model(spec) for lab, spec in zip(labels, specs)}
    except UserError as e:
        p.error(str(e))
    photos8 = [(img * 255).round().astype(np.uint8) for _, img in held_out_photos(a.data)]
    pairs = heldout_pairs(photos8, kind="under", ev_range=PAIRS_EV["under"])
    frames = [img for _, img in real_frames(a.data, None)]
    results = {}
    for spec, model in models.items():
        t = gain_tables(model, pairs, frames)
        one = int(np.argmin(np.abs(GAINS - 1.0)))
        single = int(np.argmax(t["psnr"].mean(axis=0)))
        r = results[spec] = {
            "as_is": {"pairs_psnr": float(t["psnr"][:, one].mean()), "lift": float(t["lift"][:, one].mean()),
                      "new_clipped": float(t["clipped"][:, one].mean())},
            "best_single_gain": {"gain": float(GAINS[single]), "pairs_psnr": float(t["psnr"][:, single].mean())},
            "best_gain_per_pair": {"pairs_psnr": float(t["psnr"].max(axis=1).mean()),
                                   "gains": [float(GAINS[i]) for i in t["psnr"].argmax(axis=1)]},
            "best_rule": best_rule(t, constrained=False),
            "best_rule_with_targets": best_rule(t, constrained=True)}
        print(f"{spec}: as is {r['as_is']['pairs_psnr']:.2f} dB (lift {r['as_is']['lift']:.3f}); best gain per pair "
              f"{r['best_gain_per_pair']['pairs_psnr']:.2f} dB; best rule k(m) {r['best_rule']['pairs_psnr']:.2f} dB "
              f"(lift {r['best_rule']['lift']:.3f}); with lift >= {LIFT}, clipped <= {CLIP:.0%}: "
              f"{r['best_rule_with_targets']['pairs_psnr']:.2f} dB (lift {r['best_rule_with_targets']['lift']:.3f})")
    write_json(a.out, {"benchmark": "pairs_brightness", "date": datetime.date.today().isoformat(),
                       "data": "../shared/data (validation split)",
                       "sets": {"pairs": f"{len(pairs)} pairs synthesized from held-out photos, -4..-2 EV with ISO "
                                         "noise, long side 512",
                                "dark": f"{len(frames)} held-out real dark frames (SICE part 1 < 0.3, LOL our485 low)"},
                       "rule": "gain k(m) on the output, m = input mean luminance, piecewise linear in log m",
                       "targets": {"lift": LIFT, "new_clipped": CLIP}, "threads": a.threads,
                       "models": dict(zip(labels, specs)), "results": results})
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
