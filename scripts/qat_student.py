#!/usr/bin/env python3
"""How the shipped int8 weights of student-small (edgeenhance/models/weights/student_small_int8.safetensors)
were made: quantization-aware fine-tuning of the float student with every layer fake-quantized
(all-int8), to reproduce the float student's output. Rendered over-exposed photos at three scales
(256, 512 and 1024 px, the last rendered at 512 and upsampled, as the exporter's large calibration
images are) so that the tuned weights hold at every export size. CPU, 2 threads: about 25 minutes.

    python scripts/qat_student.py [OUT.safetensors]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STEPS, LR, CROP, BATCH = 2000, 1e-4, 192, 4
SCALES = {(256, 256): 0, (512, 512): 100, (1024, 1024): 200}  # size -> first training seed (48 photos each)


def main() -> int:
    from edgeenhance.export.calib import synthetic_pairs
    from edgeenhance.models.registry import WEIGHTS_DIR, load_model, save_checkpoint
    from edgeenhance.quantize.qat import qat_finetune

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else WEIGHTS_DIR / "student_small_int8.safetensors"
    torch.set_num_threads(2)
    model = load_model("student-small")
    images = [x for size, seed in SCALES.items() for x, _ in synthetic_pairs(model, 48, size, seed)]
    t = time.time()
    tuned, hist = qat_finetune(model, images, STEPS, LR, batch=BATCH, crop=CROP, all_int8=True)
    print(f"QAT L1 {np.mean(hist[:20]):.5f} -> {np.mean(hist[-50:]):.5f} in {time.time() - t:.0f} s")
    save_checkpoint(out, tuned, name="student-small-int8",
                    meta={"from": "student-small", "all_int8": True, "qat_steps": STEPS, "lr": LR, "crop": CROP,
                          "batch": BATCH, "images": "48 rendered over-exposed photos at each of "
                                                    + ", ".join(f"{h}x{w}" for h, w in SCALES)})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
