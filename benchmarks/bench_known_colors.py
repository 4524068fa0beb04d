"""How much a perfectly known color gains over the gray page: the cap the flats put on every color source.

Each validation page is colored with its own target as the hint image (every region takes the
target's median color inside it: a perfect matcher), and scored against the target beside
the gray page (CIEDE2000 gain over gray = 1 - dE(output) / dE(gray page), higher is better). Ways
of laying the known colors, side by side on the same regions:

* ``compose``: the product's compose (``models.paint.compose_cpu.compose`` with the hints): a known color
  on its region's paper with its own lightness, darker pixels darkening it in proportion;
* ``multiply``: the flats under the line art in plain multiply (sRGB page x flat color).

    python benchmarks/bench_known_colors.py data/pages/val_openmoji data/pages/val_gray ...
    python benchmarks/bench_known_colors.py --pages 20 --json out.json data/pages/val_*

Prints one row per set and way: mean CIEDE2000, its gain over gray, colorfulness vs the target's,
and the segmentation's median ms per page.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.cie import lab_to_linear_rgb  # noqa: E402
from models.paint import compose_cpu  # noqa: E402
from models.paint import regions as rg  # noqa: E402
from models.toolbox import metrics  # noqa: E402

WAYS = ("compose", "multiply")


def _linear(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)


def _srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x > 0.0031308, 1.055 * x ** (1 / 2.4) - 0.055, 12.92 * x)


def lay(way: str, gray: np.ndarray, target: np.ndarray, regions: rg.Regions) -> np.ndarray:
    """The page colored with the target's region colors (``rg.hint_colors``), ``HxWx3`` uint8."""
    hints = np.dstack([target, np.full(gray.shape, 255, np.uint8)])
    if way == "compose":
        return compose_cpu.compose(np.zeros((2, 8, 8), np.float32), gray=gray, hints=hints, regions=regions)
    ids, lab = rg.hint_colors(regions, hints)
    table = np.ones((regions.count + 1, 3), np.float64)
    if len(ids):
        table[ids] = np.clip(lab_to_linear_rgb(lab[:, 0], lab[:, 1], lab[:, 2]).T, 0.0, 1.0)
    flat = table[regions.full_labels()]
    page = _linear(gray.astype(np.float64) / 255.0)[..., None]
    return (np.clip(_srgb(flat * page), 0, 1) * 255 + 0.5).astype(np.uint8)


def as_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].double() / 255.0


def score_set(folder: Path, pages: int) -> dict:
    names = sorted(p.name for p in (folder / "bw").iterdir())[:pages]
    rows = {w: {"ciede2000": [], "colorfulness": []} for w in WAYS}
    gray_de, target_cf, seg_ms = [], [], []
    for name in names:
        gray = np.asarray(Image.open(folder / "bw" / name).convert("L"))
        target = np.asarray(Image.open(folder / "color" / name).convert("RGB"))
        t = time.perf_counter()
        regions = rg.segment_regions(gray)
        seg_ms.append((time.perf_counter() - t) * 1000)
        tt = as_tensor(target)
        gray_de.append(float(metrics.ciede2000(as_tensor(np.dstack([gray] * 3)), tt)))
        target_cf.append(float(metrics.colorfulness(tt)))
        for way in WAYS:
            out = as_tensor(lay(way, gray, target, regions))
            rows[way]["ciede2000"].append(float(metrics.ciede2000(out, tt)))
            rows[way]["colorfulness"].append(float(metrics.colorfulness(out)))
    g = float(np.mean(gray_de))
    result = {"pages": len(names), "gray_ciede2000": g, "target_colorfulness": float(np.mean(target_cf)),
              "segment_ms_median": float(np.median(seg_ms)), "ways": {}}
    for way in WAYS:
        de = float(np.mean(rows[way]["ciede2000"]))
        result["ways"][way] = {"ciede2000": de, "gain_over_gray": 1.0 - de / g,
                               "colorfulness_vs_target": float(np.mean(rows[way]["colorfulness"])) / result["target_colorfulness"]}
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sets", nargs="+", type=Path, help="paired folders with bw/ and color/")
    p.add_argument("--pages", type=int, default=40, help="pages per set (first N by name)")
    p.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = p.parse_args()
    torch.set_num_threads(1)
    out = {}
    print(f"{'set':<16} {'way':<9} {'CIEDE2000':>9} {'gray':>7} {'gain':>7} {'colorful':>9} {'seg ms':>7}")
    for folder in args.sets:
        r = score_set(folder, args.pages)
        out[folder.name] = r
        for way, w in r["ways"].items():
            print(f"{folder.name:<16} {way:<9} {w['ciede2000']:9.2f} {r['gray_ciede2000']:7.2f} "
                  f"{w['gain_over_gray']:+7.1%} {w['colorfulness_vs_target']:9.0%} {r['segment_ms_median']:7.0f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
