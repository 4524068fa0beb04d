"""Region compose cost per page: segmentation (models/paint/segmentation.py) and flat fill (models/paint/fills.py), ms per 1200x1700 page.

Pages: the sample chapter (``examples/sample_chapter.cbz``: 8 pages of 1200x1700 with panels,
gutters, balloons with text, screentones and dark tones around line drawings), or any folder of
images (``--pages DIR``; smaller pages are upscaled to 1200x1700). The model's prediction is
stood in for by a smooth random ab field at working size 320 (the cost does not depend on it).

    python benchmarks/bench_regions.py
    python benchmarks/bench_regions.py --rounds 5 --pages some/folder

Prints, per stage, the median and the slowest page (wall ms, one thread: the pipeline composes
pages on worker threads beside the model), and the CPU load seen while it ran.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.paint import fills
from models.paint import regions as rg

SIZE = (1200, 1700)


def flat_fill(regions: rg.Regions, ab: np.ndarray, full: bool = True) -> np.ndarray:
    """The flat fill's chroma: the compose's one color per region (``fills.flat_colors``) laid on the
    labels, ``[2, H, W]`` (``full``) or at the label resolution."""
    colors = fills.flat_colors(regions, ab)[0]
    return np.moveaxis(colors[regions.full_labels() if full else regions.labels], -1, 0)


def load_pages(source: Path | None) -> list[np.ndarray]:
    pages = []
    if source is None:
        with zipfile.ZipFile(ROOT / "examples" / "sample_chapter.cbz") as z:
            for name in sorted(z.namelist()):
                if name.lower().endswith((".png", ".jpg", ".jpeg")):
                    pages.append(Image.open(io.BytesIO(z.read(name))).convert("L"))
    else:
        for path in sorted(source.iterdir()):
            if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"):
                pages.append(Image.open(path).convert("L"))
    out = []
    for img in pages:
        if img.size != SIZE:
            img = img.resize(SIZE, Image.BICUBIC)
        out.append(np.asarray(img))
    return out


def smooth_ab(seed: int, shape=(320, 226)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.normal(0, 30, (2, 10, 8)).astype(np.float32)
    img = [np.asarray(Image.fromarray(c).resize((shape[1], shape[0]), Image.BILINEAR)) for c in coarse]
    return np.stack(img)[None]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=Path, default=None, help="folder of page images (default: the sample chapter)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--compose", action="store_true",
                    help="also time the whole compose (models.paint.compose, torch on one thread as the pipeline runs "
                         "it): flat vs soft, so the difference is what regions add")
    args = ap.parse_args()
    pages = load_pages(args.pages)
    abs_ = [smooth_ab(i) for i in range(len(pages))]
    stages = {"segment": [], "flat fill (label res)": [], "flat fill (full res)": [], "segment + fill (full)": []}
    load = []
    for page, ab in zip(pages, abs_):  # warm-up
        flat_fill(rg.segment_regions(page), ab)
    for _ in range(args.rounds):
        for page, ab in zip(pages, abs_):
            load.append(os.getloadavg()[0])
            t0 = time.perf_counter()
            regions = rg.segment_regions(page)
            t1 = time.perf_counter()
            flat_fill(regions, ab, full=False)
            t2 = time.perf_counter()
            flat_fill(regions, ab)
            t3 = time.perf_counter()
            stages["segment"].append(t1 - t0)
            stages["flat fill (label res)"].append(t2 - t1)
            stages["flat fill (full res)"].append(t3 - t2)
            stages["segment + fill (full)"].append((t1 - t0) + (t3 - t2))
    print(f"{len(pages)} pages of {SIZE[0]}x{SIZE[1]}, {args.rounds} rounds, {os.cpu_count()} CPUs, "
          f"load average {statistics.median(load):.1f} while running")
    print(f"{'stage':<24} {'median ms':>10} {'max ms':>8}")
    for name, times in stages.items():
        print(f"{name:<24} {1e3 * statistics.median(times):>10.1f} {1e3 * max(times):>8.1f}")
    if args.compose:
        compose_rows(pages, abs_, args.rounds)


def compose_rows(pages: list[np.ndarray], abs_: list[np.ndarray], rounds: int) -> None:
    import torch

    from models import color
    from models.paint import compose

    torch.set_num_threads(1)
    table = color.gray_to_l(torch.arange(256, dtype=torch.float32).div(255).view(1, 1, 1, -1)).flatten()
    times = {"soft": [], "flat": []}
    for page, ab in zip(pages, abs_):  # warm-up
        compose.compose(table[torch.from_numpy(page.copy()).long()][None, None], torch.from_numpy(ab), gray=page)
    for _ in range(rounds):
        for page, ab in zip(pages, abs_):
            L = table[torch.from_numpy(page.copy()).long()][None, None]
            for fill, spent in times.items():
                t0 = time.perf_counter()
                compose.compose(L, torch.from_numpy(ab), gray=page, fill=fill)
                spent.append(time.perf_counter() - t0)
    for fill, t in times.items():
        print(f"{'compose, fill ' + fill:<24} {1e3 * statistics.median(t):>10.1f} {1e3 * max(t):>8.1f}")


if __name__ == "__main__":
    main()
