#!/usr/bin/env python3
"""Compose drawings into synthetic manga pages: panels, borders, gutters, balloons, screentones.

A page is first *planned* (``trainer.pages.plan``: layout, backgrounds, drawing placements, balloons)
from a seeded RNG, then *rendered* (``trainer.pages.render``) in one of two modes from the same plan:
"color" (a training target) or "bw" (the same page in ink), so a paired bw/color page shares its layout
pixel for pixel. This module writes composed pages to disk: the fixed page folders of corpus v1 and
the sample chapter.

    python -m trainer.pages pages                               # recompose data/pages from data/drawings
    python scripts/fetch_data.py --sample-chapter OUT.cbz       # rebuild the sample chapter
"""
from __future__ import annotations

import io
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Callable, Sequence

from PIL import Image

from models.toolbox.files import atomic_path, atomic_zip

from .plan import Drawing, PagePlan, page_rng, plan_layout, plan_page
from .render import DrawingCache, render_page, screentone

# The planner's and renderer's names that tests and scripts reach through this module, beside its own.
__all__ = ["Drawing", "DrawingCache", "PagePlan", "SAMPLE_NOTES", "build_corpus_pages", "build_sample_chapter",
           "comic_info_xml", "page_rng", "plan_layout", "plan_page", "render_page", "save_png_atomic", "screentone",
           "split_drawings"]


def split_drawings(records: Sequence[dict]) -> dict[str, list[Drawing]]:
    """Drawings by split ('train', 'val') and the paired pools ('paired_train', 'paired_val')."""
    out: dict[str, list[Drawing]] = {"train": [], "val": [], "paired_train": [], "paired_val": []}
    for r in records:
        d = Drawing(f"{r['source']}/{r['key']}", r["color"], r.get("line"))
        out[r["split"]].append(d)
        if d.line:
            out[f"paired_{r['split']}"].append(d)
    return out


_WORKER: dict = {}


def _init_worker(pools: dict[str, list[Drawing]]) -> None:
    _WORKER["pools"] = pools
    _WORKER["cache"] = DrawingCache()


def _make_one(job: tuple[str, int, int, int, int, str]) -> list[str]:
    """Plan and render one page of a split, write it, return the drawing keys it used."""
    split, index, width, height, seed, out_dir = job
    cache, pool = _WORKER["cache"], _WORKER["pools"][split]
    plan = plan_page(pool, page_rng(seed, split, index), width, height, cache.size)
    name = f"{index:05d}.png"
    if split.startswith("paired_"):
        for mode, sub in (("bw", "bw"), ("color", "color")):
            save_png_atomic(render_page(plan, mode, cache), Path(out_dir) / split / sub / name)
    else:
        save_png_atomic(render_page(plan, "color", cache), Path(out_dir) / split / "color" / name)
    return [d.key for d in plan.drawings]


def save_png_atomic(img: Image.Image, path: Path) -> None:
    """Write a PNG through a temporary file and a rename, so no half-written page is left."""
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG", compress_level=6)


def build_corpus_pages(records: Sequence[dict], out_dir: Path, size: tuple[int, int] = (512, 724),
                       train_pages: int = 3000, val_pages: int = 300, paired_pages: int = 200,
                       seed: int = 0, jobs: int = 2, log: Callable[[str], None] = print,
                       paired_train_pages: int = 0) -> dict:
    """Compose train/val color pages and paired bw/color validation pages; returns counts.

    Pages already on disk are kept (a rerun only adds missing ones). The drawings of a split come
    only from that split, so validation pages hold no drawing seen in training.
    """
    pools = split_drawings(records)
    # paired_train: real line art -> color pages from training drawings (what binary manga pages look like).
    wanted = {"train": train_pages, "val": val_pages, "paired_val": paired_pages, "paired_train": paired_train_pages}
    jobs_list, present = [], 0
    for split, n in wanted.items():
        if n and not pools[split]:
            log(f"no drawings for {split}: skipping its pages")
            continue
        present += n
        sub = "bw" if split.startswith("paired_") else "color"
        for i in range(n):
            if not (out_dir / split / sub / f"{i:05d}.png").exists() or \
                    (split.startswith("paired_") and not (out_dir / split / "color" / f"{i:05d}.png").exists()):
                jobs_list.append((split, i, size[0], size[1], seed, str(out_dir)))
    log(f"composing {len(jobs_list)} pages of {size[0]}x{size[1]} into {out_dir} "
        f"({present - len(jobs_list)} already there)")
    start = time.time()
    if jobs_list:
        with Pool(jobs, initializer=_init_worker, initargs=(pools,)) as pool:
            for i, _ in enumerate(pool.imap_unordered(_make_one, jobs_list, chunksize=4), 1):
                if i % 250 == 0 or i == len(jobs_list):
                    log(f"  composed {i}/{len(jobs_list)} ({time.time() - start:.0f}s)")
    counts = {split: len(list((out_dir / split / ("bw" if split.startswith("paired_") else "color")).glob("*.png")))
              for split in wanted if (out_dir / split).exists()}
    counts["size"] = f"{size[0]}x{size[1]}"
    counts["drawings_per_split"] = {k: len(v) for k, v in pools.items()}
    return counts


# ---------------------------------------------------------------- sample chapter
def comic_info_xml(title: str, series: str, pages: int, notes: str, width: int, height: int) -> str:
    """A ComicInfo.xml (ComicRack schema) for a chapter of bw pages."""
    from xml.sax.saxutils import escape

    cover = ' Type="FrontCover"'
    page_rows = "\n".join(f'    <Page Image="{i}" ImageWidth="{width}" ImageHeight="{height}"'
                          f'{cover if i == 0 else ""} />' for i in range(pages))
    return (f'<?xml version="1.0" encoding="utf-8"?>\n'
            f'<ComicInfo xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
            f"  <Title>{escape(title)}</Title>\n  <Series>{escape(series)}</Series>\n  <Number>1</Number>\n"
            f"  <PageCount>{pages}</PageCount>\n  <Notes>{escape(notes)}</Notes>\n"
            f"  <BlackAndWhite>Yes</BlackAndWhite>\n  <Manga>Yes</Manga>\n  <LanguageISO>en</LanguageISO>\n"
            f"  <Pages>\n{page_rows}\n  </Pages>\n</ComicInfo>\n")


SAMPLE_NOTES = ("Synthetic black-and-white manga pages composed by mangacolor's trainer/pages "
                "from OpenMoji line art (black/svg) of openmoji@17.0.0, (c) OpenMoji contributors "
                "(openmoji.org), licensed CC BY-SA 4.0; this chapter is shared under CC BY-SA 4.0.")


def build_sample_chapter(drawings: Sequence[Drawing], out_path: Path, pages: int = 8,
                         size: tuple[int, int] = (1200, 1700), seed: int = 7, quality: int = 85,
                         preview: Path | None = None, notes: str = SAMPLE_NOTES) -> list[Image.Image]:
    """Write a CBZ of bw manga pages (JPEG) with ComicInfo.xml, atomically; return the pages."""
    if not drawings:
        raise ValueError("no drawings with line art for the sample chapter")
    cache = DrawingCache()
    images = []
    for i in range(pages):
        plan = plan_page(drawings, page_rng(seed, "sample", i), size[0], size[1], cache.size,
                         panels=int(page_rng(seed, "sample-n", i).integers(4, 7)), balloon_rate=0.8,
                         white_rate=0.45)
        # A coarser screen than the corpus pages: it looks like printed tone and keeps the JPEGs small.
        images.append(render_page(plan, "bw", cache, tone_period=size[0] / 86))
    with atomic_zip(out_path) as z:
        for i, img in enumerate(images):
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=quality, optimize=True)
            z.writestr(f"{i + 1:03d}.jpg", buf.getvalue())
        z.writestr("ComicInfo.xml", comic_info_xml("Sample chapter", "mangacolor samples", pages,
                                                   notes, size[0], size[1]))
    if preview:
        thumbs = [im.resize((size[0] // 5, size[1] // 5), Image.LANCZOS) for im in images]
        sheet = Image.new("L", (thumbs[0].width * 4, thumbs[0].height * ((len(thumbs) + 3) // 4)), 255)
        for i, t in enumerate(thumbs):
            sheet.paste(t, ((i % 4) * t.width, (i // 4) * t.height))
        sheet.save(preview)
    return images
