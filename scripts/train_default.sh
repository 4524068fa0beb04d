#!/usr/bin/env bash
# Rebuild the shipped default model: data -> train -> export -> eval.
# The exact recipe behind mangacolor_cli/weights/default.onnx (see its MODEL_CARD.md), run on the
# 2-core CPU (AVX2, fp32: this CPU reports no bf16 instructions, so --cpu-bf16 falls back; no GPU).
# best.pt (the EMA weights with the lowest validation CIEDE2000 on data/pages/val_mix) is what ships.
# Needs the pretrained extra:  pip install torch==2.13.0 -e ".[pretrained]"
# Extra arguments go to `mangacolor train` (e.g. --resume runs/effunet_v2/last.pt).
# The shipped run was this command with --steps 1500, stopped (Ctrl-C) at step 937, resumed with
# --steps 2300 and stopped at 965, its EMA reset to the current weights (the EMA then still held
# the random initial decoder; trainer.loop.ema_average now warms its decay up instead), and resumed
# with --steps 1800 to the end: MODEL_CARD.md has the timings.
set -euo pipefail
cd "$(dirname "$0")/.."

python scripts/fetch_data.py        # data/drawings (+ index.json), data/pages/val_<set>

# A small mixed validation set: 8 pages of each per-source set.
mkdir -p data/pages/val_mix/bw data/pages/val_mix/color
for s in comicgen dicebear openmoji clipart gray; do
  for i in 00000 00001 00002 00003 00004 00005 00006 00007; do
    ln -sf "../../val_$s/bw/$i.png" "data/pages/val_mix/bw/${s}_$i.png"
    ln -sf "../../val_$s/color/$i.png" "data/pages/val_mix/color/${s}_$i.png"
  done
done

# Pages composed on the fly from the training drawings (one loader worker renders, the rest trains).
mangacolor train --model effunet --preset full --data data/drawings --val-data data/pages/val_mix \
    --out runs/effunet_v2 --size 192 --batch-size 10 --steps 1800 --lr 5e-4 --schedule cosine --warmup 100 \
    --ema 0.998 --cpu-bf16 --channels-last --best-metric ciede2000 --val-every 150 --log-every 10 \
    --workers 1 --seed 0 "$@"

mangacolor export runs/effunet_v2/best.pt -o mangacolor_cli/weights/default.onnx --size 320
for s in comicgen dicebear openmoji clipart gray; do
  mangacolor eval -m mangacolor_cli/weights/default.onnx --data "data/pages/val_$s" --json-out "docs/eval/default_val_$s.json"
done
