"""Region tokens: what the region model (``models.regionhead``) reads of each region of a page.

One row per label (``[n + 1, TOKEN_FEATURES]``, row 0 the ink), built from three things the colorize
path already has: the page's segmentation (``models.paint.segmentation.Regions``), its 8-bit gray at
the label resolution, and the pixel model's working-size prediction (ab in Lab units and its
confidence). Pooling is by ``np.bincount`` over each region's core (its pixels away from the lines),
so a 1200x1700 page with a thousand regions costs a few milliseconds. numpy only.

Features, in order (``FEATURE_NAMES``):

* the prediction inside the region: its confidence-weighted mean ab and the plain mean (/ 50), the
  spread of ab around the weighted mean (/ 50), the mean chroma (/ 50), the mean confidence, and
  the share of the region's pixels predicting each of ``HUE_SECTORS`` hue sectors with chroma
  above ``SECTOR_CHROMA`` (what the model would say if it committed, and how split it is);
* the page inside the region: the median gray of its core, the mean and spread of all its pixels
  (tones make the mean darker than the core's paper), the share of dark pixels (a tone's density);
* where it is: log of its area share of the page, its centroid (x, y in [0, 1]), its bounding box
  (width, height in [0, 1]) and how much of the box it fills, whether it touches the page border;
* what the segmentation called it: region, paper, balloon, solid black (one-hot), whether it has a
  core.
"""

from __future__ import annotations

import numpy as np

from .regions import BALLOON, PAPER, REGION, SOLID, Regions, label_to_map

HUE_SECTORS = 12
SECTOR_CHROMA = 6.0
AB_SCALE = 50.0
DARK_LEVEL = 128

FEATURE_NAMES = (
    ["a_weighted", "b_weighted", "a_mean", "b_mean", "ab_spread", "chroma_mean", "confidence"]
    + [f"hue_{k}" for k in range(HUE_SECTORS)]
    + ["gray_core", "gray_mean", "gray_spread", "dark_share"]
    + ["log_area", "cx", "cy", "box_w", "box_h", "box_fill", "at_border"]
    + ["is_region", "is_paper", "is_balloon", "is_solid", "has_core"]
)
TOKEN_FEATURES = len(FEATURE_NAMES)
# What is known of a region's color before the model speaks (a hint's or a reference's), appended to its
# token for the region model (``with_known``): known (0/1), its a and b (/ AB_SCALE). Unknown regions read
# the known ones' colors through the model's attention: a hint on one region tells the model about the rest.
KNOWN_NAMES = ("known", "known_a", "known_b")
HEAD_FEATURES = TOKEN_FEATURES + len(KNOWN_NAMES)


def _median_per_label(ids: np.ndarray, values: np.ndarray, n: int, default: float) -> np.ndarray:
    """The median of ``values`` per label ``0..n`` (``default`` where a label has none)."""
    out = np.full(n + 1, default, np.float32)
    if len(ids) == 0:
        return out
    order = np.lexsort((values, ids))
    ids, values = ids[order], values[order]
    labels, start, count = np.unique(ids, return_index=True, return_counts=True)
    out[labels] = values[start + (count - 1) // 2]
    return out


def region_tokens(regions: Regions, gray_small: np.ndarray, ab, confidence=None) -> np.ndarray:
    """Each label's token, ``[n + 1, TOKEN_FEATURES]`` float32.

    ``gray_small``: the page's uint8 gray at the label resolution (``gray[::f, ::f]``, the labels'
    shape); ``ab``: the model's chroma ``[2,h,w]``/``[1,2,h,w]`` in Lab units at the working size;
    ``confidence``: ``[h,w]`` (any leading ones) in [0, 1], or None (then 1 everywhere).
    """
    labels = regions.labels
    n = regions.count
    lh, lw = labels.shape
    gray_small = np.asarray(gray_small)[:lh, :lw]
    ab = np.asarray(ab, np.float32)
    while ab.ndim > 3:
        ab = ab[0]
    conf = None if confidence is None else np.asarray(confidence, np.float32)
    while conf is not None and conf.ndim > 2:
        conf = conf[0]
    tokens = np.zeros((n + 1, TOKEN_FEATURES), np.float32)
    col = {name: i for i, name in enumerate(FEATURE_NAMES)}

    # Geometry and gray, over every pixel of each region.
    flat = labels.ravel().astype(np.intp)
    area = np.bincount(flat, minlength=n + 1).astype(np.float64)
    safe_area = np.maximum(area, 1.0)
    tokens[:, col["log_area"]] = np.log(safe_area / labels.size)
    col_sum = np.bincount(flat, weights=np.broadcast_to(np.arange(lw, dtype=np.float64), (lh, lw)).ravel(), minlength=n + 1)
    row_sum = np.bincount(flat, weights=np.repeat(np.arange(lh, dtype=np.float64), lw), minlength=n + 1)
    tokens[:, col["cx"]] = col_sum / safe_area / max(lw - 1, 1)
    tokens[:, col["cy"]] = row_sum / safe_area / max(lh - 1, 1)
    # Bounding boxes from per-label presence tables of columns and rows (no per-pixel ufunc.at).
    in_col = np.zeros((n + 1, lw), bool)
    in_col[labels, np.arange(lw)[None, :]] = True
    in_row = np.zeros((n + 1, lh), bool)
    in_row[labels, np.arange(lh)[:, None]] = True
    x0, x1 = in_col.argmax(1), lw - 1 - in_col[:, ::-1].argmax(1)
    y0, y1 = in_row.argmax(1), lh - 1 - in_row[:, ::-1].argmax(1)
    bw, bh = np.maximum(x1 - x0 + 1, 1), np.maximum(y1 - y0 + 1, 1)
    tokens[:, col["box_w"]] = bw / lw
    tokens[:, col["box_h"]] = bh / lh
    tokens[:, col["box_fill"]] = area / (bw * bh)
    tokens[:, col["at_border"]] = ((x0 == 0) | (y0 == 0) | (x1 == lw - 1) | (y1 == lh - 1)).astype(np.float32)
    hist = np.bincount(flat * 256 + gray_small.ravel(), minlength=(n + 1) * 256).reshape(n + 1, 256)
    levels = np.arange(256, dtype=np.float64) / 255.0
    gmean = hist @ levels / safe_area
    gsq = hist @ (levels * levels) / safe_area
    tokens[:, col["gray_mean"]] = gmean
    tokens[:, col["gray_spread"]] = np.sqrt(np.maximum(gsq - gmean * gmean, 0.0))
    tokens[:, col["dark_share"]] = hist[:, :DARK_LEVEL].sum(1) / safe_area

    # The prediction and the paper, over each region's core (every pixel of a region without one).
    # Every other pixel of each way (a quarter of them), and every pixel of the small regions that grid misses.
    core = regions.core
    has_core = np.bincount(labels[core].ravel().astype(np.intp), minlength=n + 1) > 0
    take = core | ~has_core[labels]
    grid = np.zeros_like(take)
    grid[::2, ::2] = True
    sparse = take & grid
    missed = np.bincount(labels[sparse].ravel().astype(np.intp), minlength=n + 1) == 0
    missed[0] = False
    if missed.any():
        sparse |= take & missed[labels]
    cy_, cx_ = np.nonzero(sparse)
    ids = labels[cy_, cx_].astype(np.intp)
    core_hist = np.cumsum(np.bincount(ids * 256 + gray_small[cy_, cx_], minlength=(n + 1) * 256).reshape(n + 1, 256), 1)
    half = (core_hist[:, -1] + 1) // 2
    median = (core_hist < np.maximum(half, 1)[:, None]).sum(1)
    tokens[:, col["gray_core"]] = np.where(core_hist[:, -1] > 0, median, 255) / 255.0
    rows, cols = label_to_map(regions, ab.shape[-2:])
    ry, rx = rows[cy_], cols[cx_]
    a = ab[0][ry, rx].astype(np.float64)
    b = ab[1][ry, rx].astype(np.float64)
    w = np.ones_like(a) if conf is None else np.clip(conf[ry, rx].astype(np.float64), 0.0, 1.0)
    count = np.maximum(np.bincount(ids, minlength=n + 1).astype(np.float64), 1.0)
    wsum = np.maximum(np.bincount(ids, weights=w, minlength=n + 1), 1e-9)
    wa = np.bincount(ids, weights=w * a, minlength=n + 1) / wsum
    wb = np.bincount(ids, weights=w * b, minlength=n + 1) / wsum
    tokens[:, col["a_weighted"]] = wa / AB_SCALE
    tokens[:, col["b_weighted"]] = wb / AB_SCALE
    tokens[:, col["a_mean"]] = np.bincount(ids, weights=a, minlength=n + 1) / count / AB_SCALE
    tokens[:, col["b_mean"]] = np.bincount(ids, weights=b, minlength=n + 1) / count / AB_SCALE
    d2 = (a - wa[ids]) ** 2 + (b - wb[ids]) ** 2
    tokens[:, col["ab_spread"]] = np.sqrt(np.bincount(ids, weights=d2, minlength=n + 1) / count) / AB_SCALE
    chroma = np.hypot(a, b)
    tokens[:, col["chroma_mean"]] = np.bincount(ids, weights=chroma, minlength=n + 1) / count / AB_SCALE
    tokens[:, col["confidence"]] = np.bincount(ids, weights=w, minlength=n + 1) / count
    sector = (np.floor((np.arctan2(b, a) + np.pi) / (2 * np.pi) * HUE_SECTORS).astype(np.intp)) % HUE_SECTORS
    colored = chroma > SECTOR_CHROMA
    hist = np.bincount(ids[colored] * HUE_SECTORS + sector[colored], minlength=(n + 1) * HUE_SECTORS)
    tokens[:, col["hue_0"]:col["hue_0"] + HUE_SECTORS] = hist.reshape(n + 1, HUE_SECTORS) / count[:, None]

    kind = regions.kind
    tokens[:, col["is_region"]] = kind == REGION
    tokens[:, col["is_paper"]] = kind == PAPER
    tokens[:, col["is_balloon"]] = kind == BALLOON
    tokens[:, col["is_solid"]] = kind == SOLID
    tokens[:, col["has_core"]] = has_core
    tokens[0] = 0.0
    return tokens


def with_known(tokens: np.ndarray, ids=None, ab=None) -> np.ndarray:
    """Tokens ``[n + 1, TOKEN_FEATURES]`` (or ``[..., TOKEN_FEATURES]``) -> ``[..., HEAD_FEATURES]``, the labels
    ``ids`` known to be ``ab`` (``[k, 2]``, Lab units); None: nothing known."""
    out = np.zeros(tokens.shape[:-1] + (len(KNOWN_NAMES),), np.float32)
    if ids is not None and len(ids):
        ids = np.asarray(ids, np.intp)
        out[ids, 0] = 1.0
        out[ids, 1:] = np.asarray(ab, np.float32) / AB_SCALE
    return np.concatenate([np.asarray(tokens, np.float32), out], axis=-1)


def region_targets(regions: Regions, lab_small: np.ndarray) -> np.ndarray:
    """Each label's true ab (``[n + 1, 2]`` float32, Lab units): the per-channel median of the target's
    ab over the region's core (every pixel without one). ``lab_small``: the target page's Lab at the
    label resolution, ``[lh, lw, 3]``."""
    labels = regions.labels
    n = regions.count
    lh, lw = labels.shape
    lab_small = np.asarray(lab_small, np.float32)[:lh, :lw]
    core = regions.core
    has_core = np.bincount(labels[core].ravel().astype(np.intp), minlength=n + 1) > 0
    take = core | ~has_core[labels]
    cy, cx = np.nonzero(take)
    ids = labels[cy, cx].astype(np.intp)
    out = np.zeros((n + 1, 2), np.float32)
    out[:, 0] = _median_per_label(ids, lab_small[cy, cx, 1], n, 0.0)
    out[:, 1] = _median_per_label(ids, lab_small[cy, cx, 2], n, 0.0)
    out[0] = 0.0
    return out


# ---------------------------------------------------------------- decoding the region model's distributions
# vivid's mode is taken on the distribution smoothed by a Gaussian of this width (ab units), so mass
# spread over neighbouring bins of one hue counts as one color.
MODE_SMOOTHING = 10.0
# A region's confidence: the probability mass within this ab distance of its decoded color.
CONFIDENCE_RADIUS = 20.0
# safe's price of chroma: a color is chosen over a grayer one only where it is this much nearer the
# distribution per unit of chroma (a wrong strong color costs the page more than the ab distance says:
# paper darkens to hold it). Chosen on training-split pages (docs/MODELS.md, "The region model").
SAFE_CAUTION = 0.2
# vivid's chroma: its mode scaled by this much (never past the strongest bin's chroma). A distribution's
# mode sits between the bins of one hue, so the colors came out paler than the targets' (63% of their
# colorfulness on training-split pages); the smallest of 1.2, 1.35 and 1.5 that takes those pages past 80%
# (docs/MODELS.md, "vivid's chroma").
VIVID_SCALE = 1.35


_TABLES: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}


def _bin_tables(bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bins' pairwise ab distances and vivid's smoothing kernel, made once per set of bins (float64)."""
    key = bins.tobytes()
    if key not in _TABLES:
        dist = np.sqrt(((bins[:, None, :] - bins[None, :, :]) ** 2).sum(-1))
        _TABLES[key] = dist, np.exp(-dist ** 2 / (2 * MODE_SMOOTHING ** 2))
    return _TABLES[key]


def decode(probs: np.ndarray, bins: np.ndarray, palette: str = "safe",
           caution: float | None = None, vivid_scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per region, one ab (Lab units) from its distribution over the ab bins, and the probability mass
    near it: ``(ab [N, 2] float32, confidence [N] float32)``.

    ``probs``: ``[N, Q]`` (rows sum to 1); ``bins``: ``[Q, 2]``. ``palette``: ``safe``, the bin whose
    expected ab distance to the distribution is least (its geometric median: gray where the mass is
    split between opposite hues, the color where most of it agrees), each candidate's chroma priced at
    ``caution`` (default SAFE_CAUTION); ``vivid``, the most likely color (the mode of the distribution
    smoothed by MODE_SMOOTHING), its chroma scaled by ``vivid_scale`` (default VIVID_SCALE; 1: the mode
    itself, as training's validation measures the model). ``confidence`` is measured around the chosen bin.
    """
    probs = np.asarray(probs, np.float64)
    bins = np.asarray(bins, np.float64)
    dist, smoothing = _bin_tables(bins)
    if palette == "safe":
        price = (SAFE_CAUTION if caution is None else float(caution)) * np.hypot(bins[:, 0], bins[:, 1])
        choice = np.argmin(probs @ dist + price[None, :], axis=1)
    elif palette == "vivid":
        choice = np.argmax(probs @ smoothing, axis=1)
    else:
        raise ValueError(f"palette must be safe or vivid, got {palette!r}")
    confidence = (probs * (dist[choice] <= CONFIDENCE_RADIUS)).sum(1)
    ab = bins[choice]
    scale = VIVID_SCALE if vivid_scale is None else float(vivid_scale)
    if palette == "vivid" and scale != 1.0:
        chroma = np.hypot(ab[:, 0], ab[:, 1])
        top = np.hypot(bins[:, 0], bins[:, 1]).max()  # never beyond the strongest color the model knows
        ab = ab * (np.minimum(scale * chroma, top) / np.maximum(chroma, 1e-9))[:, None]
    return ab.astype(np.float32), confidence.astype(np.float32)
