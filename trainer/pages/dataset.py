"""Training pages composed on the fly from pools of figure pairs, with scan artefacts.

Pre-building pages would cap what training sees (a 2-core machine renders about 6 pages a second,
so 20,000 pages would cost an hour before the first step); composing in the loader's worker makes
every (seed, epoch, index) a new page, at the price of ~0.15 s of CPU per page, which one loader
worker overlaps with the training step. Items follow the trainer's contract:
``{'gray': [1,S,S], 'rgb': [3,S,S]}`` floats in [0, 1].
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageFilter
from torch.utils.data import Dataset

from .plan import Drawing, page_rng, plan_page
from .render import DrawingCache, render_page

# Inference scales a page so its long side is the model's working size (320 for the default model);
# training pages are rendered larger (tones and lines as on paper) and scaled down the same way.
RENDER_LONG_SIDE = (520, 640)
WORKING_LONG_SIDE = 320


def drawings_from_index(index: str | Path, split: str, sources: Sequence[str] | None = None) -> list[Drawing]:
    """The drawings of one split (``train``/``val``) in ``data/drawings/index.json``.

    Each gets its inked line art: the source's own twin where it has one, else the synthesized one.
    """
    records = json.loads(Path(index).read_text())["records"]
    out = []
    for r in records:
        if "dropped" in r or r.get("split") != split or (sources and r["source"] not in sources):
            continue
        out.append(Drawing(f"{r['source']}/{r['key']}", r["color"], r.get("line") or r.get("line_synth")))
    return out


def scan_artefacts(bw: Image.Image, rng: np.random.Generator) -> Image.Image:
    """What a scanner and a JPEG encoder do to a printed page: paper tone, blur, grain, compression."""
    g = np.asarray(bw, np.float32)
    if rng.uniform() < 0.5:  # paper that is not quite white, ink that is not quite black
        paper, ink = rng.uniform(225, 255), rng.uniform(0, 35)
        g = ink + g * (paper - ink) / 255.0
    img = Image.fromarray(np.clip(g + 0.5, 0, 255).astype(np.uint8), "L")
    if rng.uniform() < 0.4:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 0.9))))
    if rng.uniform() < 0.4:
        g = np.asarray(img, np.float32) + rng.normal(0, rng.uniform(2, 8), (img.height, img.width))
        img = Image.fromarray(np.clip(g + 0.5, 0, 255).astype(np.uint8), "L")
    if rng.uniform() < 0.6:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(rng.integers(55, 95)))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("L")
    return img


def compose_pair(drawings: Sequence[Drawing], rng: np.random.Generator, cache: DrawingCache,
                 width: int, height: int, gray_rate: float = 0.15,
                 artefacts: bool = True) -> tuple[Image.Image, Image.Image]:
    """One page as (black-and-white input 'L', color target 'RGB'), from the same plan."""
    plan = plan_page(drawings, rng, width, height, cache.size, gray_rate=gray_rate)
    bw, color = render_page(plan, "bw", cache), render_page(plan, "color", cache)
    if artefacts:
        if rng.uniform() < 0.3:  # a page scanned slightly askew; the target turns with it
            angle = float(rng.uniform(-1.2, 1.2))
            bw = bw.rotate(angle, Image.BILINEAR, fillcolor=255)
            color = color.rotate(angle, Image.BILINEAR, fillcolor=(255, 255, 255))
        bw = scan_artefacts(bw, rng)
    return bw, color


class ComposedPages(Dataset):
    """Crops of pages composed on the fly; ``len`` pages make an epoch, each epoch new pages.

    Keys are ``(index, epoch, position)`` from the trainer's EpochSampler (random page, scale and
    crop) or plain ints (validation: a fixed page, scaled to the working size, centered crop).
    """

    def __init__(self, drawings: Sequence[Drawing], size: int, seed: int, *, length: int = 2000,
                 gray_rate: float = 0.15, working_long_side: int = WORKING_LONG_SIDE):
        if not drawings:
            raise ValueError("no drawings to compose pages from")
        self.drawings = list(drawings)
        self.size = size
        self.seed = seed
        self.length = length
        self.gray_rate = gray_rate
        self.working = working_long_side
        self._cache: DrawingCache | None = None

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        train = isinstance(key, (tuple, list))
        index, epoch = (int(key[0]), int(key[1])) if train else (int(key), -1)
        rng = page_rng(self.seed, f"composed:{epoch}", index)
        if self._cache is None:  # one per worker process
            self._cache = DrawingCache()
        long_side = int(rng.integers(*RENDER_LONG_SIDE)) if train else RENDER_LONG_SIDE[0]
        aspect = float(rng.uniform(1.35, 1.5)) if train else 1.414
        width, height = round(long_side / aspect), long_side
        bw, color = compose_pair(self.drawings, rng, self._cache, width, height, self.gray_rate, artefacts=True)
        scale = self.working / long_side * (float(rng.uniform(0.8, 1.3)) if train else 1.0)
        tw, th = max(self.size, round(width * scale)), max(self.size, round(height * scale))
        bw = bw.resize((tw, th), Image.BILINEAR, reducing_gap=None)
        color = color.resize((tw, th), Image.BILINEAR, reducing_gap=None)
        if train:
            x0, y0 = int(rng.integers(0, tw - self.size + 1)), int(rng.integers(0, th - self.size + 1))
        else:
            x0, y0 = (tw - self.size) // 2, (th - self.size) // 2
        box = (x0, y0, x0 + self.size, y0 + self.size)
        gray = torch.from_numpy(np.asarray(bw.crop(box), np.float32) / 255.0)[None]
        rgb = torch.from_numpy(np.asarray(color.crop(box), np.float32) / 255.0).permute(2, 0, 1)
        return {"gray": gray.contiguous(), "rgb": rgb.contiguous()}
