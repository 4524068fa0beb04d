"""A hint's color spread to the neighbours of its region that share its tone (``spread_hints``, called by
``fills.known_and_gray``): the strands of toned hair that lines cut apart, the folds of a coat, a
gray-shaded figure whose lines split one color into many regions. Only toned regions take it: white
paper regions all share one tone, and a spread there would be the flood that regions exist to stop. A
reference's match spreads too, across screentone only (the two halves of a dot-toned shirt).
Measured under the Hint-AUC protocol: docs/MODELS.md, "Hints spread across lines".
"""

from __future__ import annotations

import numpy as np

from .segmentation import REGION, SOLID, Regions
from .raster import label, max_filter
from .trapped_ball import adjacent_pairs

# A region takes a hinted neighbour's color when its core's median and mean gray are both within
# SPREAD_TONE levels of the hinted region's (the region the hint was drawn in, however many steps away),
# its mean is SPREAD_PAPER levels darker than the page's paper (its 99th percentile: a light tone
# takes it, white paper does not), the two share a border of SPREAD_BORDER label px across the line
# between them, its tone's specks are at most SPREAD_DOT times the size of the hinted region's (or neither
# has any), and it is at most SPREAD_AREA times the hinted region's area; SPREAD_ROUNDS steps away at most.
SPREAD_TONE = 8
SPREAD_DOT = 1.5
SPREAD_PAPER = 20
SPREAD_BORDER = 6
SPREAD_AREA = 8.0
SPREAD_ROUNDS = 10


def tone_stats(regions: Regions, gray_small: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per label ``[n + 1]``: the median and the mean gray of its core, the mean size of the ink specks in
    its core (label px; 0 where it holds none: a tone's dots, a noise tone's grains) and the core's area
    (label px). ``gray_small``: the page's uint8 gray at the label resolution."""
    n = regions.count + 1
    g_all = np.asarray(gray_small)[:regions.labels.shape[0], :regions.labels.shape[1]]
    sel = regions.core & (regions.labels > 0)
    lab = regions.labels[sel].astype(np.int64)
    g = g_all[sel].astype(np.int64)
    hist = np.bincount(lab * 256 + g, minlength=n * 256).reshape(n, 256)
    area = hist.sum(axis=1)
    median = (np.cumsum(hist, axis=1) * 2 >= np.maximum(area, 1)[:, None]).argmax(axis=1)
    mean = hist @ np.arange(256) / np.maximum(area, 1)
    # The specks: ink components inside the cores; each speck's pixels weigh 1 / its size, so a region's
    # weights sum to its number of specks.
    ink = sel & (g_all < 128)
    speck, m = label(ink)
    size = np.bincount(speck.ravel(), minlength=m + 1).astype(np.float64)
    where = regions.labels[ink]
    ink_px = np.bincount(where, minlength=n)
    specks = np.bincount(where, weights=1.0 / size[speck[ink]], minlength=n)
    dot = np.where(specks > 0, ink_px / np.maximum(specks, 1e-9), 0.0)
    return median.astype(np.float64), mean, dot, area


def spread_hints(regions: Regions, gray_small: np.ndarray, ids: np.ndarray, lab: np.ndarray,
                 hinted: np.ndarray | None = None, *, rounds: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray, int]:
    """``(ids, lab, added)``: the known colors (``ids`` labels, ``lab`` ``[k, 3]``) with the ``added`` regions
    they spread to appended. A region already known keeps its color; one reached from two rows takes the one
    whose tone is closer.

    ``hinted``: per row, True for a hint's color, False for a reference's (None: every row is a hint's). A
    reference's color spreads only across a screentone (both regions holding specks of about one size: the
    two halves of a dot-toned shirt that a fold cuts apart); a gray-shaded page's neighbouring regions of one
    gray are as often two colors of one luma, and a match there is not sure enough to carry further."""
    ids = np.asarray(ids, np.int64)
    lab = np.asarray(lab, np.float32)
    rounds = SPREAD_ROUNDS if rounds is None else rounds
    dotted_only = np.zeros(len(ids), bool) if hinted is None else ~np.asarray(hinted, bool)
    if len(ids) == 0 or rounds <= 0:
        return ids, lab, 0
    n = regions.count + 1
    median, mean, dot, area = tone_stats(regions, gray_small)
    kind = regions.kind
    # Neighbours across the line between them: the regrowth leaves a line's middle pixel unlabeled where
    # two regions reach it together; two more rounds of it close such seams.
    labels = regions.labels
    for _ in range(2):
        labels = np.where(labels == 0, max_filter(labels, 3), labels)
    a, b, shared = adjacent_pairs(labels)
    keep = (shared >= SPREAD_BORDER) & (kind[a] == kind[b]) & np.isin(kind[a], (REGION, SOLID))
    a, b = a[keep], b[keep]
    if len(a) == 0:
        return ids, lab, 0
    # origin[label]: the row of the hint that reached it (-1: none yet); known: any color already set.
    origin = np.full(n, -1, np.int64)
    origin[ids] = np.arange(len(ids))
    known = np.zeros(n, bool)
    known[ids] = True
    source = ids  # each row's own region: the tone and area every spread of it is compared with
    g = np.asarray(gray_small)
    levels = np.cumsum(np.bincount(g.ravel(), minlength=256))
    paper = int(np.searchsorted(levels, 0.99 * levels[-1]))
    takes = (mean < paper - SPREAD_PAPER) & (area > 0)
    added_ids, added_rows = [], []
    for _ in range(rounds):
        row = origin[a]
        step = (row >= 0) & ~known[b] & takes[b]
        if not step.any():
            break
        row_s, dst = row[step], b[step]
        src = source[row_s]
        diff = np.maximum(np.abs(median[dst] - median[src]), np.abs(mean[dst] - mean[src]))
        # The same texture: specks of about one size (a dot tone and a noise tone of one mean gray are not
        # one tone), or none in either.
        big, little = np.maximum(dot[dst], dot[src]), np.minimum(dot[dst], dot[src])
        texture = np.where(little > 0, big <= SPREAD_DOT * little, (big == 0) & ~dotted_only[row_s])
        ok = (diff <= SPREAD_TONE) & texture & (area[dst] <= SPREAD_AREA * area[src])
        if not ok.any():
            break
        row_s, dst, diff = row_s[ok], dst[ok], diff[ok]
        order = np.lexsort((diff, dst))  # per region, the closest tone first
        dst, row_s = dst[order], row_s[order]
        first = np.ones(len(dst), bool)
        first[1:] = dst[1:] != dst[:-1]
        dst, row_s = dst[first], row_s[first]
        origin[dst] = row_s
        known[dst] = True
        added_ids.append(dst)
        added_rows.append(row_s)
    if not added_ids:
        return ids, lab, 0
    new_ids = np.concatenate(added_ids)
    new_rows = np.concatenate(added_rows)
    return np.concatenate([ids, new_ids]), np.concatenate([lab, lab[new_rows]]), len(new_ids)
