#!/usr/bin/env python3
"""How the shipped int8 weights of student-small (edgeenhance/models/weights/student_small_int8.safetensors)
were made: quantization-aware fine-tuning of the float student with every layer fake-quantized
(all-int8) and one int8 scale per weight tensor (per-channel scales were 13 KB of the 110 KB int8
file: a float for the weights and one for the biases of every output channel), to reproduce the
float student's output. The student is range-equalized first (its ``int8_equalize`` groups, on 32
calibration photos at 512 px), so QAT tunes the very graph the exporter quantizes; the checkpoint
is marked so that exports do not equalize it again. Rendered over-exposed photos at three scales
(256, 512 and 1024 px, the last rendered at 512 and upsampled, as the exporter's large calibration
images are) so that the tuned weights hold at every export size. The steps run through
edgeenhance.train.loop (``qat_finetune``). CPU, 2 threads: about 9 minutes. Writes OUT (default
runs/qat-student/student_small_int8.safetensors); --ship copies it over the shipped int8 weights.

    python scripts/qat_student.py [--out OUT.safetensors] [--ship]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STEPS, LR, CROP, BATCH = 2000, 1e-4, 192, 4
SCALES = {(256, 256): 0, (512, 512): 100, (1024, 1024): 200}  # size -> first training seed (48 photos each)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "qat-student" / "student_small_int8.safetensors",
                   help="the tuned checkpoint (default runs/qat-student/student_small_int8.safetensors)")
    p.add_argument("--ship", action="store_true",
                   help="copy OUT over the shipped weights (student_small_int8.safetensors)")
    a = p.parse_args(argv)

    from edgeenhance.export.calib import calibration_images, synthetic_pairs
    from edgeenhance.models.registry import WEIGHTS_DIR, load_model, save_checkpoint
    from edgeenhance.quantize.qat import per_tensor_start, qat_finetune

    torch.set_num_threads(2)
    model = load_model("student-small")
    images = [x for size, seed in SCALES.items() for x, _ in synthetic_pairs(model, 48, size, seed)]
    start = per_tensor_start(model, calibration_images(model, "synthetic", 32, (512, 512)))
    t = time.time()
    tuned, hist = qat_finetune(start, images, STEPS, LR, batch=BATCH, crop=CROP, all_int8=True,
                               per_tensor=True, reference=model)
    print(f"QAT L1 {np.mean(hist[:20]):.5f} -> {np.mean(hist[-50:]):.5f} in {time.time() - t:.0f} s")
    save_checkpoint(a.out, tuned, name="student-small-int8",
                    meta={"from": "student-small", "all_int8": True, "weight_granularity": "tensor",
                          "qat_steps": STEPS, "lr": LR, "crop": CROP, "batch": BATCH, "images": "48 rendered over-exposed photos at each of "
                                                    + ", ".join(f"{h}x{w}" for h, w in SCALES)})
    print(f"wrote {a.out}")
    if a.ship:
        shutil.copyfile(a.out, WEIGHTS_DIR / "student_small_int8.safetensors")
        print(f"shipped -> {WEIGHTS_DIR / 'student_small_int8.safetensors'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
