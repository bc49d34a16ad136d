#!/usr/bin/env python3
"""How the shipped bilateral weights are made from the real photos of ../shared/data (see its
README) on a CPU: ``bilateral.safetensors`` (low light, the default) and, with ``--exposure over``,
``bilateral_over.safetensors`` (over-exposed photos; see the end of this text).

Low light:

- well-exposed photos (photos/: BSD100, CBSD68, Urban100, Sun-Hays 80), exposure errors
  synthesized on the fly (edgeenhance.data.exposure: -1..-6 EV, ISO noise, clipping before the
  tone curve, white-balance error, JPEG; a tenth of the samples well exposed, to be left alone);
  supervised DeepUPE losses against the photo;
- real dark frames without targets (SICE part 1 frames darker than mean luminance 0.3, LOL our485
  low): zero-reference losses at weight 0.1, exposure level 0.55 (at 0.5, 1,000 steps, the darkest 30%
  of held-out real dark frames were lifted by 0.140, short of the 0.15 target; at Zero-DCE's 0.6 the
  model made the held-out pairs 17% brighter than their photos and lost 3 dB), grey-world weight 1;
  only on crops darker than mean luminance 0.1 (night and LOL frames) or whose brightest 2% are above
  0.7 (a dim room with a lit window): on every crop they brightened the synthesized pairs past their
  photos (19.9 dB on the benchmark's pairs, lift 0.176; these crops, 2,000 steps: 20.8 dB, lift 0.150);
- a penalty (weight 8) on pushing pixels past white that were not white in the input (both sources);
- half the pairs with highlights brighter than the photo's white (--highlights 0.5: lamps, windows
  and sky stay bright in the dark copy, as in a real night frame);
- a moving average of the weights (--ema 0.998, about the last 500 steps) is validated and shipped: the
  supervised and zero-reference terms pull the trained weights back and forth from step to step, and
  the average's int8 file is far more faithful (held-out real photos, rendered calibration: worst
  PSNR(int8, float) 47.8 dB against 37.9 without both, for the recipes of git 02e7452 and 77a4d32;
  for the 4,000-step run of this recipe 45.4 dB with the output op's weights kept in float, 35.6 with
  them in int8; for stage 1 below (8,000 steps) 42.5 dB, for the shipped stage 2 41.8 dB).

The last 15% of every folder by name is held out. Stage 1 (the above, 8,000 steps) ends at 21.55 dB on
the run's validation pairs (synthesized from held-out photos, -2..-4 EV, with noise), lift 0.184, newly
clipped 0.50%: the pairs' PSNR and the lift of real dark frames pull against each other, and 4,000 more
steps of it barely moved the pairs. Stage 2 fine-tunes its final weights (a fresh Adam at 3e-4, cosine
decay, a fresh average) for 2,000 steps with everything as before but the exposure errors, -1..-5 EV
instead of -6, and the zero-reference weight, 0.075 instead of 0.1: the darkest samples, which teach the
model to lift a frame as dark as LOL's, have been learned, and without them a dark but not black input is
taken less far. Its checkpoint with the best validation PSNR (OUT/tune/best.safetensors) is shipped:
22.52 dB at step 1,250, lift 0.177, newly clipped 0.36% (the end: 22.31 dB, 0.178). Stage 2 with weight
0.1 peaked at 22.42 dB (lift 0.183), with 0.05 at 22.61 dB (lift 0.164: too close to the 0.15 target on
the benchmark's frames), at -6 EV at 21.84 dB; trained from the start at -1..-5 EV (2,000 steps, an
earlier recipe) the model lifted real dark frames less and lost on the pairs.

    python scripts/train_bilateral.py [--data ../shared/data] [--out runs/bilateral] [--steps N] [--ship]
    python scripts/train_bilateral.py --stage1 runs/bilateral/final.safetensors --out runs/tune2   # stage 2 only

Batch 8, 192x192 crops (windows between 192 px and the photo's short side, scaled down), Adam 1e-3 with
cosine decay, 8,000 steps, then stage 2 into OUT/tune. Writes OUT/final.safetensors and
OUT/tune/{final,best}.safetensors (best: by the pairs' PSNR); --ship copies OUT/tune/best.safetensors
over the shipped weights. Resumable: run it again with --resume after a kill (a finished stage 1 is not
rerun). Stage 1 takes about 80 minutes alone on 2 CPU cores, stage 2 about 15 with one torch thread
(longer while other jobs share the cores: several runs at once on 2 cores were 3x slower in all).

Over-exposure (``--exposure over``): the same well-exposed photos, over-exposed on the fly by +1..+3 EV
(clipped per channel at sensor white in linear light, before the tone curve: highlights lose detail
and shift hue as on a real sensor), a quarter of the samples left well exposed; supervised losses
only (no real over-exposed photo has a target). The guide is linear (clamp(w . rgb + b, 0, 1), from
luminance) rather than a small MLP with a sigmoid: no exp per pixel, so the 1080p slicing pass fits a
camera preview's budget. The real over-exposed frames of SICE part 1 (mean luminance above 0.6) are
scored at each validation (brightest-30% drop, newly clipped pixels) but not trained on. The checkpoint
with the best PSNR on held-out pairs (photos synthesized at +1..+2.5 EV, and a third as many other
held-out photos left well exposed, whose target is themselves) is kept.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgeenhance.train.configs import BilateralConfig  # noqa: E402  (after the path is set)

RECIPE = BilateralConfig(steps=8000, batch=8, crop=192, lr=1e-3, val_images=24, val_every=250, zero_ref_weight=0.1,
                         zero_ref_level=0.55, zero_ref_below=0.1, zero_ref_highlights=0.7, clip_weight=8.0,
                         highlights=0.5, ema=0.998, workers=1)
# the over-exposure model: a linear guide (no exp per pixel: fits a 1080p preview's frame budget), real bright
# frames for validation only (zero-reference weight 0)
RECIPES = {"under": RECIPE, "over": replace(RECIPE, steps=2000, zero_ref_level=0.5, zero_ref_weight=0.0, highlights=0.0,
                                           ema=0.0, zero_ref_below=1.0, zero_ref_highlights=1.0, clip_weight=2.0,
                                           model_config={"guide_hidden": 0})}
# low light, stage 2: the finished stage 1 fine-tuned with a restarted, lower schedule and a fresh average, on
# exposure errors of -1..-5 EV instead of -6 and with less weight on the zero-reference losses (see the text above)
TUNE = {"under": dict(steps=2000, lr=3e-4, ev_range=(-5.0, -1.0), zero_ref_weight=0.075), "over": None}
SHIPPED = {"under": "bilateral.safetensors", "over": "bilateral_over.safetensors"}
SHIP_FROM = {"under": "final.safetensors", "over": "best.safetensors"}  # the checkpoint shipped without stage 2
SHIP_TUNED = "tune/best.safetensors"  # ... and of a run with one


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the shared data folder")
    p.add_argument("--exposure", choices=["under", "over"], default="under",
                   help="which model: low light (under, default) or over-exposed photos (over)")
    p.add_argument("--out", type=Path, help="run folder (default runs/bilateral or runs/bilateral-over)")
    p.add_argument("--steps", type=int, help=f"default {RECIPES['under'].steps} (under), {RECIPES['over'].steps} (over)")
    p.add_argument("--render-mix", type=float, default=0.0, help="fraction of rendered pairs per batch (default 0)")
    p.add_argument("--teacher", type=Path, help="over: a CycleGAN teacher (scripts/train_cyclegan_real.py) whose "
                   "outputs on the real over-exposed frames are their targets (default: none)")
    p.add_argument("--tune-steps", type=int, help=f"under: steps of stage 2 (default {TUNE['under']['steps']}; "
                   "0: none, ship stage 1)")
    p.add_argument("--stage1", type=Path, metavar="WEIGHTS",
                   help="under: skip stage 1 and fine-tune these weights (e.g. an earlier stage 1's final.safetensors)")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/last.safetensors (stage 1) or OUT/tune/last.safetensors (stage 2); "
                        "a finished stage 1 (OUT/final.safetensors) is not run again")
    p.add_argument("--ship", action="store_true",
                   help="copy the run's weights over the shipped ones (under: OUT/tune/best.safetensors, or "
                        "OUT/final.safetensors with --tune-steps 0; "
                        "over: OUT/best.safetensors)")
    a = p.parse_args(argv)

    from edgeenhance.models.registry import WEIGHTS_DIR

    recipe = RECIPES[a.exposure]
    out = a.out or ROOT / "runs" / ("bilateral" if a.exposure == "under" else "bilateral-over")
    real = a.data / "exposure"
    zero_ref = (real / "sice_part1", real / "lol_our485_low") if a.exposure == "under" else (real / "sice_part1",)
    config = replace(recipe, data=str(a.data / "photos"), zero_ref=zero_ref, exposure=a.exposure, resume=a.resume,
                     teacher=a.teacher, render_mix=a.render_mix, steps=a.steps or recipe.steps)
    tune = TUNE[a.exposure]
    if (a.stage1 is not None or a.tune_steps is not None) and tune is None:
        _fail(f"--stage1 and --tune-steps are for the low-light model (no stage 2 with --exposure {a.exposure})")
    if a.tune_steps is not None:
        tune = dict(tune, steps=a.tune_steps) if a.tune_steps > 0 else None
    if a.stage1 is not None and tune is None:
        _fail("--stage1 needs a stage 2 (--tune-steps > 0)")
    if a.stage1 is not None and not a.stage1.is_file():
        _fail(f"--stage1: no such file: {a.stage1}")
    ship_from = out / (SHIP_TUNED if tune is not None else SHIP_FROM[a.exposure])
    stage1 = a.stage1 or out / "final.safetensors"
    if a.stage1 is None and not (a.resume and stage1.is_file()):
        _run(out, config)
    if tune is not None:
        print(f"stage 2: fine-tuning {stage1} -> {out / 'tune'}")
        _run(out / "tune", replace(config, init=str(stage1), **tune))
    if a.ship:
        shutil.copyfile(ship_from, WEIGHTS_DIR / SHIPPED[a.exposure])
        print(f"shipped -> {WEIGHTS_DIR / SHIPPED[a.exposure]}")


def _fail(msg):
    print(f"train_bilateral.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


def _run(out, config):
    from edgeenhance.errors import UserError
    from edgeenhance.train.bilateral import train_bilateral

    try:
        r = train_bilateral(out, config)
    except UserError as e:  # a missing data folder, a bad option: one line, not a traceback
        _fail(e)
    if r["stopped"]:  # Ctrl-C or SIGTERM: the state is saved, nothing is finished to ship
        sys.exit(128 + r["signum"])
    print(f"best: {r['best']}")


if __name__ == "__main__":
    main()
