"""The "flat" color fill a colorist would lay in a page's regions (docs/ARCHITECTURE.md, "Color").

Every region (``models.segmentation``: areas enclosed by ink, paper, balloons, solid blacks) takes one
color: :func:`region_colors` turns a model's per-pixel chroma ``ab`` (and, where the model gives one,
its confidence) into one color per region, :func:`hint_colors` reads a hint image's color for the
regions it touches, :func:`paint` lays a per-region table back onto the page. numpy only.

Confidence interface: a model gives ``ab`` ``[B,2,h,w]`` in Lab units and optionally a
``confidence`` ``[B,1,h,w]`` in [0, 1] (a classification model: the peak probability of its ab
distribution). Models without one pass ``None``: every pixel then weighs the same and a region's
agreement (how much its pixels point the same way in ab) stands in for the confidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The segmentation's names, read from here by the compose and the engine (one place to import regions from).
from .segmentation import (BALLOON, PAPER, REGION, SOLID, Regions, l_to_gray8, label_factor,  # noqa: F401
                           segment_regions, upsample_blocks)


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


def _label_to_map(regions: Regions, map_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
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
    rows, cols = _label_to_map(regions, ab.shape[-2:])
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


def paint(regions: Regions, colors: np.ndarray, *, full: bool = True) -> np.ndarray:
    """Per-label colors ``[n + 1, 2]`` -> an ab image ``[2, H, W]`` (``full``) or at the label resolution."""
    out = np.stack([colors[:, 0][regions.labels], colors[:, 1][regions.labels]])
    return upsample_blocks(out, regions.factor, regions.shape) if full else out


def flat_fill(regions: Regions, ab, confidence=None, *, hints=None, saturation: float = 1.0,
              full: bool = True, **options) -> np.ndarray:
    """The flat compose's chroma: one color per region -> ab ``[2, H, W]`` float32 in Lab units.

    ``regions``: from :func:`segment_regions`; ``ab``/``confidence``: the model's working-size
    prediction (see :func:`region_colors`, which takes ``options``); ``hints``: an ``HxWx4`` RGBA
    image of the page's size (see :func:`apply_hints`); ``saturation``: see :func:`saturate`
    (hinted regions keep their exact hint color). Paper outside the art and balloons stay exactly
    0; ink pixels take the color of the region they bound (the caller keeps their L, and no chroma
    shows on black, while the anti-aliased edges of lines blend into their region's color).
    ``full=False`` returns the label resolution ``[2, ceil(H/f), ceil(W/f)]``.
    """
    colors = saturate(region_colors(regions, ab, confidence, **options), saturation)
    if hints is not None:
        colors = apply_hints(regions, colors, hints)
    return paint(regions, colors, full=full)


def saturate(ab, factor: float):
    """Scale chroma by ``factor`` (0 = gray, 1 = as predicted, at most 2); works on numpy arrays and tensors."""
    factor = float(factor)
    if not 0.0 <= factor <= 2.0:
        raise ValueError(f"saturation must be between 0 and 2, got {factor}")
    return ab if factor == 1.0 else ab * factor


# ---------------------------------------------------------------- hints
def srgb8_to_ab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 ``[..., 3]`` -> Lab (D65) ``[..., 2]`` ab, float32 (the same formulas as models.color)."""
    return srgb8_to_lab(rgb)[..., 1:]


def srgb8_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 ``[..., 3]`` -> CIE Lab (D65) ``[..., 3]``, float32."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    lin = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.412453, 0.357580, 0.180423],
                  [0.212671, 0.715160, 0.072169],
                  [0.019334, 0.119193, 0.950227]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    fxyz = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 4.0 / 29.0)
    L = 116.0 * fxyz[..., 1] - 16.0
    a = 500.0 * (fxyz[..., 0] - fxyz[..., 1])
    b = 200.0 * (fxyz[..., 1] - fxyz[..., 2])
    return np.stack([L, a, b], axis=-1).astype(np.float32)


@dataclass
class Known:
    """Colors known ahead for some of a page's regions: ``ids`` (labels) and their ``lab`` ``[k, 3]``,
    from hints and references (:func:`known_colors`); the compose lays them as it lays a hint image's.
    ``from_hints``/``from_references``: how many regions each source gave."""

    ids: np.ndarray
    lab: np.ndarray
    from_hints: int = 0
    from_references: int = 0


def known_colors(regions: Regions, hints=None, references=None) -> Known:
    """Hints win over references: the colors of a hint image (see :func:`hint_colors`) and of reference
    matches (``references``: ``(ids, lab)``, e.g. ``models.references.match``), one per region."""
    table: dict[int, np.ndarray] = {}
    n_ref = 0
    if references is not None:
        ids, lab = references
        for i, c in zip(np.asarray(ids).tolist(), np.asarray(lab, np.float32)):
            table[int(i)] = c
        n_ref = len(table)
    n_hint = 0
    if hints is not None:
        ids, lab = hint_colors(regions, hints)
        for i, c in zip(ids.tolist(), lab):
            if int(i) in table:
                n_ref -= 1
            table[int(i)] = c
        n_hint = len(ids)
    keys = np.array(sorted(table), dtype=np.int64)
    lab = np.stack([table[k] for k in keys.tolist()]).astype(np.float32) if len(keys) else np.zeros((0, 3), np.float32)
    return Known(keys, lab, from_hints=n_hint, from_references=n_ref)


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
    if hints.shape[:2] != tuple(regions.shape):
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
    return regions_hit, srgb8_to_lab(out)


def paper_levels(regions: Regions, gray: np.ndarray, ids: np.ndarray, *, thin: bool = False) -> np.ndarray:
    """The gray level of each region's paper (``ids``: labels): the median 8-bit level of its core,
    ``[len(ids)]`` uint8 (255 for a region without core pixels, or with ``thin`` the median of all its
    pixels: a region too thin for a core). ``gray``: the page's uint8 gray (or one channel) at the
    label resolution (``page[::factor, ::factor]``, the shape of ``regions.labels``).

    A known color (a hint) is laid against it: the region's paper takes the color itself, and its
    darker pixels (tones, shading, ink) darken the color in proportion (``models.compose_cpu``).
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


def apply_hints(regions: Regions, ab: np.ndarray, hints) -> np.ndarray:
    """Every region a hint touches takes exactly that hint's ab, whatever the model says.

    ``ab``: per-label colors ``[n + 1, 2]`` (the flat fill), or a per-pixel ab image ``[2, H, W]``
    at full resolution (the soft fill), or ``[2, h, w]`` at the label resolution. Returns a copy.
    """
    ids, lab = hint_colors(regions, hints)
    colors = lab[:, 1:]
    ab = np.array(ab, dtype=np.float32, copy=True)
    if len(ids) == 0:
        return ab
    if ab.ndim == 2:
        ab[ids] = colors
        return ab
    table = np.full((regions.count + 1, 2), np.nan, dtype=np.float32)
    table[ids] = colors
    labels = regions.labels if ab.shape[-2:] == regions.labels.shape else regions.full_labels()
    if labels.shape != ab.shape[-2:]:
        raise ValueError(f"ab {ab.shape} matches neither the page {regions.shape} nor the labels {regions.labels.shape}")
    hinted = np.zeros(regions.count + 1, dtype=bool)
    hinted[ids] = True
    mask = hinted[labels]
    for c in range(2):
        ab[c][mask] = table[:, c][labels[mask]]
    return ab
