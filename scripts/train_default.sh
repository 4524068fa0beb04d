#!/usr/bin/env bash
# Rebuild the shipped default model: data -> train -> export -> eval.
# The exact recipe behind mangacolor_cli/weights/default.onnx (see its MODEL_CARD.md). It was run
# on the 2-core CPU (no GPU) and stopped with Ctrl-C when its wall-clock budget ran out; best.pt
# (lowest validation L1 on ab) is what ships. With a GPU, add --amp and train for longer.
set -euo pipefail
cd "$(dirname "$0")/.."

python scripts/fetch_data.py        # data/pages/{train,val,paired_train,paired_val}

# Paired pages: OpenMoji line art (bw/) -> the same drawing in color (color/), training drawings only;
# validated on paired_val, whose drawings never appear in training.
OMP_NUM_THREADS=2 mangacolor train --model unet --opt base=16 --opt depth=5 --opt dropout=0.0 \
    --data data/pages/paired_train --val-data data/pages/paired_val --out runs/default_paired \
    --size 128 --batch-size 16 --steps 100000 --val-every 250 --log-every 25 --workers 1 --lr 2e-3 --seed 0 "$@"

mangacolor export runs/default_paired/best.pt -o mangacolor_cli/weights/default.onnx --size 320
mangacolor eval -m mangacolor_cli/weights/default.onnx --data data/pages/paired_val --size 320 \
    --json docs/default_paired_val.json --grid docs/images/default_paired_val.png
