"""Colors under a gray page's luma (docs/ARCHITECTURE.md, "Color"): a gray-shaded page is the luma of the
colors it stands for, so a shaded region's color takes, at each gray level, the lightness whose sRGB has that
level as its luma. Both composes read the same table (``models.paint.compose_cpu``, ``models.paint.compose``).
"""

from __future__ import annotations

import numpy as np

from ..cie import LUMA_WEIGHTS, f_inverse
from . import regions as rg
from .srgb8 import gray_tables, srgb8_band

# A color of less chroma than this (Lab units) keeps a gray level's own lightness: its luma is the level
# already, within rounding.
LUMA_MIN_CHROMA = 1.0
# Halvings of the luma search over fy (0.86 / 2^12: under 0.03 L).
LUMA_ITERATIONS = 12
# Ink stays ink: gray levels up to LUMA_INK (L 10) keep their own L exactly, and the luma's lightness takes
# over linearly up to twice that level.
LUMA_INK = 28


def luma_fy_table(ab: np.ndarray) -> np.ndarray:
    """Per color (``ab`` ``[n, 2]``, Lab units) and 8-bit gray level, the fy whose color has that level as
    its luma: ``[n, 256]`` float32.

    A gray page is the luma of the colors it stands for (Rec. 601 on the sRGB values: PIL's ``convert("L")``,
    the gray pages the corpus composes, an editor's grayscale), not their CIE lightness: the luma of a
    saturated green or purple is 5-10 levels off the gray of the same L. Laid under the level's own L, such
    colors came out too dark or too light. So a color under a gray level takes the lightness whose sRGB,
    after the gamut scale that keeps it (``srgb8.srgb8_band``), has the level as its luma: turned back to gray,
    the output is the page. Colors below LUMA_MIN_CHROMA and ink (levels up to LUMA_INK) keep the level's L.
    """
    fy_tab, _ = gray_tables()
    ab = np.asarray(ab, np.float32).reshape(-1, 2)
    fa = ab[:, 0] / np.float32(500.0)
    fb = ab[:, 1] / np.float32(200.0)
    out = np.repeat(fy_tab[None], len(ab), axis=0)
    colored = np.nonzero(np.hypot(ab[:, 0], ab[:, 1]) >= LUMA_MIN_CHROMA)[0]
    if len(colored) == 0:
        return out
    m = len(colored)
    level = np.broadcast_to(np.arange(256, dtype=np.float32), (m, 256))
    lo = np.full((m, 256), 16.0 / 116.0, np.float32)
    hi = np.ones((m, 256), np.float32)
    fa_c = np.repeat(fa[colored, None], 256, axis=1)
    fb_c = np.repeat(fb[colored, None], 256, axis=1)
    weights = np.array(LUMA_WEIGHTS, np.float32)
    rgb = np.empty((m, 256, 3), np.uint8)
    for _ in range(LUMA_ITERATIONS):
        mid = (lo + hi) * np.float32(0.5)
        srgb8_band(mid, f_inverse(mid).astype(np.float32), fa_c.copy(), fb_c.copy(), rgb)
        darker = rgb @ weights < level
        lo = np.where(darker, mid, lo)
        hi = np.where(darker, hi, mid)
    fit = (lo + hi) * np.float32(0.5)
    weight = np.clip((np.arange(256, dtype=np.float32) - LUMA_INK) / np.float32(LUMA_INK), 0.0, 1.0)
    out[colored] = fy_tab[None] + weight[None] * (fit - fy_tab[None])
    return out


# A region is shaded (its gray the luma of its colors) when the mean difference between neighbouring pixels
# of its core is at most this many levels; above it, its darker pixels are ink (tone dots, hatching, grain)
# and keep the rule of line art. Chosen on 32 training-split pages under the Hint-AUC protocol among 4, 8,
# 16 and no limit (docs/MODELS.md, "Colors under a gray page's luma").
LUMA_TEXTURE_MAX = 8.0
# ... and its paper (the median of its core) darker than this level: white paper takes the fill color itself.
LUMA_PAPER_MAX = 250


def shaded_regions(regions: rg.Regions, gray: np.ndarray) -> np.ndarray:
    """Per label ``[n + 1]`` bool: the regions whose core is smooth gray shading, not screentone or ink on
    paper: the mean absolute difference of horizontally and vertically neighbouring core pixels (at the
    label resolution) at most LUMA_TEXTURE_MAX levels, and their paper darker than LUMA_PAPER_MAX."""
    f = regions.factor
    labels, core = regions.labels, regions.core
    small = np.asarray(gray[::f, ::f])[: labels.shape[0], : labels.shape[1]]
    wide = small.astype(np.int16)
    n = regions.count + 1
    total = np.zeros(n)
    count = np.zeros(n)
    for a, b, ca, cb, la, lb in ((wide[:, 1:], wide[:, :-1], core[:, 1:], core[:, :-1], labels[:, 1:], labels[:, :-1]),
                                 (wide[1:], wide[:-1], core[1:], core[:-1], labels[1:], labels[:-1])):
        both = ca & cb & (la == lb)
        total += np.bincount(la[both], weights=np.abs(a - b)[both], minlength=n)
        count += np.bincount(la[both], minlength=n)
    out = (count > 0) & (total <= LUMA_TEXTURE_MAX * np.maximum(count, 1))
    out[0] = False
    smooth = np.nonzero(out)[0]
    if len(smooth):
        out[smooth] = rg.paper_levels(regions, small, smooth) < LUMA_PAPER_MAX
    return out


def luma_rows(colors: np.ndarray, own: np.ndarray, regions: rg.Regions, gray: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray] | None:
    """The flat fill's colors (``colors``: one ab per label ``[n + 1, 2]``) that a gray page's luma lights:
    those of :func:`shaded_regions`, as ``(row, fy)``: ``row`` ``[n + 1]`` each label's row of ``fy``
    ``[m, 256]`` (:func:`luma_fy_table`), -1 where the label keeps the page's levels; or None when none does.
    Known colors with their own lightness (``own``, laid by ``compose_cpu._lay_known``) and uncolored labels
    keep the page's levels (a page the model leaves gray measures nothing)."""
    colors = np.asarray(colors, np.float32)
    use = ~np.asarray(own, bool) & (np.hypot(colors[:, 0], colors[:, 1]) >= LUMA_MIN_CHROMA)
    if not use.any():
        return None
    use &= shaded_regions(regions, gray)
    rows = np.flatnonzero(use)
    if len(rows) == 0:
        return None
    row = np.full(len(colors), -1, np.intp)
    row[rows] = np.arange(len(rows))
    return row, luma_fy_table(colors[rows])
