#!/usr/bin/env bash
# Shorter recipe used for the shipped weights when device time was short (see README "Model zoo").
set -uo pipefail
OUT=${1:-runs/zoo}; DEST=${2:-$OUT/collect}
mkdir -p "$OUT" "$DEST"
export PYTHONPATH=${PYTHONPATH:-}:$(pwd)
PY="python3 -m edgeenhance"
timeout 400 $PY train bilateral --data synthetic --n-images 2000 --steps 4000 --batch 16 --crop 256 --lr 1e-3 \
    --val-images 32 --val-every 500 --quiet -o "$OUT/bilateral" > "$OUT/bilateral.log" 2>&1 &
timeout 290 $PY train cyclegan --over synthetic --normal synthetic --n-images 1000 --epochs 6 --batch 4 --crop 256 \
    --quiet -o "$OUT/cyclegan" > "$OUT/cyclegan.log" 2>&1
timeout 150 $PY distill --teacher "$OUT/cyclegan/teacher.safetensors" --student small --data synthetic --n-images 1000 \
    --steps 2500 --batch 16 --crop 256 --lr 3e-3 --val-images 32 --val-every 250 --quiet -o "$OUT/distill" > "$OUT/distill.log" 2>&1
wait
timeout 40 $PY eval --model "$OUT/cyclegan/teacher.safetensors" --model "$OUT/distill/best.safetensors" --model tonecomp \
    --data synthetic-over --n 32 --quiet --device cuda --json "$OUT/eval_over.json" > "$OUT/eval_over.txt" 2>&1
cp "$OUT/bilateral/best.safetensors" "$DEST/bilateral.safetensors"
cp "$OUT/distill/best.safetensors" "$DEST/student_small.safetensors"
split -b 15M "$OUT/cyclegan/teacher.safetensors" "$DEST/teacher.part."
(cd "$OUT" && tar czf "$DEST/logs.tgz" *.log eval_over.* cyclegan/log.jsonl cyclegan/samples_epoch*.png)
