"""The least Hint-AUC the flats allow, beside Levin 2004's: can any hint system on our regions reach a bar?

Under the Hint-AUC protocol (``mangacolor eval --hint-protocol dht``) a system's curve starts at a = 0
(no hints) and is scored at a = 0.01 ... 1 with more and more of the target's regions scribbled. A system
that lays one color per region of the segmentation can do no better, at any a, than every region taking
the target's own color (the perfect matcher of ``bench_known_colors.py``: the target itself as the hint
image, at the product's compose). Scoring that at the protocol's metric (hintauc's CIEDE2000 on 256x256)
on the protocol's pages, and giving it to every a > 0, bounds the Hint-AUC from below:

    auc >= 0.005 * (gray + perfect) + 0.99 * perfect     (the trapezoid over the protocol's ratios)

The bound is printed beside Levin's Hint-AUC read from a results file of ``mangacolor eval
--hint-protocol dht --json-out`` (same sets, same pages), as a ratio, and beside a bar on that ratio.

    python benchmarks/bench_hint_cap.py --levin benchmarks/results/hint-auc-luma.json data/pages/val_*

Needs hintauc for the metric: ``pip install --no-deps hintauc==0.3.3 opencv-python-headless``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mangacolor_cli.evaluation.hint_protocol import ALPHAS, dht_metric, trapezoid_auc  # noqa: E402
from models.paint import regions as rg  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_known_colors import lay  # noqa: E402


def bound(gray: float, perfect: float) -> float:
    """The protocol's trapezoid with the gray page's score at a = 0 and ``perfect`` at every a > 0."""
    return trapezoid_auc({a: (gray if a == 0 else perfect) for a in ALPHAS})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sets", nargs="+", type=Path, help="paired folders with bw/ and color/")
    p.add_argument("--pages", type=int, default=10, help="pages per set (first N by name, as the eval's --pages)")
    p.add_argument("--levin", type=Path, required=True, help="an eval --hint-protocol JSON with the 'levin 2004' row")
    p.add_argument("--bar", type=float, default=0.6, help="the ratio to Levin's Hint-AUC to compare against")
    p.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = p.parse_args()
    metric, _record = dht_metric()
    levin = {r["set"]: r["hint_auc"]["levin 2004"] for r in json.loads(args.levin.read_text())}
    out = {}
    print(f"{'set':<14} {'gray':>6} {'perfect':>8} {'least AUC':>9} {'Levin':>6} {'ratio':>6} {'bar':>5}")
    for folder in args.sets:
        if folder.name not in levin:
            print(f"{folder.name:<14} (no Levin row in {args.levin})")
            continue
        names = sorted(q.name for q in (folder / "bw").iterdir())[:args.pages]
        gray_s, perfect_s = [], []
        for name in names:
            gray = np.asarray(Image.open(folder / "bw" / name).convert("L"))
            target = np.asarray(Image.open(folder / "color" / name).convert("RGB"))
            gray_s.append(metric(np.dstack([gray] * 3), target))
            perfect_s.append(metric(lay("compose", gray, target, rg.segment_regions(gray)), target))
        g, pm = float(np.mean(gray_s)), float(np.mean(perfect_s))
        least = bound(g, pm)
        ratio = least / levin[folder.name]
        out[folder.name] = {"pages": len(names), "gray": g, "perfect_matcher": pm, "least_hint_auc": least,
                            "levin_hint_auc": levin[folder.name], "least_ratio_to_levin": ratio}
        print(f"{folder.name:<14} {g:6.3f} {pm:8.3f} {least:9.3f} {levin[folder.name]:6.3f} {ratio:5.2f}x "
              f"{'under' if ratio <= args.bar else 'OVER':>5}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
