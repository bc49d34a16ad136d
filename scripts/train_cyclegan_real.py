#!/usr/bin/env python3
"""The CycleGAN teacher on real photos (over-exposed -> well-exposed, unpaired), paper recipe:
LSGAN, cycle lambda 10, identity 0.5, image pool 50, Adam 2e-4 / beta1 0.5, constant learning rate
for the first half of the epochs and linear decay to zero over the second half.

Domains (training split only; the last 15% of each folder by name is never trained on):
- over-exposed: the real SICE part 1 frames of ../shared/data/exposure/sice_part1 whose mean
  luminance is above 0.6 (the bright end of each multi-exposure sequence);
- well-exposed: the real photos of ../shared/data/photos.

It needs a GPU (about 8 s per step at paper size on 2 CPU cores). Train in resumable chunks: the
state is saved every epoch, every few minutes and on SIGTERM, so a short GPU slot can run

    timeout -s TERM 540 python scripts/train_cyclegan_real.py --out runs/cyclegan-real [--resume]

and the next slot continues with --resume. OUT/teacher.safetensors is the over -> normal generator;
distil it into the over-exposure model with

    python scripts/train_bilateral.py --exposure over --teacher OUT/teacher.safetensors
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgeenhance.train.configs import CycleGANConfig  # noqa: E402  (after the path is set)

RECIPE = CycleGANConfig(epochs=200, batch=4, crop=256, lr=2e-4, lam=10.0, lam_id=0.5, gan_mode="lsgan", pool_size=50,
                        ngf=64, n_blocks=9, ndf=64)
MAX_SIDE = 512  # photos are held in memory at this size; crops are 256


def domains(data: Path, progress: bool = True):
    """(real over-exposed frames, real well-exposed photos) as float32 arrays, training split."""
    import numpy as np

    from edgeenhance.data.photosets import load_photos, photo_files
    from edgeenhance.train.bilateral import badly_exposed

    over = load_photos(photo_files(data / "exposure" / "sice_part1", "train"), MAX_SIDE, progress, "over-exposed frames",
                       keep=lambda img: badly_exposed(img, "over"))
    normal = load_photos(photo_files(data / "photos", "train"), MAX_SIDE, progress, "well-exposed photos")
    return [o.astype(np.float32) / 255 for o in over], [n.astype(np.float32) / 255 for n in normal]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the shared data folder")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "cyclegan-real", help="run folder")
    p.add_argument("--epochs", type=int, default=RECIPE.epochs, help=f"default {RECIPE.epochs} (the paper's)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.safetensors")
    a = p.parse_args(argv)

    from edgeenhance.train.cyclegan import train_cyclegan

    over, normal = domains(a.data)
    print(f"{len(over)} real over-exposed frames, {len(normal)} well-exposed photos")
    r = train_cyclegan(a.out, over, normal, replace(RECIPE, resume=a.resume, device=a.device, epochs=a.epochs))
    if r["stopped"]:
        sys.exit(128 + r["signum"])
    print(f"teacher: {a.out / 'teacher.safetensors'}")


if __name__ == "__main__":
    main()
