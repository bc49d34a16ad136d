#!/usr/bin/env bash
# How the shipped weights were trained (on one GPU; see README "Model zoo"). Run from the repo root.
# Usage: scripts/train_zoo.sh OUTDIR   (python3 with torch, numpy, pillow, safetensors, tqdm, scipy, opencv)
set -euo pipefail
OUT=${1:-runs/zoo}
mkdir -p "$OUT"
PY="python3 -m edgeenhance"
export PYTHONPATH=${PYTHONPATH:-}:$(pwd)
$PY train bilateral --data synthetic --n-images 2000 --steps 6000 --batch 16 --crop 256 --lr 1e-3 \
    --val-images 32 --val-every 500 --quiet -o "$OUT/bilateral" > "$OUT/bilateral.log" 2>&1 &
BIL=$!
$PY train cyclegan --over synthetic --normal synthetic --n-images 1500 --epochs 16 --batch 4 --crop 256 \
    --quiet -o "$OUT/cyclegan" > "$OUT/cyclegan.log" 2>&1
$PY distill --teacher "$OUT/cyclegan/teacher.safetensors" --student small --data synthetic --n-images 1500 \
    --steps 4000 --batch 16 --crop 256 --val-images 32 --val-every 500 --quiet -o "$OUT/distill" > "$OUT/distill.log" 2>&1
wait $BIL
echo ALL DONE > "$OUT/DONE"
