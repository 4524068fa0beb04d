"""The corpus on disk: synthesized line art for every drawing without a twin, one validation set
per source, and a contact sheet of training pairs to look at.

``data/drawings/index.json`` (written by ``scripts/fetch_data.py``) lists the rendered drawings;
each record has ``source``, ``key``, ``split``, ``color`` and, for exact pairs, ``line``. This
module adds ``line_synth`` to the others and writes ``data/pages/val_<set>/{bw,color}/NNNNN.png``.
"""

from __future__ import annotations

import json
import logging
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from models.toolbox.files import atomic_path
from models.toolbox.images import ImageDecodeError, read_image, to_rgba8

from .composer import Drawing, DrawingCache, page_rng, save_png_atomic
from .dataset import compose_pair, drawings_from_index
from .lineart import synthesize_line_art

# Validation sets, one per kind of source (figures of the val split only); "gray" holds gray-shaded
# pages (illustrations, gray-toned manga), where a colorizer must do no worse than the gray page.
VAL_SETS: dict[str, dict] = {
    "comicgen": {"sources": ["comicgen"], "gray_rate": 0.0},
    "dicebear": {"sources": ["dicebear-adventurer", "dicebear-open-peeps", "dicebear-micah", "dicebear-lorelei"],
                 "gray_rate": 0.0},
    "openmoji": {"sources": ["openmoji"], "gray_rate": 0.0},
    "clipart": {"sources": ["openclipart", "twemoji", "fluent-emoji-flat", "noto"], "gray_rate": 0.0},
    "gray": {"sources": None, "gray_rate": 1.0},
}
VAL_PAGE_SIZE = (512, 724)
# Where the corpus steps' lines go when no `log` is given (the command line passes print).
logger = logging.getLogger("mangacolor.trainer.corpus")


def synthesize_file(color: str | Path, out: str | Path) -> str | None:
    """Synthesize the line art of the drawing at ``color`` into ``out`` (PNG, atomic); None if unreadable."""
    try:
        rgba = to_rgba8(read_image(color))
        with atomic_path(out) as tmp:
            Image.fromarray(synthesize_line_art(rgba), "RGBA").save(tmp, format="PNG", compress_level=3)
        return str(out)
    except (ImageDecodeError, OSError):
        return None


def _synth_one(job: tuple[str, str]) -> str | None:
    return synthesize_file(*job)


def add_synthesized_line_art(index: str | Path, jobs: int = 2, log: Callable[[str], None] = logger.info) -> int:
    """Synthesize line art for every kept drawing without a twin; record it as ``line_synth``.

    Idempotent: existing files are kept. Returns how many drawings have synthesized line art.
    """
    index = Path(index)
    doc = json.loads(index.read_text())
    todo, count = [], 0
    for r in doc["records"]:
        if "dropped" in r or r.get("line"):
            continue
        out = str(Path(r["color"]).parent.parent / "synth" / Path(r["color"]).name)
        r["line_synth"] = out
        count += 1
        if not Path(out).exists():
            todo.append((r["color"], out))
    if todo:
        log(f"synthesizing line art for {len(todo)} drawings without a twin ({count - len(todo)} already there)")
        start = time.time()
        with Pool(jobs) as pool:
            failed = sum(res is None for res in pool.imap_unordered(_synth_one, todo, chunksize=16))
        log(f"  done in {time.time() - start:.0f}s ({failed} failed)")
    with atomic_path(index) as tmp:
        tmp.write_text(json.dumps(doc))
    return count


def build_validation_sets(index: str | Path, out_dir: str | Path, pages: int = 40, seed: int = 0,
                          size: tuple[int, int] = VAL_PAGE_SIZE, log: Callable[[str], None] = logger.info,
                          sets: Sequence[str] | None = None) -> dict[str, int]:
    """Write ``out_dir/val_<set>/{bw,color}`` page pairs from validation drawings; returns pages per set."""
    out_dir = Path(out_dir)
    counts = {}
    cache = DrawingCache()
    for name, spec in VAL_SETS.items():
        if sets and name not in sets:
            continue
        drawings = drawings_from_index(index, "val", spec["sources"])
        if spec["sources"] is None:  # the gray set: drawings of every source but the exact-pair ones
            drawings = [d for d in drawings if d.key.split("/")[0] in VAL_SETS["clipart"]["sources"]]
        if not drawings:
            log(f"val_{name}: no validation drawings, skipped")
            continue
        folder = out_dir / f"val_{name}"
        for i in range(pages):
            bw_path, color_path = folder / "bw" / f"{i:05d}.png", folder / "color" / f"{i:05d}.png"
            if bw_path.exists() and color_path.exists():
                continue
            bw, color = compose_pair(drawings, page_rng(seed, f"val_{name}", i), cache, size[0], size[1],
                                     gray_rate=spec["gray_rate"], artefacts=True)
            save_png_atomic(color, color_path)
            save_png_atomic(bw, bw_path)
        counts[name] = pages
        log(f"val_{name}: {pages} pages from {len(drawings)} validation drawings")
    return counts


def contact_sheet(drawings: Sequence[Drawing], out: str | Path, pairs: int = 16, seed: int = 1,
                  size: tuple[int, int] = (512, 724), thumb: int = 240) -> Path:
    """A PNG of ``pairs`` random training pages, each as gray input | color target."""
    cache = DrawingCache()
    tiles = []
    for i in range(pairs):
        rng = page_rng(seed, "sheet", i)
        bw, color = compose_pair(drawings, rng, cache, size[0], size[1], gray_rate=0.15)
        th = round(thumb * size[1] / size[0])
        tile = Image.new("RGB", (thumb * 2 + 6, th), (128, 128, 128))
        tile.paste(bw.convert("RGB").resize((thumb, th), Image.LANCZOS), (0, 0))
        tile.paste(color.resize((thumb, th), Image.LANCZOS), (thumb + 6, 0))
        tiles.append(tile)
    cols = 4
    w, h = tiles[0].size
    sheet = Image.new("RGB", (cols * (w + 10), ((len(tiles) + cols - 1) // cols) * (h + 10)), (255, 255, 255))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % cols) * (w + 10), (i // cols) * (h + 10)))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
