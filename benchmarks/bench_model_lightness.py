"""Would the model's colors gain from a lightness of their own? An upper bound, measured.

Known colors (hints, references) carry their own lightness; the model's colors take the page's (paper
darkens only as far as a color needs). This colors each validation page with the default model (the
palette given), then lays the same output's ab, in the cores of the regions the model colored, at:

* ``target L``: the target's median lightness in that region (an oracle: no model could know it exactly);
* ``white at L<=70``: a fixed prior, colored white-paper cores no lighter than L 70.

and scores each against the target beside the gray page (CIEDE2000, full resolution, lower is better).
If even the oracle gains little, a region model predicting lightness is not worth training.

    python benchmarks/bench_model_lightness.py --pages 15 --palette safe data/pages/val_clipart ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mangacolor_cli import Colorizer  # noqa: E402
from models.cie import ciede2000, srgb8_to_lab  # noqa: E402
from models.color import lab_to_rgb  # noqa: E402
from models.paint import regions as rg  # noqa: E402

PRIOR_L = 70.0


def to_srgb8(lab: np.ndarray) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(lab.transpose(2, 0, 1))[None].astype(np.float32))
    return (lab_to_rgb(t)[0].permute(1, 2, 0).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)


def score_page(colorizer: Colorizer, gray: np.ndarray, target: np.ndarray) -> dict[str, float]:
    out = np.asarray(colorizer.colorize(Image.fromarray(gray)).convert("RGB"))
    regions = rg.segment_regions(gray)
    full = regions.full_labels()
    f = regions.factor
    core = np.repeat(np.repeat(regions.core, f, 0), f, 1)[:gray.shape[0], :gray.shape[1]]
    lab_t, lab_o = srgb8_to_lab(target, np.float64), srgb8_to_lab(out, np.float64)
    colored = core & (np.hypot(lab_o[..., 1], lab_o[..., 2]) > 3) & (regions.kind[full] == rg.REGION)
    ids = full[colored]
    median_l = np.zeros(full.max() + 1)
    for k in np.unique(ids):
        median_l[k] = np.median(lab_t[..., 0][full == k])
    oracle = lab_o.copy()
    oracle[colored, 0] = median_l[ids]
    prior = lab_o.copy()
    white = colored & (gray > 230)
    prior[white, 0] = np.minimum(prior[white, 0], PRIOR_L)
    de = lambda lab: float(ciede2000(lab, lab_t).mean())  # noqa: E731
    return {"gray page": de(srgb8_to_lab(np.dstack([gray] * 3), np.float64)), "model": de(lab_o),
            "target L": de(srgb8_to_lab(to_srgb8(oracle), np.float64)),
            f"white at L<={PRIOR_L:.0f}": de(srgb8_to_lab(to_srgb8(prior), np.float64))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sets", nargs="+", type=Path, help="paired folders with bw/ and color/")
    p.add_argument("--pages", type=int, default=15, help="pages per set (first N by name)")
    p.add_argument("--palette", default="safe", choices=rg.PALETTES)
    args = p.parse_args()
    colorizer = Colorizer(palette=args.palette)
    for folder in args.sets:
        names = sorted(q.name for q in (folder / "bw").iterdir())[:args.pages]
        rows = [score_page(colorizer, np.asarray(Image.open(folder / "bw" / n).convert("L")),
                           np.asarray(Image.open(folder / "color" / n).convert("RGB"))) for n in names]
        mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
        gray = max(mean["gray page"], 1e-9)
        print(f"{folder.name} ({args.palette}, {len(names)} pages): "
              + " | ".join(f"{k} {v:.2f} ({100 * (v / gray - 1):+.1f}%)" for k, v in mean.items()))


if __name__ == "__main__":
    main()
