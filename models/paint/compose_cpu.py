"""The compose in numpy, for the CPU: what ``mangacolor colorize`` runs there (docs/PERFORMANCE.md, "Compose").

The same picture as :func:`models.paint.compose.compose` (within 1 level, ``tests/test_compose_cpu.py``),
computed without torch so the ONNX path starts without importing it, and about 5x cheaper:

* everything that depends on the chroma only is done at the model's working size: the fill
  lightness (a lookup table over ab, built once), ``a/500`` and ``b/200``, the fill's ``f(Y)``;
  the three planes are then upsampled once (bilinear, ``align_corners=False``, as torch's);
* the page's L, ``f(Y)`` and ``Y`` come from 256-entry tables of the 8-bit gray levels;
* the per-pixel rest (Lab -> linear RGB, the L-keeping gamut scale, the sRGB gamma as a 65536-entry
  uint8 table) runs band by band, a few dozen rows at a time, so its float32 planes stay in the
  cache; the output is uint8 straight from the table, nothing in float64.

Pure numpy (``models.paint.fills`` and ``regions`` for the flat fill, ``models.cie`` for the color math):
no torch, no kornia. The constants are kornia's (``models.color``), term for term.
"""

from __future__ import annotations

import functools

import numpy as np

from ..cie import FILL_CHROMA_FULL, FILL_CHROMA_START, F_KNEE, f_inverse, l_to_gray8, lab_to_linear_rgb
from . import fills
from . import regions as rg
from .luma import luma_rows
from .srgb8 import BAND_ROWS, lab_to_srgb8
from .srgb8 import gray_tables as _gray_tables
from .srgb8 import srgb8_band as _srgb8_band


def fill_lightness_exact(ab: np.ndarray, iterations: int = 14) -> np.ndarray:
    """``models.color.fill_lightness`` in numpy: ab ``[2, ...]`` -> the highest L that holds it, ``[...]``."""
    ab = np.asarray(ab, dtype=np.float32)
    lo = np.zeros(ab.shape[1:], np.float32)
    hi = np.full_like(lo, 100.0)
    for _ in range(iterations):
        mid = (lo + hi) / np.float32(2.0)
        fits = lab_to_linear_rgb(mid, ab[0], ab[1]).max(axis=0) <= 1.0
        lo = np.where(fits, mid, lo)
        hi = np.where(fits, hi, mid)
    return _chroma_weighted(lo, ab)


def _chroma_weighted(lo: np.ndarray, ab: np.ndarray) -> np.ndarray:
    chroma = np.sqrt(ab[0] * ab[0] + ab[1] * ab[1])
    weight = np.clip((chroma - FILL_CHROMA_START) / np.float32(FILL_CHROMA_FULL - FILL_CHROMA_START), 0.0, 1.0)
    return (np.float32(100.0) - weight * (np.float32(100.0) - lo)).astype(np.float32)


# The fill-lightness table: the gamut's top lightness on a 1-unit ab grid over [-160, 160] (ab/110 in [-1, 1] fits).
_FILL_GRID_MIN, _FILL_GRID_N = -160.0, 321


@functools.lru_cache(maxsize=1)
def _fill_top_table() -> np.ndarray:
    a, b = np.meshgrid(np.arange(_FILL_GRID_N, dtype=np.float32) + _FILL_GRID_MIN,
                       np.arange(_FILL_GRID_N, dtype=np.float32) + _FILL_GRID_MIN, indexing="ij")
    lo = np.zeros(a.shape, np.float32)
    hi = np.full_like(lo, 100.0)
    for _ in range(18):
        mid = (lo + hi) / np.float32(2.0)
        fits = lab_to_linear_rgb(mid, a, b).max(axis=0) <= 1.0
        lo = np.where(fits, mid, lo)
        hi = np.where(fits, hi, mid)
    return lo


def _fits(L: np.ndarray, ab: np.ndarray) -> np.ndarray:
    return lab_to_linear_rgb(L, ab[0], ab[1]).max(axis=0) <= 1.0


def fill_lightness(ab: np.ndarray) -> np.ndarray:
    """:func:`fill_lightness_exact`, started from a table: ab ``[2, ...]`` -> ``[...]`` float32.

    The table (the gamut's top lightness on a 1-unit ab grid, bilinear) is within 0.25 L of the
    answer, which picks the full search's bracket after 8 halvings; its last 6 halvings then give the
    same L (a pixel whose bracket does not hold the answer runs the full search). ~2x cheaper.
    """
    ab = np.asarray(ab, dtype=np.float32)
    colored = ab[0] * ab[0] + ab[1] * ab[1] > np.float32(FILL_CHROMA_START ** 2)
    if not colored.all():
        # Chroma below FILL_CHROMA_START never darkens the paper: only the other pixels are searched.
        out = np.full(ab.shape[1:], 100.0, np.float32)
        if colored.any():
            out[colored] = fill_lightness(ab[:, colored])
        return out
    table = _fill_top_table()
    top = _FILL_GRID_N - 1
    u = np.clip(ab[0] - np.float32(_FILL_GRID_MIN), 0, top - 1e-3)
    v = np.clip(ab[1] - np.float32(_FILL_GRID_MIN), 0, top - 1e-3)
    i, j = u.astype(np.intp), v.astype(np.intp)
    fu, fv = u - i, v - j
    t00, t01, t10, t11 = table[i, j], table[i, j + 1], table[i + 1, j], table[i + 1, j + 1]
    guess = (t00 * (1 - fu) + t10 * fu) * (1 - fv) + (t01 * (1 - fu) + t11 * fu) * fv
    # The full search's bracket after 8 of its 14 halvings that holds the table's guess: when it holds
    # the answer (its bottom fits or is 0, its top does not or is 100), the last 6 halvings test the same
    # L values the full search does; elsewhere (the guess was off: a few pixels) the full search runs.
    w = np.float32(100.0 / 2 ** 8)
    lo = np.clip(np.floor(guess / w), 0, 2 ** 8 - 1).astype(np.float32) * w
    hi = lo + w
    missed = ~(((lo <= 0) | _fits(lo, ab)) & ((hi >= 100) | ~_fits(hi, ab)))
    for _ in range(6):
        mid = (lo + hi) / np.float32(2.0)
        fits = _fits(mid, ab)
        lo = np.where(fits, mid, lo)
        hi = np.where(fits, hi, mid)
    if missed.any():
        exact_lo = np.zeros(int(missed.sum()), np.float32)
        exact_hi = np.full_like(exact_lo, 100.0)
        sub = ab[:, missed]
        for _ in range(14):
            mid = (exact_lo + exact_hi) / np.float32(2.0)
            fits = _fits(mid, sub)
            exact_lo = np.where(fits, mid, exact_lo)
            exact_hi = np.where(fits, exact_hi, mid)
        lo[missed] = exact_lo
    return _chroma_weighted(lo, ab)


def _axis_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # torch's bilinear, align_corners=False: source = (i + 0.5) * in / out - 0.5, clamped at 0.
    src = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(src.astype(np.intp), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = (src - i0).astype(np.float32)
    return i0, i1, w1


def resize_bilinear(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``[C, h, w]`` float32 -> ``[C, H, W]``, bilinear as ``F.interpolate(align_corners=False)`` (no antialias)."""
    cols = _axis_weights(x.shape[-1], shape[1])
    rows = _axis_weights(x.shape[-2], shape[0])
    return _rows(_cols(np.asarray(x, np.float32), cols), rows, 0, shape[0])


def _cols(x: np.ndarray, cols) -> np.ndarray:
    i0, i1, w1 = cols
    # take along the last axis keeps the rows contiguous (fancy indexing would put the columns outermost).
    left = np.take(x, i0, axis=-1)
    left += (np.take(x, i1, axis=-1) - left) * w1
    return left


def _rows(x: np.ndarray, rows, r0: int, r1: int) -> np.ndarray:
    i0, i1, w1 = rows
    top = np.take(x, i0[r0:r1], axis=-2)
    top += (np.take(x, i1[r0:r1], axis=-2) - top) * w1[r0:r1, None]
    return top


class _RowSampler:
    """The vertical half of the bilinear upsampling, band by band, on column-upsampled planes ``[C, h, W]``."""

    def __init__(self, wide: np.ndarray, rows):
        i0, i1, w1 = rows
        self.wide = wide
        # row i1 - row i0 (0 where they are the same row, at the bottom edge), so a band is take + fma.
        self.step = np.zeros_like(wide)
        self.step[:, :-1] = wide[:, 1:] - wide[:, :-1]
        self.i0, self.w1 = i0, w1[:, None]

    def band(self, r0: int, r1: int) -> list[np.ndarray]:
        i0, w1 = self.i0[r0:r1], self.w1[r0:r1]
        out = []
        for c in range(self.wide.shape[0]):
            plane = np.take(self.wide[c], i0, axis=0)
            d = np.take(self.step[c], i0, axis=0)
            d *= w1
            plane += d
            out.append(plane)
        return out


def _page_tables(gray: np.ndarray | None, L: np.ndarray | None):
    """Per band, the page's own fy and Y: from the gray-level tables, or computed from a float L."""
    if gray is not None:
        fy_tab, y_tab = _gray_tables()
        return lambda r0, r1: (np.take(fy_tab, gray[r0:r1]), np.take(y_tab, gray[r0:r1]))

    def from_l(r0, r1):
        fy = (L[r0:r1].astype(np.float32) + np.float32(16.0)) / np.float32(116.0)
        return fy, f_inverse(fy).astype(np.float32)
    return from_l


def _lower(fy_page, y_page, fy_fill, y_fill):
    # min(L_page, L_fill) as fy and Y (both increase with L).
    return np.minimum(fy_page, fy_fill, out=fy_page), np.minimum(y_page, y_fill, out=y_page)


def _paper_fy(regions: rg.Regions, gray: np.ndarray | None, L: np.ndarray | None, ids: np.ndarray) -> np.ndarray:
    """fy of the paper of each region in ``ids`` (its median gray level; ``rg.paper_levels``)."""
    f = regions.factor
    sampled = gray[::f, ::f] if gray is not None else l_to_gray8(np.asarray(L)[::f, ::f])
    levels = rg.paper_levels(regions, sampled, ids)
    return _gray_tables()[0][levels]


def _lay_known(fy, Y, fa, fb, fy_fill, fy_paper, known):
    """Known colors laid as colorists lay flats: the region's paper takes the color itself (its own
    lightness), darker pixels darken it in proportion (linear RGB scaled by the page's luminance
    over the paper's: every f scales by the cube root, fy_page / fy_paper), never lighter than the
    color. Returns ``fy, Y, fa, fb`` with the ``known`` pixels replaced; ``fy_fill`` then no longer
    lowers them (their fy is at most it)."""
    scale = np.minimum(fy / np.where(known, fy_paper, np.float32(1.0)), np.float32(1.0))
    fy = np.where(known, fy_fill * scale, fy).astype(np.float32)
    Y = np.where(known, f_inverse(fy), Y).astype(np.float32)
    fa = np.where(known, fa * scale, fa).astype(np.float32)
    fb = np.where(known, fb * scale, fb).astype(np.float32)
    return fy, Y, fa, fb


# The flat fill on a gray page: a pixel's color depends only on its region and its gray level, so the
# conversion runs once per (region, level) pair when there are at most this many pairs.
FLAT_TABLE_MAX = 1 << 20


def _flat_by_table(table: np.ndarray, regions: rg.Regions, gray: np.ndarray, fill_paper: bool,
                   lit: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """The flat fill through a ``[regions, 256]`` color table: the same conversion (``_srgb8_band``) of
    the same values as the per-pixel pass, so the same bytes, at a fraction of the cost. ``lit``: the
    shaded regions' levels under the page's luma (``luma.luma_rows``), or None."""
    n = len(table)
    fy_tab, y_tab = _gray_tables()
    fy = np.repeat(fy_tab[None], n, axis=0)
    Y = np.repeat(y_tab[None], n, axis=0)
    if lit is not None:
        row, lit_fy = lit
        on = row >= 0
        fy[on] = lit_fy[row[on]]
        Y[on] = f_inverse(fy[on])
    fa = np.repeat(table[:, 0:1], 256, axis=1)
    fb = np.repeat(table[:, 1:2], 256, axis=1)
    if fill_paper:
        known = np.repeat(table[:, 4:5] > 0, 256, axis=1)
        if known.any():
            fy, Y, fa, fb = _lay_known(fy, Y, fa, fb, np.repeat(table[:, 2:3], 256, axis=1),
                                       np.repeat(table[:, 4:5], 256, axis=1), known)
        np.minimum(fy, table[:, 2:3], out=fy)
        np.minimum(Y, table[:, 3:4], out=Y)
    lut = np.empty((n, 256, 3), np.uint8)
    _srgb8_band(fy, Y, fa, fb, lut)
    channels = [np.ascontiguousarray(lut[..., c]).ravel() for c in range(3)]
    H, W = regions.shape
    f = regions.factor
    col_labels = np.take(regions.labels.astype(np.int32), np.arange(W) // f, axis=1)
    out = np.empty((H, W, 3), np.uint8)
    for r0 in range(0, H, BAND_ROWS):
        r1 = min(H, r0 + BAND_ROWS)
        index = np.take(col_labels, np.arange(r0, r1) // f, axis=0)
        index <<= 8
        index += gray[r0:r1]
        for c in range(3):
            np.take(channels[c], index, out=out[r0:r1, :, c])
    return out


def compose(ab: np.ndarray, *, gray: np.ndarray | None = None, L: np.ndarray | None = None,
            fill: str = fills.DEFAULT_FILL, saturation: float = 1.0, hints: np.ndarray | None = None,
            confidence: np.ndarray | None = None, fill_paper: bool = True,
            regions: rg.Regions | None = None, palette: str = rg.DEFAULT_PALETTE,
            model_colors: np.ndarray | None = None) -> np.ndarray:
    """One page -> ``HxWx3`` uint8 sRGB, as :func:`models.paint.compose.compose` (same options).

    The page: ``gray``, its ``HxW`` uint8 pixels (a gray page), or ``L``, its ``HxW`` CIE L.
    ``ab``: ``[2,h,w]`` or ``[1,2,h,w]`` Lab units at working size covering the page;
    ``confidence``: ``[h,w]`` (any leading ones) in [0, 1] or None.
    """
    fills.check_fill(fill)
    if gray is None and L is None:
        raise ValueError("compose needs the page's gray pixels or its L")
    if gray is not None:
        gray = np.ascontiguousarray(gray, dtype=np.uint8)
    page_shape = (gray if gray is not None else L).shape
    H, W = page_shape
    ab = np.asarray(ab, dtype=np.float32)
    while ab.ndim > 3:
        ab = ab[0]
    need_regions = fill == "flat" or hints is not None
    if need_regions and regions is None:
        regions = fills.segment(gray, L)
    regions, model_colors = fills.regions_for_hints(regions, hints, model_colors)
    known, ids, hint_lab, gray = fills.known_and_gray(regions, hints, gray, fill_paper, L)
    page_fy = _page_tables(gray, L)

    if fill == "flat":
        colors, ids, hint_lab = fills.flat_colors(regions, ab, confidence, hints=known, saturation=saturation,
                                                  palette=palette, model_colors=model_colors)
        table = np.zeros((len(colors), 5), np.float32)
        table[:, 0] = colors[:, 0] / np.float32(500.0)
        table[:, 1] = colors[:, 1] / np.float32(200.0)
        fill_l = fill_lightness_exact(colors.T) if fill_paper else np.full(len(colors), 100.0, np.float32)
        own = ids[~np.isnan(hint_lab[:, 0])] if ids is not None else None
        if own is not None and len(own) and fill_paper:
            # Known colors carry their own lightness, laid against the region's paper (column 4: its fy);
            # those without one (a hint map's) take the page's lightness as the model's colors do.
            fill_l[own] = hint_lab[~np.isnan(hint_lab[:, 0]), 0]
            table[own, 4] = _paper_fy(regions, gray, L, own)
        fy_fill = (fill_l + np.float32(16.0)) / np.float32(116.0)
        table[:, 2] = fy_fill
        table[:, 3] = f_inverse(fy_fill)
        f = regions.factor
        # Shaded regions under the page's luma (--keep-lightness keeps every L).
        lit = luma_rows(colors, table[:, 4] > 0, regions, gray) if gray is not None and fill_paper else None
        if gray is not None and len(table) * 256 <= FLAT_TABLE_MAX:
            return _flat_by_table(table, regions, gray, fill_paper, lit)
        col_labels = np.take(regions.labels.astype(np.intp), np.arange(W) // f, axis=1)
        columns = [np.ascontiguousarray(table[:, c]) for c in range(5)]
        if lit is not None:
            row_of, lit_fy = lit[0], lit[1].ravel()

        def flat_band(r0, r1):
            lab = np.take(col_labels, np.arange(r0, r1) // f, axis=0)
            return [np.take(col, lab) for col in columns], lab

        bands: dict = {}

        def fy_of(r0, r1):
            (fa, fb, fyf, yf, ref), lab = flat_band(r0, r1)
            fy, Y = page_fy(r0, r1)
            if lit is not None:
                row = np.take(row_of, lab)
                on = row >= 0
                if on.any():
                    fy[on] = lit_fy[row[on] * 256 + gray[r0:r1][on]]
                    Y[on] = f_inverse(fy[on])
            if not fill_paper:
                bands[r0] = (fa, fb)
                return fy, Y
            known = ref > 0
            if known.any():
                fy, Y, fa, fb = _lay_known(fy, Y, fa, fb, fyf, ref, known)
            bands[r0] = (fa, fb)
            return _lower(fy, Y, fyf, yf)

        return lab_to_srgb8(fy_of, lambda r0, r1: bands.pop(r0), page_shape)

    ab = rg.saturate(rg.vivid(ab) if rg.check_palette(palette) == "vivid" else ab, saturation)
    planes = [ab[0] / np.float32(500.0), ab[1] / np.float32(200.0)]
    if fill_paper:
        planes.append((fill_lightness(ab) + np.float32(16.0)) / np.float32(116.0))
    planes = np.stack(planes).astype(np.float32)
    # Exact f^-1 of the fill needs the linear branch only for fills darker than L 8 (fy at the knee).
    fill_linear = fill_paper and (hints is not None or float(planes[2].min()) <= F_KNEE)
    cols = _axis_weights(planes.shape[-1], W)
    rows = _axis_weights(planes.shape[-2], H)
    sampler = _RowSampler(_cols(planes, cols), rows)  # [C, h, W]: the columns once, the rows band by band
    hinted = None
    if ids is not None:
        if len(ids):
            htable = np.zeros((regions.count + 1, 4), np.float32)
            htable[ids, 0] = hint_lab[:, 1] / 500.0
            htable[ids, 1] = hint_lab[:, 2] / 200.0
            no_l = np.isnan(hint_lab[:, 0])
            own_l = np.where(no_l, fill_lightness_exact(hint_lab[:, 1:].T.copy()), hint_lab[:, 0])
            htable[ids, 2] = (own_l + 16.0) / 116.0
            # > 0: hinted, with the hint's own lightness laid on the region's paper; -1: a hint map's color,
            # under the page's lightness (the model's rule)
            htable[ids, 3] = np.where(no_l, -1.0, _paper_fy(regions, gray, L, ids))
            f = regions.factor
            hinted = (htable, np.take(regions.labels.astype(np.intp), np.arange(W) // f, axis=1), f)
    bands = {}

    def soft_fy(r0, r1):
        band = sampler.band(r0, r1)
        mask = None
        if hinted is not None:
            htable, col_labels, f = hinted
            lab = col_labels[np.arange(r0, r1) // f]
            paper_fy = htable[:, 3][lab]
            copied = paper_fy != 0
            if copied.any():
                for c in range(len(band)):
                    np.copyto(band[c], htable[:, c][lab], where=copied)
            mask = paper_fy > 0
            if not mask.any():
                mask = None
        fy, Y = page_fy(r0, r1)
        if not fill_paper:
            bands[r0] = (band[0], band[1])
            return fy, Y
        fa, fb = band[0], band[1]
        if mask is not None:
            fy, Y, fa, fb = _lay_known(fy, Y, fa, fb, band[2], paper_fy, mask)
        bands[r0] = (fa, fb)
        fy_fill = band[2]
        y_fill = f_inverse(fy_fill) if fill_linear else fy_fill * fy_fill * fy_fill
        return _lower(fy, Y, fy_fill, y_fill)

    return lab_to_srgb8(soft_fy, lambda r0, r1: bands.pop(r0), page_shape)
