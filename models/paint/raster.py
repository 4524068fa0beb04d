"""Raster primitives of the segmentation (``models.paint.segmentation``) in numpy, without scipy.

``scipy.ndimage`` costs 0.27 s of CPU to import, a quarter of a one-page colorize run
(docs/PERFORMANCE.md, "Start-up"), so its two calls here are numpy's own: :func:`max_filter` (exact,
and 8x faster: 0.45 ms against 3.7 ms for a 5x5 filter of a half-size page) and :func:`label`
(``scipy.ndimage.label``'s labels in its order, tested; on the sample chapter's masks 1.1 ms a call
against scikit-image's compiled labeling's 3.4 and scipy's 1.1; a dense screentone 1.2x scikit-image's).
"""

from __future__ import annotations

import numpy as np


def label_spans(mask: np.ndarray, extent: int, eight: bool = False) -> tuple[np.ndarray, int, np.ndarray]:
    """:func:`label`, and per component (index 0 False) whether its bounding box spans at least ``extent`` px
    (rows or columns), measured on the mask's runs: no pass over the labeled page."""
    labels, n, (run_label, row, first, last) = _label_runs(mask, eight)
    spans = np.zeros(n + 1, bool)
    if n:
        box = _run_boxes(row, first, last, run_label, n + 1)
        spans = np.maximum(box[:, 1] - box[:, 0], box[:, 3] - box[:, 2]) + 1 >= extent
        spans[0] = False
    return labels, n, spans


def boxes_of(ys: np.ndarray, xs: np.ndarray, ids: np.ndarray, count: int) -> np.ndarray:
    """``[count, 4]`` (row min, row max, col min, col max) of the pixels ``(ys, xs)`` by their ``ids``."""
    box = np.empty((count, 4), dtype=np.int64)
    box[:, 0] = box[:, 2] = 1 << 40
    box[:, 1] = box[:, 3] = -1
    np.minimum.at(box[:, 0], ids, ys)
    np.maximum.at(box[:, 1], ids, ys)
    np.minimum.at(box[:, 2], ids, xs)
    np.maximum.at(box[:, 3], ids, xs)
    return box


def label_boxes(labels: np.ndarray, count: int, select: np.ndarray) -> np.ndarray:
    """:func:`boxes_of` of every pixel of the labels ``select`` picks (per label, ``[count]``) in a label map,
    read from its horizontal runs: a few tens of thousands of runs instead of every pixel of large regions."""
    h, w = labels.shape
    flat = labels.ravel()
    starts = np.union1d(np.flatnonzero(flat[1:] != flat[:-1]) + 1, np.arange(0, h * w, w))
    ids = flat[starts]
    keep = select[ids]
    starts, ends = starts[keep], (np.r_[starts[1:], h * w] - 1)[keep]
    rows = starts // w
    return _run_boxes(rows, starts - rows * w, ends - rows * w, ids[keep], count)


def _run_boxes(row: np.ndarray, first: np.ndarray, last: np.ndarray, ids: np.ndarray, count: int) -> np.ndarray:
    """:func:`boxes_of` of horizontal runs (``row``, ``first`` to ``last`` column): a run's end pixels bound
    it, so each run stands twice, at its first and its last column."""
    return boxes_of(np.r_[row, row], np.r_[first, last], np.r_[ids, ids], count)


def label(mask: np.ndarray, eight: bool = False) -> tuple[np.ndarray, int]:
    """Connected components of a 2-D bool mask, 4- or 8-connected: int32 labels 1..n numbered in raster
    order of each component's first pixel (0 = background), and n; ``scipy.ndimage.label``'s result.

    Union-find over the mask's horizontal runs, all in array operations: each run joins the runs of the
    next row it touches, then trees are merged by pointing roots at smaller roots until none changes.
    """
    labels, n, _ = _label_runs(mask, eight)
    return labels, n


_NO_RUNS = (np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))


def _label_runs(mask: np.ndarray, eight: bool):
    """label's work: ``(labels, n, (each run's label, row, first column, last column))``."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"label takes a 2-D mask, got shape {mask.shape}")
    h, w = mask.shape
    if mask.size == 0:
        return np.zeros((h, w), np.int32), 0, _NO_RUNS
    k = w + 1  # each row and a False column after it: a run never reaches into the next row
    padded = np.zeros((h, k), bool)
    padded[:, :w] = mask
    flat = padded.ravel()
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1  # a run's first key, then the key one past its end
    if flat[0]:
        change = np.concatenate(([0], change))
    if change.size == 0:
        return np.zeros((h, w), np.int32), 0, _NO_RUNS
    start, end = change[0::2], change[1::2]  # keys row * k + column, in raster order
    n = start.size
    # The runs of the next row that touch run i are a contiguous range [lo, lo + count) of the runs.
    reach = 1 if eight else 0
    lo = np.searchsorted(end, start + k - reach, side="right")
    count = np.searchsorted(start, end + k + reach, side="left") - lo
    above, below = [], []
    a = np.flatnonzero(count > 0)
    b, left = lo[a], count[a]
    while a.size:  # most runs touch one or two below: a pass per extra touch, never a loop per run
        above.append(a)
        below.append(b)
        more = left > 1
        a, b, left = a[more], b[more] + 1, left[more] - 1
    parent = np.arange(n)
    if above:
        a, b = np.concatenate(above), np.concatenate(below)
        np.minimum.at(parent, b, a)  # each run hangs from the first run above it that it touches
        while True:
            up = parent[parent]
            while not np.array_equal(up, parent):  # point every run at its tree's root
                parent, up = up, up[up]
            pa, pb = parent[a], parent[b]
            differ = pa != pb
            if not differ.any():
                break
            a, b, pa, pb = a[differ], b[differ], pa[differ], pb[differ]
            np.minimum.at(parent, np.maximum(pa, pb), np.minimum(pa, pb))  # a root joins a smaller root
    # Roots only ever point lower, so a component's root is its first run: numbering roots in run order
    # is numbering components by their first pixel, as scipy does.
    root = parent == np.arange(n)
    labels = np.cumsum(root, dtype=np.int32)[parent]
    row = start // k
    bounds = np.empty(2 * n + 2, np.int64)  # gap, run, gap, ..., run, gap: as positions of the unpadded page
    bounds[0], bounds[-1] = 0, h * w
    bounds[1:-1:2], bounds[2:-1:2] = start - row, end - row
    values = np.zeros(2 * n + 1, np.int32)
    values[1::2] = labels
    return np.repeat(values, np.diff(bounds)).reshape(h, w), int(root.sum()), (labels, row, start - row * k, end - 1 - row * k)


def max_filter(x: np.ndarray, size: int) -> np.ndarray:
    """A ``size x size`` (odd) maximum filter of a 2-D array, borders taking the max over the window inside
    the array: ``scipy.ndimage.maximum_filter(x, size)`` exactly (its ``reflect`` border repeats values
    already in the window), as two separable passes of shifted ``np.maximum`` (8x faster at size 3-5)."""
    r = size // 2
    if r == 0:
        return x.copy()
    out = x
    for axis in (0, 1):
        src, out = out, out.copy()
        for d in range(1, r + 1):
            if axis == 0:
                np.maximum(out[d:], src[:-d], out=out[d:])
                np.maximum(out[:-d], src[d:], out=out[:-d])
            else:
                np.maximum(out[:, d:], src[:, :-d], out=out[:, d:])
                np.maximum(out[:, :-d], src[:, d:], out=out[:, :-d])
    return out


def grow(mask: np.ndarray, size: int) -> np.ndarray:
    """Binary dilation by a ``size x size`` square (a separable max filter: 5x faster than binary_dilation)."""
    return max_filter(mask.view(np.uint8), size).view(bool)
