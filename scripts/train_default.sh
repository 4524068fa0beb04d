#!/usr/bin/env bash
# Rebuild the shipped default model: data -> train -> export -> eval.
# This is the exact recipe behind mangacolor_cli/weights/default.onnx (see its MODEL_CARD.md).
# It was run on a 2-core CPU (no GPU) and stopped with Ctrl-C after the wall-clock budget; best.pt
# (lowest validation L1 on ab) is what ships. With a GPU, add --amp and train for longer.
set -euo pipefail
cd "$(dirname "$0")/.."

python scripts/fetch_data.py                      # data/pages/{train,val}/color, data/pages/paired_val
mkdir -p data/default_run                         # train/ + val/ (the val split is by source drawing)
[ -d data/default_run/train ] || cp -al data/pages/train/color data/default_run/train
[ -d data/default_run/val ] || cp -al data/pages/val/color data/default_run/val

OMP_NUM_THREADS=2 mangacolor train --model unet --opt base=16 --opt depth=5 --opt dropout=0.0 \
    --data data/default_run --out runs/default --size 128 --batch-size 16 --steps 100000 \
    --val-every 250 --log-every 25 --workers 1 --lr 2e-3 --seed 0 "$@"

mangacolor export runs/default/best.pt -o mangacolor_cli/weights/default.onnx --size 320
mangacolor eval -m mangacolor_cli/weights/default.onnx --data data/pages/paired_val \
    --json docs/default_paired_val.json --grid docs/images/default_paired_val.png
