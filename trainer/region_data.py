"""Training data for the region model: composed pages turned into region tokens once, cached.

The region model (``models.regionhead``) reads one token per region (``models.paint.tokens``): the
pixel model's prediction pooled inside the region, the page's gray there, its place and kind. Every
part of a token is fixed once the page is composed, so a page is composed, segmented and run
through the pixel model once (~0.4 s of one core), and training then reads thousands of pages a
second from the cache: hours of training see every cached page hundreds of times at the cost of
one pass of composing.

A cache is a folder of shards ``tokens-NNNNN.npz``, each with ``tokens`` ``[R, F]`` float16 (every
region of its pages, in page order), ``targets`` ``[R, 2]`` float16 (the true ab of each region, Lab
units) and ``offsets`` ``[P + 1]`` int64 (page ``p``'s regions are ``offsets[p]:offsets[p + 1]``).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from models.cie import srgb8_to_lab
from models.paint.segmentation import segment_regions
from models.paint.tokens import TOKEN_FEATURES, region_targets, region_tokens
from models.toolbox.files import atomic_path

from .pages.dataset import RENDER_LONG_SIDE, compose_pair
from .pages.plan import Drawing, page_rng
from .pages.render import DrawingCache

logger = logging.getLogger("mangacolor.trainer.region_data")

# A function from a page's 8-bit gray ``HxW`` to the pixel model's ``(ab [2,h,w] Lab units, confidence [h,w] or None)``.
Predict = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]


def page_example(gray: np.ndarray, color: np.ndarray, predict: Predict) -> tuple[np.ndarray, np.ndarray]:
    """One page's ``(tokens [n + 1, F], targets [n + 1, 2])``: ``gray`` uint8 ``HxW``, ``color`` uint8 ``HxWx3``."""
    regions = segment_regions(gray)
    f = regions.factor
    ab, conf = predict(gray)
    tokens = region_tokens(regions, gray[::f, ::f], ab, conf)
    targets = region_targets(regions, srgb8_to_lab(color[::f, ::f]))
    return tokens, targets


def composed_page(drawings: Sequence[Drawing], seed: int, index: int, cache: DrawingCache,
                  gray_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Page ``index`` of a seed's stream: ``(gray uint8 HxW, color uint8 HxWx3)``, with scan artefacts."""
    rng = page_rng(seed, "regions", index)
    long_side = int(rng.integers(*RENDER_LONG_SIDE))
    width = round(long_side / float(rng.uniform(1.35, 1.5)))
    bw, color = compose_pair(drawings, rng, cache, width, long_side, gray_rate, artefacts=True)
    return np.asarray(bw, np.uint8), np.asarray(color.convert("RGB"), np.uint8)


_WORKER: dict = {}


def _init(drawings, seed, gray_rate, make_predict) -> None:
    _WORKER.update(drawings=drawings, seed=seed, gray_rate=gray_rate, predict=make_predict(), cache=DrawingCache())


def _one(index: int):
    w = _WORKER
    gray, color = composed_page(w["drawings"], w["seed"], index, w["cache"], w["gray_rate"])
    tokens, targets = page_example(gray, color, w["predict"])
    return index, tokens.astype(np.float16), targets.astype(np.float16)


def write_shard(path: Path, examples: list[tuple[np.ndarray, np.ndarray]]) -> None:
    offsets = np.zeros(len(examples) + 1, np.int64)
    offsets[1:] = np.cumsum([len(t) for t, _ in examples])
    tokens = np.concatenate([t for t, _ in examples]) if examples else np.zeros((0, TOKEN_FEATURES), np.float16)
    targets = np.concatenate([y for _, y in examples]) if examples else np.zeros((0, 2), np.float16)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, tokens=tokens, targets=targets, offsets=offsets)


def build_cache(drawings: Sequence[Drawing], out_dir: str | Path, pages: int, make_predict: Callable[[], Predict],
                *, seed: int = 0, gray_rate: float = 0.25, shard_pages: int = 250, workers: int = 2,
                log: Callable[[str], None] = logger.info) -> int:
    """Compose ``pages`` pages (seeded, page ``i`` always the same) into shards under ``out_dir``.

    Resumable: a shard already written is kept. ``make_predict`` builds the pixel model's predict in each
    worker process (a picklable callable). Returns the number of pages in the cache.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shards = [(s, range(s * shard_pages, min(pages, (s + 1) * shard_pages)))
              for s in range((pages + shard_pages - 1) // shard_pages)]
    todo = [(s, r) for s, r in shards if not (out_dir / f"tokens-{s:05d}.npz").exists()]
    if not todo:
        return pages
    ctx = mp.get_context("spawn")
    start = time.perf_counter()
    done = 0
    with ctx.Pool(workers, initializer=_init, initargs=(list(drawings), seed, gray_rate, make_predict)) as pool:
        for s, r in todo:
            examples = sorted(pool.map(_one, list(r), chunksize=4), key=lambda e: e[0])
            write_shard(out_dir / f"tokens-{s:05d}.npz", [(t, y) for _, t, y in examples])
            done += len(r)
            rate = done / (time.perf_counter() - start)
            log(f"shard {s}: pages {r.start}-{r.stop - 1} ({rate:.2f} pages/s)")
    return pages


def load_cache(folder: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every shard of a cache joined: ``(tokens [R, F] float32, targets [R, 2] float32, offsets [P + 1])``."""
    files = sorted(Path(folder).glob("tokens-*.npz"))
    if not files:
        raise FileNotFoundError(f"{folder}: no token shards (tokens-*.npz)")
    tokens, targets, offsets, base = [], [], [np.zeros(1, np.int64)], 0
    for f in files:
        with np.load(f) as z:
            tokens.append(z["tokens"].astype(np.float32))
            targets.append(z["targets"].astype(np.float32))
            offsets.append(z["offsets"][1:] + base)
            base += len(z["tokens"])
    return np.concatenate(tokens), np.concatenate(targets), np.concatenate(offsets)
