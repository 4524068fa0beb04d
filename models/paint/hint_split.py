"""A region that a *hint map* colors in several places split between its colors (``split_for_hint_map``,
called by the Colorizer and both composes through ``fills.regions_for_hints``): each pixel of the region takes the part of
the nearest of its hint pixels, so one region holding a shaded figure's skin and shirt (gray-shaded art,
whose colors do not follow the ink) takes both colors instead of their median. A hint map gives hue and
chroma and the page keeps its lightness (``regions.is_hint_map``), so the parts meet as the hint map's
colors do. Page-size hint images are exact flats and never split a region. Measured under the Hint-AUC
protocol: docs/MODELS.md, "A hint map laid per pixel inside a region".
"""

from __future__ import annotations

import numpy as np

from .regions import hint_map_index
from .segmentation import Regions

# A color counts in a region when it holds at least this share of the region's hint pixels (a block of the
# map that straddles a line leaves a few pixels of its color on the other side: those do not count).
# Chosen on 32 training-split pages under the Hint-AUC protocol among 0, 0.05, 0.1 and 0.25.
HINT_SPLIT_SHARE = 0.05
# How far a part grows from its hint pixels inside the region, in label px; a pixel no part reaches stays
# with the region's first part.
HINT_SPLIT_REACH = 96


def _grow_within(labels: np.ndarray, seed: np.ndarray, reach: int) -> np.ndarray:
    """``seed`` (int, -1 where none) grown one pixel a round into the 4-neighbours of the same label."""
    val = seed.copy()
    moves = []  # (source, destination, same label): the four shifts, their label checks made once
    for axis in (0, 1):
        for step in (1, -1):
            src = slice(None, -1) if step == 1 else slice(1, None)
            dst = slice(1, None) if step == 1 else slice(None, -1)
            index_src = (src, slice(None)) if axis == 0 else (slice(None), src)
            index_dst = (dst, slice(None)) if axis == 0 else (slice(None), dst)
            moves.append((index_src, index_dst, labels[index_src] == labels[index_dst]))
    for _ in range(reach):
        empty = val < 0
        if not empty.any():
            break
        grew = False
        for index_src, index_dst, same in moves:
            v = val[index_src]
            take = empty[index_dst] & same & (v >= 0)
            if take.any():
                val[index_dst][take] = v[take]
                empty[index_dst] &= ~take
                grew = True
        if not grew:
            break
    return val


def split_for_hint_map(regions: Regions, hint_map: np.ndarray) -> tuple[Regions, np.ndarray | None]:
    """``(regions, parent)``: the regions with each one that holds several of the map's colors (each at
    least HINT_SPLIT_SHARE of its hint pixels on its core) split into one part per color, and ``parent``
    (per new label, the label it came from; None when nothing was split). ``hint_map``: ``hxwx4`` uint8,
    at most half the page each way, scaled to it by nearest neighbour (``regions.scale_hint_map``).

    A map pixel covers a block of the page; where the block straddles a line, its color counts only in the
    region holding most of the block's core (a scribble beside a line is not a second color beyond it)."""
    f = regions.factor
    labels = regions.labels
    h, w = labels.shape
    n = regions.count + 1
    rows, cols = hint_map_index(hint_map.shape, regions.shape)
    my, mx = rows[::f][:h], cols[::f][:w]  # the map pixel over each label pixel
    small = np.asarray(hint_map)[my][:, mx]
    ys, xs = np.nonzero((small[..., 3] > 0) & regions.core & (labels > 0))
    if len(ys) == 0:
        return regions, None
    mw = hint_map.shape[1]
    block = my[ys] * mw + mx[xs]
    where = labels[ys, xs].astype(np.int64)
    # Each block's region: the one holding most of its core pixels; the block's color counts only there.
    pairs, count = np.unique(block * n + where, return_counts=True)
    pair_block, pair_label = pairs // n, pairs % n
    order = np.lexsort((-count, pair_block))
    first = np.ones(len(order), bool)
    first[1:] = pair_block[order][1:] != pair_block[order][:-1]
    majority = np.zeros(hint_map.shape[0] * mw, np.int64)
    majority[pair_block[order][first]] = pair_label[order][first]
    mine = majority[block] == where
    ys, xs, where = ys[mine], xs[mine], where[mine]
    if len(ys) == 0:
        return regions, None
    rgb = small[ys, xs, :3].astype(np.int64)
    keys, color = np.unique((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2], return_inverse=True)
    k = len(keys)
    count = np.bincount(where * k + color, minlength=n * k).reshape(n, k)
    total = count.sum(axis=1, keepdims=True)
    strong = (count > 0) & (count >= HINT_SPLIT_SHARE * total)
    several = strong.sum(axis=1) >= 2
    if not several.any():
        return regions, None
    # Each strong (region, color) pair of a region with several: a part. The first keeps the region's label.
    pair_region, pair_color = np.nonzero(strong & several[:, None])
    first = np.ones(len(pair_region), bool)
    first[1:] = pair_region[1:] != pair_region[:-1]
    part = np.empty(len(pair_region), np.int64)
    part[first] = pair_region[first]
    part[~first] = np.arange(n, n + int((~first).sum()))
    lookup = np.full((n, k), -1, np.int64)
    lookup[pair_region, pair_color] = part
    seed = np.full(labels.shape, -1, np.int64)
    seed[ys, xs] = lookup[where, color]
    # Grown only over the box of the regions that split (a page's few large shaded regions, often less).
    mask = several[labels]
    box_rows, box_cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    box = slice(box_rows[0], box_rows[-1] + 1), slice(box_cols[0], box_cols[-1] + 1)
    grown = _grow_within(np.where(mask[box], labels[box], -1), seed[box], HINT_SPLIT_REACH)
    new_labels = labels.copy()
    inside = mask[box] & (grown >= 0)
    new_labels[box][inside] = grown[inside]
    parent = np.concatenate([np.arange(n), pair_region[~first]])
    kind = np.concatenate([regions.kind, regions.kind[pair_region[~first]]])
    split = Regions(labels=new_labels.astype(np.int32, copy=False), kind=kind, core=regions.core, factor=f,
                    shape=regions.shape)
    return split, parent
