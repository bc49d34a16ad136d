#!/usr/bin/env python3
"""How the shipped bilateral weights (edgeenhance/models/weights/bilateral.safetensors) are made,
from the real photos of ../shared/data (see its README) on a CPU:

- well-exposed photos (photos/: BSD100, CBSD68, Urban100, Sun-Hays 80), exposure errors
  synthesized on the fly (edgeenhance.data.exposure: -1..-5 EV, ISO noise, clipping before the
  tone curve, white-balance error, JPEG; a tenth of the samples well exposed, to be left alone);
  supervised DeepUPE losses against the photo;
- real dark frames without targets (SICE part 1 frames darker than mean luminance 0.3, LOL our485
  low): zero-reference losses at weight 0.1, exposure level 0.5 (at Zero-DCE's 0.6 the model made the
  held-out pairs 17% brighter than their photos and lost 3 dB), grey-world weight 1;
- a penalty on pushing pixels past white that were not white in the input (both sources).

The last 15% of every folder by name is held out. The checkpoint with the best PSNR on pairs
synthesized from held-out photos (-2..-4 EV, with noise) is kept.

    python scripts/train_bilateral.py [--data ../shared/data] [--out runs/bilateral] [--steps N] [--ship]

Batch 8, 192x192 crops (windows between 192 px and the photo's short side, scaled down), Adam 1e-3 with
cosine decay, 1,000 steps. Writes OUT/best.safetensors; with --ship it is copied over the shipped weights.
Resumable: run it again with --resume after a kill. About 20-30 minutes on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RECIPE = dict(steps=1000, batch=8, crop=192, lr=1e-3, val_images=24, val_every=250, zero_ref_weight=0.1,
              zero_ref_level=0.5, workers=1)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the shared data folder")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bilateral", help="run folder (default runs/bilateral)")
    p.add_argument("--steps", type=int, default=RECIPE["steps"], help=f"default {RECIPE['steps']}")
    p.add_argument("--render-mix", type=float, default=0.0, help="fraction of rendered pairs per batch (default 0)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.safetensors")
    p.add_argument("--ship", action="store_true", help="copy OUT/best.safetensors over the shipped weights")
    a = p.parse_args(argv)

    from edgeenhance.models.registry import WEIGHTS_DIR
    from edgeenhance.train.bilateral import train_bilateral

    exposure = a.data / "exposure"
    r = train_bilateral(a.out, data=str(a.data / "photos"), zero_ref=[exposure / "sice_part1", exposure / "lol_our485_low"],
                        resume=a.resume, render_mix=a.render_mix, **{**RECIPE, "steps": a.steps})
    if r["stopped"]:  # Ctrl-C or SIGTERM: the state is saved, nothing is finished to ship
        sys.exit(128 + r["signum"])
    print(f"best: {r['best']}")
    if a.ship:
        shutil.copyfile(a.out / "best.safetensors", WEIGHTS_DIR / "bilateral.safetensors")
        print(f"shipped -> {WEIGHTS_DIR / 'bilateral.safetensors'}")


if __name__ == "__main__":
    main()
