"""The "flat" color fill a colorist would lay in a page's regions (docs/ARCHITECTURE.md, "Color").

Every region (``models.paint.segmentation``: areas enclosed by ink, paper, balloons, solid blacks) takes one
color: :func:`region_colors` turns a model's per-pixel chroma ``ab`` (and, where the model gives one,
its confidence) into one color per region, :func:`hint_colors` reads a hint image's color for the
regions it touches, :func:`known_colors` joins them to a reference's; the compose lays the per-region
table on the page (``models.paint.fills.flat_colors``, ``compose_cpu``, ``compose``). numpy only.

Confidence interface: a model gives ``ab`` ``[B,2,h,w]`` in Lab units and optionally a
``confidence`` ``[B,1,h,w]`` in [0, 1] (a classification model: the peak probability of its ab
distribution). Models without one pass ``None``: every pixel then weighs the same and a region's
agreement (how much its pixels point the same way in ab) stands in for the confidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cie import srgb8_to_lab
from .trapped_ball import box_sum
# The segmentation's names, read from here by the compose and the engine (one place to import regions from).
from .segmentation import (BALLOON, PAPER, REGION, SOLID, Regions, label_factor, segment_regions,  # noqa: F401
                           upsample_blocks)


# ---------------------------------------------------------------- one color per region
# A region's color is measured with Cauchy weights of this scale (Lab units): pixels predicting a
# different color than the region's majority count little, so a region split between two
# predicted colors takes the larger one instead of their brownish mean.
ROBUST_SCALE = 12.0
ROBUST_ROUNDS = 3
# Below MIN_CHROMA a region stays neutral, above FULL_CHROMA it takes its full color (Lab units).
MIN_CHROMA = 5.0
FULL_CHROMA = 9.0
# Confidence (the model's, or without one the region's agreement: |mean ab| / mean |ab|) below
# which a region stays neutral, and above which it takes its full color.
MIN_CONFIDENCE = 0.25
FULL_CONFIDENCE = 0.45


# Palettes (``colorize --palette``): ``safe`` colors a region only where the model is sure (the fades
# above); ``vivid`` commits every region that is not paper, a balloon or solid black to its robust color,
# its chroma scaled by VIVID_CHROMA up to VIVID_MAX_CHROMA: the default model's annealed-mean colors are
# pale. Measured on the five validation sets (docs/MODELS.md, "Palettes"): 2.5 keeps CIEDE2000 within
# 10% of the gray page on each, 3 does not on val_gray.
PALETTES = ("safe", "vivid")
DEFAULT_PALETTE = "safe"
VIVID_CHROMA = 2.5
VIVID_MAX_CHROMA = 60.0


def check_palette(palette: str) -> str:
    if palette not in PALETTES:
        raise ValueError(f"palette must be one of {', '.join(PALETTES)}, got {palette!r}")
    return palette


def vivid(ab: np.ndarray, axis: int = 0) -> np.ndarray:
    """Chroma scaled by VIVID_CHROMA, up to VIVID_MAX_CHROMA (hue kept); ``axis``: where a and b are."""
    ab = np.asarray(ab, dtype=np.float32)
    chroma = np.sqrt((ab * ab).sum(axis=axis, keepdims=True))
    scale = np.minimum(np.float32(VIVID_CHROMA), np.float32(VIVID_MAX_CHROMA) / np.maximum(chroma, np.float32(1e-6)))
    return ab * scale


def _as_ab(ab) -> np.ndarray:
    ab = np.asarray(ab, dtype=np.float32)
    if ab.ndim == 4:
        ab = ab[0]
    if ab.ndim != 3 or ab.shape[0] != 2:
        raise ValueError(f"ab must be [2,h,w] or [1,2,h,w], got {ab.shape}")
    return ab


def _as_confidence(confidence) -> np.ndarray | None:
    if confidence is None:
        return None
    c = np.asarray(confidence, dtype=np.float32)
    while c.ndim > 2:
        c = c[0]
    return c


def label_to_map(regions: Regions, map_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """For each label row and column, the nearest row/column of a working-size map covering the page."""
    H, W = regions.shape
    lh, lw = regions.labels.shape
    f = regions.factor
    h, w = map_shape
    rows = np.minimum(((np.arange(lh) + 0.5) * f * h / H).astype(np.intp), h - 1)
    cols = np.minimum(((np.arange(lw) + 0.5) * f * w / W).astype(np.intp), w - 1)
    return rows, cols


def _ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((x - lo) / max(hi - lo, 1e-6), 0.0, 1.0)


def region_colors(regions: Regions, ab, confidence=None, *, palette: str = DEFAULT_PALETTE,
                  min_chroma: float = MIN_CHROMA, full_chroma: float = FULL_CHROMA,
                  min_confidence: float = MIN_CONFIDENCE, full_confidence: float = FULL_CONFIDENCE) -> np.ndarray:
    """One ab per label, ``[n + 1, 2]`` float32 (Lab units; row 0 and neutral kinds are 0).

    ``ab``: the model's chroma ``[2,h,w]`` or ``[1,2,h,w]`` at working size (covering the page);
    ``confidence``: ``[h,w]``/``[1,1,h,w]`` in [0, 1] or None. Each region's color is a
    confidence-weighted robust mean (Cauchy-weighted, ROBUST_ROUNDS rounds from the weighted mean)
    of the prediction over the region's core (its pixels away from the lines, where predictions
    do not bleed across). It fades to neutral where the prediction is weak: low chroma, low
    confidence, or (no confidence given) pixels that disagree on the hue. ``palette="vivid"``: no fade,
    and the chroma scaled up (:func:`vivid`).
    """
    if check_palette(palette) == "vivid":
        min_chroma = full_chroma = min_confidence = full_confidence = 0.0
    ab = _as_ab(ab)
    conf = _as_confidence(confidence)
    n = regions.count
    # Measured on every other pixel of each region's core (a quarter of them, 4x cheaper), and on
    # every pixel of the few small regions that grid misses.
    grid = np.zeros_like(regions.core)
    grid[::2, ::2] = True
    take = regions.core & grid
    missed = np.bincount(regions.labels[take], minlength=n + 1) == 0
    missed[0] = False
    if missed.any():
        take |= regions.core & missed[regions.labels]
    ys, xs = np.nonzero(take)
    ids = regions.labels[ys, xs].astype(np.intp)
    rows, cols = label_to_map(regions, ab.shape[-2:])
    ry, cx = rows[ys], cols[xs]
    a = ab[0][ry, cx].astype(np.float64)
    b = ab[1][ry, cx].astype(np.float64)
    base = np.ones_like(a) if conf is None else np.clip(conf[ry, cx].astype(np.float64), 0.0, 1.0)
    count = np.bincount(ids, minlength=n + 1).astype(np.float64)
    wsum = np.bincount(ids, weights=base, minlength=n + 1)
    ma = np.bincount(ids, weights=base * a, minlength=n + 1) / np.maximum(wsum, 1e-12)
    mb = np.bincount(ids, weights=base * b, minlength=n + 1) / np.maximum(wsum, 1e-12)
    for _ in range(ROBUST_ROUNDS):
        d2 = (a - ma[ids]) ** 2 + (b - mb[ids]) ** 2
        wt = base / (1.0 + d2 / ROBUST_SCALE ** 2)
        ws = np.maximum(np.bincount(ids, weights=wt, minlength=n + 1), 1e-12)
        ma = np.bincount(ids, weights=wt * a, minlength=n + 1) / ws
        mb = np.bincount(ids, weights=wt * b, minlength=n + 1) / ws
    chroma = np.hypot(ma, mb)
    if conf is None:
        # Agreement: 1 when every pixel predicts the same hue, near 0 when the hues cancel out.
        magnitude = np.bincount(ids, weights=np.hypot(a, b), minlength=n + 1) / np.maximum(count, 1)
        mean_conf = np.hypot(np.bincount(ids, weights=a, minlength=n + 1),
                             np.bincount(ids, weights=b, minlength=n + 1)) / np.maximum(count, 1)
        mean_conf = mean_conf / np.maximum(magnitude, 1e-6)
    else:
        mean_conf = wsum / np.maximum(count, 1)
    strength = _ramp(chroma, min_chroma, full_chroma) * _ramp(mean_conf, min_confidence, full_confidence)
    colors = np.stack([ma * strength, mb * strength], axis=1).astype(np.float32)
    if palette == "vivid":
        colors = vivid(colors, axis=1)
    colors[regions.neutral] = 0.0
    return colors


def saturate(ab, factor: float):
    """Scale chroma by ``factor`` (0 = gray, 1 = as predicted, at most 2); works on numpy arrays and tensors."""
    factor = float(factor)
    if not 0.0 <= factor <= 2.0:
        raise ValueError(f"saturation must be between 0 and 2, got {factor}")
    return ab if factor == 1.0 else ab * factor


# ---------------------------------------------------------------- hints
@dataclass
class Known:
    """Colors known ahead for some of a page's regions: ``ids`` (labels) and their ``lab`` ``[k, 3]``,
    from hints and references (:func:`known_colors`); the compose lays them as it lays a hint image's.
    ``from_hints``/``from_references``: how many regions each source gave; ``hinted``: per row, True
    where the color is a hint's or was spread to a toned neighbour (``spread.spread_hints``), both laid over a
    descreened tone (:func:`descreen_ids`); False for a reference's own match (None: every row is a hint's)."""

    ids: np.ndarray
    lab: np.ndarray
    from_hints: int = 0
    from_references: int = 0
    hinted: np.ndarray | None = None


def known_colors(regions: Regions, hints=None, references=None) -> Known:
    """Hints win over references: the colors of a hint image (see :func:`hint_colors`) and of reference
    matches (``references``: ``(ids, lab)``, e.g. ``models.paint.references.match``), one per region."""
    table: dict[int, np.ndarray] = {}
    n_ref = 0
    if references is not None:
        ids, lab = references
        for i, c in zip(np.asarray(ids).tolist(), np.asarray(lab, np.float32)):
            table[int(i)] = c
        n_ref = len(table)
    n_hint = 0
    hinted_ids: set[int] = set()
    if hints is not None:
        ids, lab = hint_colors(regions, hints)
        for i, c in zip(ids.tolist(), lab):
            if int(i) in table:
                n_ref -= 1
            table[int(i)] = c
        n_hint = len(ids)
        hinted_ids = set(ids.tolist())
    keys = np.array(sorted(table), dtype=np.int64)
    lab = np.stack([table[k] for k in keys.tolist()]).astype(np.float32) if len(keys) else np.zeros((0, 3), np.float32)
    hinted = np.array([k in hinted_ids for k in keys.tolist()], dtype=bool)
    return Known(keys, lab, from_hints=n_hint, from_references=n_ref, hinted=hinted)


def descreen_ids(hints, ids: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """The known regions whose tone :func:`descreened` smooths: hints' colors with their own lightness
    (a reference's colors keep the page's tone: smoothing them costs more CPU than it gains, measured)."""
    own = ~np.isnan(lab[:, 0])
    hinted = getattr(hints, "hinted", None)
    return ids[own & hinted] if hinted is not None and len(hinted) == len(ids) else ids[own]


def hint_colors(regions: Regions, hints) -> tuple[np.ndarray, np.ndarray]:
    """The regions a hint image touches and the color each takes: ``(labels [k], Lab [k, 3])``.

    ``hints`` may also be a :class:`Known` of this page's regions (returned as it is).

    ``hints``: ``HxWx4`` RGBA (uint8) of the page's size, transparent (alpha 0) except the
    scribbles. A scribble counts where it lies on a region's core (a stroke that slips over a line
    does not color the region beyond it); a hint that touches no core at all (a dot on a line)
    counts where it is. A region touched by several colors takes their per-channel median.
    """
    if isinstance(hints, Known):
        return hints.ids, hints.lab
    hints = np.asarray(hints)
    if hints.ndim != 3 or hints.shape[2] != 4:
        raise ValueError(f"hints must be an HxWx4 RGBA image, got shape {hints.shape}")
    coarse = is_hint_map(hints.shape[:2], regions.shape)
    if coarse:
        hints = scale_hint_map(hints, regions.shape)
    elif hints.shape[:2] != tuple(regions.shape):
        raise ValueError(f"hints are {hints.shape[1]}x{hints.shape[0]}, the page is "
                         f"{regions.shape[1]}x{regions.shape[0]}")
    if hints.dtype != np.uint8:
        hints = np.clip(np.asarray(hints, dtype=np.float64) * (255.0 if hints.dtype.kind == "f" else 1.0) + 0.5,
                        0, 255).astype(np.uint8)
    ys, xs = np.nonzero(hints[..., 3])
    empty = np.zeros(0, dtype=np.int64), np.zeros((0, 3), dtype=np.float32)
    if len(ys) == 0:
        return empty
    f = regions.factor
    ly, lx = ys // f, xs // f
    on_core = regions.core[ly, lx]
    if on_core.any():
        ys, xs, ly, lx = ys[on_core], xs[on_core], ly[on_core], lx[on_core]
    ids = regions.labels[ly, lx].astype(np.int64)
    keep = ids > 0
    if not keep.any():
        return empty
    ids, ys, xs = ids[keep], ys[keep], xs[keep]
    rgb = hints[ys, xs, :3]
    # Per region, the median of each channel: a scribble's own color, whatever its anti-aliased rim, and
    # the middle of a gradient where the hint image is a painting.
    order = np.argsort(ids, kind="stable")
    ids, rgb = ids[order], rgb[order]
    regions_hit, start, count = np.unique(ids, return_index=True, return_counts=True)
    out = np.empty((len(regions_hit), 3), np.uint8)
    for c in range(3):
        by_value = np.lexsort((rgb[:, c], ids))
        out[:, c] = rgb[by_value, c][start + (count - 1) // 2]
    lab = srgb8_to_lab(out)
    if coarse:
        lab[:, 0] = np.nan  # a hint map's pixel averages lines and paper: its hue and chroma count, not its lightness
    return regions_hit, lab


def is_hint_map(hint_shape: tuple[int, int], page_shape: tuple[int, int]) -> bool:
    """A hint image at most half the page's size each way is a *hint map* (e.g. the 64x64 maps of user-guided
    colorization and of the Hint-AUC protocol): scaled to the page, it gives hue and chroma, and the page
    keeps its own lightness (each of its pixels covers lines and paper alike)."""
    return 2 * hint_shape[0] <= page_shape[0] and 2 * hint_shape[1] <= page_shape[1]


def hint_map_index(map_shape: tuple[int, int], page_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """For each row and column of the page, the hint map's row and column covering it (nearest neighbour)."""
    (h, w), (H, W) = map_shape[:2], page_shape
    return np.minimum(np.arange(H) * h // H, h - 1), np.minimum(np.arange(W) * w // W, w - 1)


def scale_hint_map(hints: np.ndarray, page_shape: tuple[int, int]) -> np.ndarray:
    """A hint map scaled to ``page_shape`` by nearest neighbour (each map pixel a block of the page)."""
    rows, cols = hint_map_index(hints.shape, page_shape)
    return hints[rows][:, cols]


def paper_levels(regions: Regions, gray: np.ndarray, ids: np.ndarray, *, thin: bool = False) -> np.ndarray:
    """The gray level of each region's paper (``ids``: labels): the median 8-bit level of its core,
    ``[len(ids)]`` uint8 (255 for a region without core pixels, or with ``thin`` the median of all its
    pixels: a region too thin for a core). ``gray``: the page's uint8 gray (or one channel) at the
    label resolution (``page[::factor, ::factor]``, the shape of ``regions.labels``).

    A known color (a hint) is laid against it: the region's paper takes the color itself, and its
    darker pixels (tones, shading, ink) darken the color in proportion (``models.paint.compose_cpu``).
    """
    ids = np.asarray(ids, dtype=np.int64)
    out = np.full(len(ids), 255, np.uint8)
    if len(ids) == 0:
        return out
    sampled = np.asarray(gray)
    position = np.full(regions.count + 1, -1, np.int64)
    position[ids] = np.arange(len(ids))
    where = position[regions.labels]
    sel = regions.core & (where >= 0)
    if thin:
        missing = np.bincount(where[sel], minlength=len(ids)) == 0
        if missing.any():
            sel |= (where >= 0) & missing[np.maximum(where, 0)]
    hist = np.bincount(where[sel] * 256 + sampled[sel], minlength=len(ids) * 256).reshape(len(ids), 256)
    total = hist.sum(axis=1)
    has = total > 0
    median = (np.cumsum(hist, axis=1) * 2 >= total[:, None]).argmax(axis=1)
    out[has] = median[has]
    return out


# Under a known color, screentone, paper grain and the tiny dots of a tone stand for that color and are
# smoothed into the shade they make (DESCREEN label px wide, over the region's own core): ink components
# larger than DOT_AREA label px (eyes, letters, lines) and the dark mesh of a tone stay as drawn.
DESCREEN = 5
DOT_AREA = 6


def descreened(gray: np.ndarray, regions: Regions, ids: np.ndarray) -> np.ndarray:
    """The page's ``HxW`` uint8 gray with the cores of regions ``ids`` (known colors with their own lightness) smoothed where tone dots and grain
    make them (see DESCREEN): a region whose color is known takes it flat, its shading kept as shade."""
    from .raster import grow, label

    ids = np.asarray(ids, np.int64)
    if DESCREEN <= 1 or len(ids) == 0:
        return gray
    f = regions.factor
    selected = np.zeros(regions.count + 1, bool)
    selected[ids] = True
    selected &= regions.kind == REGION  # margins and balloons are paper: their letters stay crisp
    selected[0] = False
    target = regions.core & selected[regions.labels]
    if not target.any():
        return gray
    # Ink at the label resolution, as the segmentation sees it; components above DOT_AREA are drawn marks.
    h, w = regions.labels.shape
    small = gray[::f, ::f][:h, :w] if f > 1 else gray
    ink = small < 128
    lab, n = label(ink)  # 4-connected: the dots of a 50% tone touch only at their corners
    big = np.bincount(lab.ravel(), minlength=n + 1) > DOT_AREA
    big[0] = False
    marks = grow(big[lab], 3)
    smooth = target & ~marks
    if not smooth.any():
        return gray
    # The window's mean over the smoothed pixels only (ink marks and lines do not darken it; the cores of
    # two regions lie further apart than the window, but across a tone edge it blurs the step a little),
    # at the label resolution (a block's sum of f x f pixels; the shade is even over a block).
    from .segmentation import _block_sum

    blocks = (_block_sum(gray, f)[:h, :w] if f > 1 else gray).astype(np.int32)
    total = box_sum(np.where(smooth, blocks, 0), DESCREEN // 2)[smooth].astype(np.int64)
    count = box_sum(smooth.view(np.uint8), DESCREEN // 2)[smooth].astype(np.int64) * (f * f)
    shade = np.zeros((h, w), np.uint8)
    shade[smooth] = (2 * total + count) // (2 * np.maximum(count, 1))  # the rounded mean gray
    out = np.ascontiguousarray(gray).copy()
    if f > 1:
        # Written block by block through a strided view of the page (the whole blocks; a partial edge block
        # keeps its pixels): no full-resolution copy of the shade or the mask.
        H, W = out.shape
        hh, ww = H // f, W // f
        blocks_view = np.lib.stride_tricks.as_strided(out, (hh, f, ww, f), (W * f, W, f, 1))
        np.copyto(blocks_view, shade[:hh, None, :ww, None], where=smooth[:hh, None, :ww, None])
    else:
        np.copyto(out, shade, where=smooth)
    return out
