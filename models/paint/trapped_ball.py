"""Regions that do not leak: trapped-ball filling and tone edges, in numpy (used by ``models.paint.segmentation``).

Trapped-ball filling is how line-art fill tools (LineFiller, BasicPBC's ``paint`` module) close
gaps in the ink: a ball of radius ``r`` rolled over the paper cannot pass a gap narrower than
itself, so the places it reaches from one seed form a fill that stops at every gap narrower than
``2r``. Balls of decreasing radius find the big areas first and the small ones later; the strips
the balls did not reach (corners, the gaps themselves) join the fill they border longest. Here the
rolling is vectorized: where a square ball of radius ``r`` fits is the paper minus the lines grown
by ``r`` (one separable max filter), its connected components are the fills' centres, and each fill
is its centres grown back by ``r`` (the ball's footprint), within the paper not yet filled.

Tone edges split areas of different gray level that meet without a line between them (gray-shaded
art, where colors follow the shading, not the ink): the page is smoothed over its paper and
mid-tones only (ink, letters and screentone dots do not count, so text and tones make no edges), and
pixels where the smoothed level steps by more than ``step`` across a few pixels become a barrier.
"""

from __future__ import annotations

import numpy as np

from .raster import grow, label, max_filter


def box_sum(x: np.ndarray, r: int) -> np.ndarray:
    """Sum over the ``(2r+1)^2`` window around each pixel (zero outside): exact for integer input (int32
    where the page's sums fit it, else int64), float64 otherwise. One axis at a time: ``2r`` shifted adds per
    axis for a small window, a running sum (one cumsum and one difference per axis) for a larger one; a 2-D
    cumulative table costs twice as much on a page of half a million pixels."""
    h, w = x.shape
    k = 2 * r + 1
    if x.dtype.kind in "biu":
        top = int(x.max(initial=0))
        dtype = np.int32 if top * max(h, k * w, k * k) < 2 ** 31 else np.int64
    else:
        dtype = np.float64
    if r <= 3:
        rows = np.zeros((h + 2 * r, w), dtype)
        rows[r:r + h] = x
        s = rows[:h].copy()
        for i in range(1, k):
            s += rows[i:i + h]
        cols = np.zeros((h, w + 2 * r), dtype)
        cols[:, r:r + w] = s
        out = cols[:, :w].copy()
        for i in range(1, k):
            out += cols[:, i:i + w]
        return out
    c = np.zeros((h + k, w), dtype)
    np.cumsum(x, axis=0, dtype=dtype, out=c[r + 1:r + 1 + h])
    c[r + 1 + h:] = c[r + h]
    s = c[k:] - c[:-k]
    d = np.zeros((h, w + k), dtype)
    np.cumsum(s, axis=1, dtype=dtype, out=d[:, r + 1:r + 1 + w])
    d[:, r + 1 + w:] = d[:, r + w:r + w + 1]
    return d[:, k:] - d[:, :-k]


def tone_edges(level_sum: np.ndarray, counted: np.ndarray, *, radius: int = 2, step: float = 28.0,
               reach: int = 2) -> np.ndarray:
    """Where the gray level steps by more than ``step`` without a line.

    ``level_sum``: integer ``[h, w]``, the gray level of each pixel (or of each label block as its
    sum, with ``step`` scaled alike); ``counted``: the pixels the tone is measured on (paper and
    mid-tones, not ink). The level is the mean over a ``2*radius+1`` window of counted pixels; an
    edge is where the levels ``reach`` px either side of a pixel (across rows or columns) differ
    by more than ``step``.
    """
    weight = box_sum(counted.view(np.uint8), radius)
    level = box_sum(np.where(counted, level_sum, 0), radius) / np.maximum(weight, 1).astype(np.float32)
    # Too few counted pixels (a stipple or dense tone: mostly ink and its rims) says nothing about the tone.
    known = weight > 0.6 * (2 * radius + 1) ** 2
    edges = np.zeros(level.shape, dtype=bool)
    d = reach
    for axis in (0, 1):
        a = np.swapaxes(level, 0, axis)
        k = np.swapaxes(known, 0, axis)
        e = np.swapaxes(edges, 0, axis)
        diff = np.abs(a[2 * d:] - a[:-2 * d]) > step
        diff &= k[2 * d:] & k[:-2 * d]
        e[d:-d] |= diff
    return edges & counted


def adjacent_pairs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct pairs of nonzero labels that touch (4-neighbours) and how many pixel sides they share."""
    pairs = []
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1], labels[1:])):
        m = (a != b) & (a > 0) & (b > 0)
        pairs.append(np.stack([a[m], b[m]], axis=1))
    p = np.concatenate(pairs).astype(np.int64)
    if len(p) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    p = np.concatenate([p, p[:, ::-1]])
    n = int(labels.max()) + 1
    uniq, counts = np.unique(p[:, 0] * n + p[:, 1], return_counts=True)
    return uniq // n, uniq % n, counts


# Balls of this radius and more roll on the paper at half resolution (a quarter of the pixels), with half the radius.
COARSE_RADIUS = 8


def _roll(unfilled: np.ndarray, radii: list[int], labels: np.ndarray, count: int, rank: list[int],
          first_rank: int) -> int:
    """Each ball radius in turn: fills where it fits, grown back by its radius within ``unfilled``
    (both updated in place); returns the new label count, ``rank`` extended per new label."""
    for index, r in enumerate(radii):
        centres = ~grow(~unfilled, 2 * r + 1)
        comp, m = label(centres)
        if m == 0:
            continue
        # uint16 where the labels fit: the max filter moves half the bytes (2.5x faster than int32)
        comp = comp.astype(np.uint16 if count + m < 65535 else np.int32)
        comp[comp > 0] += count
        reach = max_filter(comp, 2 * r + 1)
        reach[~unfilled] = 0
        np.copyto(labels, reach, where=reach > 0)
        unfilled &= reach == 0
        count += m
        rank += [first_rank + index] * m
    return count


def trapped_ball_labels(paper: np.ndarray, radii: tuple[int, ...], *, min_area: int = 1) -> tuple[np.ndarray, int]:
    """Label ``paper`` (bool ``[h, w]``: where fills may go) into fills that do not pass narrow gaps.

    ``radii``: ball radii in px. Returns int32 labels (0 = not paper), their count. The strips no
    ball reached join the fill they share the longest border with; where they touch no fill (a
    small enclosed area), they are fills of their own when at least ``min_area`` px.
    """
    radii = sorted(set(int(r) for r in radii if r > 0), reverse=True)
    coarse = [r for r in radii if r >= COARSE_RADIUS]
    fine = [r for r in radii if r < COARSE_RADIUS]
    h, w = paper.shape
    labels = np.zeros((h, w), dtype=np.int32)
    rank = [0]  # per label: the pass that found it (0 = largest ball)
    count = 0
    if coarse:
        # A half-resolution pixel is paper when all four of its pixels are: no gap opens by halving.
        p = np.zeros((-(-h // 2) * 2, -(-w // 2) * 2), bool)
        p[:h, :w] = paper
        half = p[::2, ::2] & p[1::2, ::2] & p[::2, 1::2] & p[1::2, 1::2]
        half_labels = np.zeros(half.shape, np.int32)
        count = _roll(half, [max(1, r // 2) for r in coarse], half_labels, count, rank, 0)
        labels = np.repeat(np.repeat(half_labels, 2, axis=0), 2, axis=1)[:h, :w]
        labels[~paper] = 0
    unfilled = paper & (labels == 0)
    count = _roll(unfilled, fine, labels, count, rank, len(coarse))
    # What no ball reached: 4-connected strips, each its own label for now.
    rest, m = label(unfilled)
    if m:
        np.copyto(labels, rest.astype(np.int32) + count, where=rest > 0)
        rank += [len(radii)] * m
        count += m
    rank_of = np.asarray(rank)
    # Merge every strip and every fill of a smaller ball into the fill of a larger ball it borders
    # longest (a corner the big ball missed, the gap itself); chains (a strip -> a small fill -> a big
    # fill) are followed to their end.
    parent = np.arange(count + 1)
    a, b, shared = adjacent_pairs(labels)
    bigger = rank_of[b] < rank_of[a]
    a, b, shared = a[bigger], b[bigger], shared[bigger]
    if len(a):
        order = np.lexsort((shared, a))
        last = np.r_[a[order][1:] != a[order][:-1], True]
        parent[a[order][last]] = b[order][last]
        for _ in range(len(radii) + 1):
            parent = parent[parent]
    merged = parent[labels]
    area = np.bincount(merged.ravel(), minlength=count + 1)
    keep = area >= min_area
    keep[0] = False
    remap = np.zeros(count + 1, dtype=np.int32)
    remap[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return remap[merged], int(keep.sum())
