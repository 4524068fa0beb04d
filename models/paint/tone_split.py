"""Regions that hold two tones meeting without a line, split in two (``split_tones``, called by
``segmentation.segment_regions``): a noise tone above a halftone, a dot tone beside bare paper. The
segmentation's tone edges cannot see them: they measure the paper between the dots, and a dense tone is
mostly dots. Measured on held-out line art laid with its own colors: docs/MODELS.md, "Where the rest is
lost, and two tones split"."""

from __future__ import annotations

import numpy as np

from . import trapped_ball as tb
from .raster import label

# Two tones in one region (``split_tones``): the mean gray over a (2 * TONE_SPLIT_RADIUS + 1) window (two
# periods of a coarse dot tone), split in two at its Otsu threshold when the parts' means differ by the step
# and by TONE_SPLIT_SEPARATION times their spread (a gradient's halves do not), each part at least
# TONE_SPLIT_PART label px on a full-size page.
TONE_SPLIT_RADIUS = 7
TONE_SPLIT_SEPARATION = 9.0
TONE_SPLIT_PART = 600


def split_tones(labels: np.ndarray, n: int, allowed: np.ndarray, level_sum: np.ndarray, core: np.ndarray,
                 f: int, *, step: float, min_part: int) -> tuple[np.ndarray, int]:
    """Regions holding two tones that meet without a line (a noise tone above a halftone, a tone beside bare
    paper), split in two: ``(labels, parts added)``, only those ``allowed`` (per label). The tone-step edges
    cannot see them: they measure paper between the dots, and a dense tone is mostly dots. ``level_sum``:
    each label pixel's gray as a block's sum; ``core``: the regions' pixels away from the lines, where it is
    measured. Measured on a grid of 2x2 label pixels (the mean is smooth at
    this window; a quarter of the work), the parts mapped back to the label pixels of their region."""
    h, w = labels.shape
    if h < 2 or w < 2:
        return labels, 0
    h2, w2 = h // 2 * 2, w // 2 * 2

    def quarter(x: np.ndarray) -> np.ndarray:  # the sum of each 2x2 block
        return x[:h2:2, :w2:2] + x[1:h2:2, :w2:2] + x[:h2:2, 1:w2:2] + x[1:h2:2, 1:w2:2]

    r = TONE_SPLIT_RADIUS // 2
    window = 4 * (2 * r + 1) ** 2
    weight = tb.box_sum(quarter(core.view(np.uint8).astype(np.int32)), r)
    total = tb.box_sum(quarter(np.where(core, level_sum, 0).astype(np.int32)), r)
    q = np.clip(total / (np.maximum(weight, 1) * np.float64(f * f)), 0, 255).astype(np.int64)
    small = labels[:h2:2, :w2:2]
    sel = (small > 0) & (weight > window // 2)
    # Only regions that may split (allowed, room for two parts) are measured: a page has hundreds of regions.
    measured = (4 * np.bincount(small[sel], minlength=n + 1) >= 2 * min_part) & allowed
    measured[0] = False
    if not measured.any():
        return labels, 0
    ids = np.flatnonzero(measured)
    row = np.full(n + 1, -1, np.int64)
    row[ids] = np.arange(len(ids))
    sel &= measured[small]
    hist = np.bincount(row[small[sel]] * 256 + q[sel], minlength=len(ids) * 256).reshape(-1, 256).astype(np.float64)
    bins = np.arange(256, dtype=np.float64)
    w0 = np.cumsum(hist, axis=1)
    s0 = np.cumsum(hist * bins, axis=1)
    ss0 = np.cumsum(hist * bins * bins, axis=1)
    w1, s1, ss1 = w0[:, -1:] - w0, s0[:, -1:] - s0, ss0[:, -1:] - ss0
    m0, m1 = s0 / np.maximum(w0, 1), s1 / np.maximum(w1, 1)
    t = np.argmax(w0 * w1 * (m1 - m0) ** 2, axis=1)
    rows = np.arange(len(ids))
    a, b = 4 * w0[rows, t], 4 * w1[rows, t]
    mean0, mean1 = m0[rows, t], m1[rows, t]
    spread = ss0[rows, t] / np.maximum(w0[rows, t], 1) - mean0 ** 2 + ss1[rows, t] / np.maximum(w1[rows, t], 1) - mean1 ** 2
    gap = mean1 - mean0
    split = (gap > step) & (gap * gap > TONE_SPLIT_SEPARATION * np.maximum(spread, 1.0)) & (np.minimum(a, b) >= min_part)
    if not split.any():
        return labels, 0
    threshold = np.full(n + 1, 256, np.int64)
    threshold[ids[split]] = t[split]
    upper = (small > 0) & (q > threshold[small])
    # A part never runs on into the next region: where the parts of two split regions touch, cut between them.
    upper[:, 1:] &= ~(upper[:, :-1] & (small[:, 1:] != small[:, :-1]))
    upper[1:, :] &= ~(upper[:-1, :] & (small[1:, :] != small[:-1, :]))
    parts, m = label(upper)
    if m == 0:
        return labels, 0
    keep = 4 * np.bincount(parts.ravel(), minlength=m + 1) >= min_part
    keep[0] = False
    if not keep.any():
        return labels, 0
    new = np.zeros(m + 1, np.int32)
    new[keep] = np.arange(n + 1, n + 1 + int(keep.sum()), dtype=np.int32)
    ys, xs = np.nonzero(new[parts])
    part = new[parts[ys, xs]]
    # Each new part's region (a part lies in one); a block on the region's edge may hold pixels of a
    # neighbour, which stay its own.
    region = np.zeros(n + 1 + int(keep.sum()), np.int32)
    region[part] = small[ys, xs]
    for dy in (0, 1):
        for dx in (0, 1):
            y, x = 2 * ys + dy, 2 * xs + dx
            mine = labels[y, x] == region[part]
            labels[y[mine], x[mine]] = part[mine]
    return labels, int(keep.sum())
