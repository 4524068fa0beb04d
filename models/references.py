"""Reference pages: a colored page carries its colors, region by region, to the B/W pages of the same
characters (docs/ARCHITECTURE.md, "Reference pages"). numpy only, like the segmentation.

The paint-bucket counterpart of BasicPBC and DACoN, without their learned matcher: both pages are cut
into the regions of the flat fill (``models.segmentation``), each region becomes a token of what a
colorist would recognize it by without its color (where it sits in its figure, how large it is, its
shape, how dark its paper is, and the same of its neighbours), and each region of the B/W page takes
the color of the nearest reference token when that token is near enough and clearly nearer than the
nearest token of another color. A region with no confident match keeps the model's color.

A reference is segmented once (:func:`prepare_reference`) and serves every page; a page costs one
distance matrix between its tokens and the references' (a few hundred by a few hundred).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .compose_cpu import gray_to_l
from .regions import BALLOON, PAPER, REGION, SOLID, Regions, paper_levels, segment_regions, srgb8_to_lab

# Regions smaller than this share of their figure's box are not matched (specks, line fragments),
# and neither taken from a reference.
MIN_SHARE = 2e-4
# Two regions are neighbours when they lie this many label pixels apart across a row or a column
# (a line between them is ink deeper than the regrowth: label 0).
NEIGHBOUR_REACH = (1, 3, 6)
# Feature weights of the token distance (each feature is in units of about one "typical difference").
WEIGHTS = {
    "position": 3.0,   # centroid in the figure's box, 0..1 (two features)
    "area": 0.8,       # log of the share of the figure's box
    "shape": 0.6,      # elongation and fill of the bounding box
    "tone": 1.5,       # paper level 0..1 (white paper 1, solid black 0)
    "context": 0.8,    # the same, averaged over the neighbours
}
# A match counts when its distance is below MAX_DISTANCE and the nearest token of a clearly other
# color (CIEDE76 > COLOR_SPLIT) is at least MARGIN farther.
MAX_DISTANCE = 1.2
MARGIN = 1.08
COLOR_SPLIT = 12.0
# A reference whose median token distance to the page exceeds the best reference's by this factor
# is left out for that page.
FIT_SLACK = 1.15
# Tone: paper at or above TONE_WHITE counts as white; a reference luma under TONE_BLACK as black;
# a toned region's level may differ from its reference's luma by TONE_SLACK for free.
TONE_WHITE = 0.85
TONE_BLACK = 0.25
TONE_SLACK = 0.08
TONE_SCALE = 0.2


@dataclass
class Tokens:
    """One row per matched region: ``ids`` (labels), ``features`` ``[k, d]`` float32."""

    ids: np.ndarray
    features: np.ndarray
    tone: np.ndarray


def tone_cost(target: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``[k, m]``: how unlikely a region of paper level ``target`` (0 black .. 1 white) is drawn from a
    reference region of luma ``reference``. White paper may be any color but black (line art leaves
    colors white, and inks black areas black); a toned or dark region keeps about its reference's luma
    (a gray page is the luma of its colors; screentone and solid blacks stand for dark colors)."""
    t, r = target[:, None], reference[None, :]
    white = np.maximum(0.0, TONE_BLACK - r) / TONE_BLACK
    toned = np.maximum(0.0, np.abs(t - r) - TONE_SLACK) / TONE_SCALE
    return WEIGHTS["tone"] * np.where(t >= TONE_WHITE, white, toned)


@dataclass
class Reference:
    """A prepared reference: its tokens and each token's Lab color; ``name`` for messages."""

    tokens: Tokens
    lab: np.ndarray
    name: str = "reference"
    shape: tuple[int, int] = (0, 0)
    regions_count: int = 0
    extra: dict = field(default_factory=dict)


def _art_box(regions: Regions) -> tuple[float, float, float]:
    """(y0, x0, side) of the box around everything that is not paper outside the art, at label resolution."""
    outside = (regions.kind == PAPER) | (regions.kind == BALLOON)
    outside[0] = False
    art = ~outside[regions.labels]
    ys = np.flatnonzero(art.any(axis=1))
    xs = np.flatnonzero(art.any(axis=0))
    if len(ys) == 0:
        h, w = regions.labels.shape
        return 0.0, 0.0, float(max(h, w))
    y0, y1 = ys[0], ys[-1] + 1
    side = float(max(y1 - y0, 1))
    # Across, centered on the art's mass: arms spread or not, the body stays in the middle.
    cx = float(np.nonzero(art)[1].mean())
    return float(y0), cx - side / 2.0, side


def _neighbours(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of labels that meet across at most a line (both > 0), each pair once in both orders."""
    pairs = []
    for k in NEIGHBOUR_REACH:
        for a, b in ((labels[:, :-k], labels[:, k:]), (labels[:-k, :], labels[k:, :])):
            sel = (a != b) & (a > 0) & (b > 0)
            pairs.append(a[sel].astype(np.int64) * (n + 1) + b[sel])
    code = np.unique(np.concatenate(pairs)) if pairs else np.zeros(0, np.int64)
    i, j = code // (n + 1), code % (n + 1)
    return np.concatenate([i, j]), np.concatenate([j, i])


def describe(regions: Regions, gray: np.ndarray) -> Tokens:
    """The tokens of a page's colorable regions (REGION and SOLID kinds) at the label resolution.

    ``gray``: the page's uint8 gray at the label resolution (``page[::f, ::f]``).
    """
    n = regions.count
    labels = regions.labels
    y0, x0, side = _art_box(regions)
    ys, xs = np.indices(labels.shape, dtype=np.float64)
    flat = labels.ravel()
    area = np.bincount(flat, minlength=n + 1).astype(np.float64)
    safe = np.maximum(area, 1.0)
    my = np.bincount(flat, weights=ys.ravel(), minlength=n + 1) / safe
    mx = np.bincount(flat, weights=xs.ravel(), minlength=n + 1) / safe
    vy = np.bincount(flat, weights=(ys * ys).ravel(), minlength=n + 1) / safe - my * my
    vx = np.bincount(flat, weights=(xs * xs).ravel(), minlength=n + 1) / safe - mx * mx
    cxy = np.bincount(flat, weights=(ys * xs).ravel(), minlength=n + 1) / safe - my * mx
    # Second moments' eigenvalues: how elongated a region is, whatever its orientation.
    tr, det = vy + vx, vy * vx - cxy * cxy
    disc = np.sqrt(np.maximum(tr * tr / 4.0 - det, 0.0))
    l1, l2 = np.maximum(tr / 2.0 + disc, 1e-3), np.maximum(tr / 2.0 - disc, 1e-3)
    elong = 0.25 * np.log(l1 / l2)
    # How much of an ellipse of those moments the region fills (1 for a solid blob, low for a ring).
    fill = np.clip(area / (4.0 * np.pi * np.sqrt(l1 * l2) + 1.0), 0.0, 1.5)
    share = area / side ** 2
    keep = (regions.kind == REGION) | (regions.kind == SOLID)
    keep[0] = False
    keep &= share >= MIN_SHARE
    tone = paper_levels(regions, gray, np.arange(n + 1)).astype(np.float64) / 255.0
    # Context, what a color reference and its line art share: how much of a region's neighbourhood
    # (area-weighted) is dark (solid black, dark tones) and how much is paper outside the art.
    i, j = _neighbours(labels, n)
    w = area[j]
    wsum = np.maximum(np.bincount(i, weights=w, minlength=n + 1), 1e-9)
    ctx_dark = np.bincount(i, weights=w * (tone[j] < TONE_BLACK), minlength=n + 1) / wsum
    ctx_paper = np.bincount(i, weights=w * (regions.kind[j] == PAPER), minlength=n + 1) / wsum
    ctx_count = np.log1p(np.bincount(i, minlength=n + 1).astype(np.float64))
    W = WEIGHTS
    feats = np.stack([
        W["position"] * (my - y0) / side,
        W["position"] * (mx - x0) / side,
        W["area"] * np.log(np.maximum(share, 1e-6)) / 3.0,
        W["shape"] * elong,
        W["shape"] * fill,
        W["context"] * ctx_dark,
        W["context"] * ctx_paper,
        W["context"] * 0.3 * ctx_count,
    ], axis=1).astype(np.float32)
    ids = np.flatnonzero(keep)
    return Tokens(ids=ids, features=feats[ids], tone=tone[ids].astype(np.float32))


def luma8(rgb: np.ndarray) -> np.ndarray:
    """uint8 gray of an sRGB uint8 image (Rec. 601 weights, as PIL's ``convert("L")``)."""
    rgb = np.asarray(rgb, dtype=np.float32)
    return np.clip(rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114 + 0.5, 0, 255).astype(np.uint8)


def region_lab(regions: Regions, rgb: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The per-channel median sRGB of each region's core in ``rgb`` (full resolution), as Lab ``[k, 3]``."""
    f = regions.factor
    small = np.asarray(rgb)[::f, ::f][: regions.labels.shape[0], : regions.labels.shape[1]]
    labels = regions.labels[: small.shape[0], : small.shape[1]]
    core = regions.core[: small.shape[0], : small.shape[1]]
    out = np.full((len(ids), 3), 255, np.uint8)
    position = np.full(regions.count + 1, -1, np.int64)
    position[ids] = np.arange(len(ids))
    where = position[labels]
    sel = (where >= 0) & core
    missing = np.bincount(where[sel], minlength=len(ids)) == 0
    if missing.any():  # a region too thin for a core: all its pixels
        sel |= (where >= 0) & missing[np.maximum(where, 0)]
    k = where[sel]
    for c in range(3):
        hist = np.bincount(k * 256 + small[..., c][sel], minlength=len(ids) * 256).reshape(len(ids), 256)
        total = hist.sum(axis=1)
        med = (np.cumsum(hist, axis=1) * 2 >= np.maximum(total, 1)[:, None]).argmax(axis=1)
        out[:, c] = np.where(total > 0, med, 255)
    return srgb8_to_lab(out)


def prepare_reference(rgb: np.ndarray, name: str = "reference") -> Reference:
    """Segment a colored reference page (``HxWx3`` uint8 sRGB) and take each region's color."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"{name}: a reference must be an RGB image, got shape {rgb.shape}")
    rgb = rgb[..., :3]
    gray = luma8(rgb)
    regions = segment_regions(gray)
    f = regions.factor
    tokens = describe(regions, gray[::f, ::f])
    lab = region_lab(regions, rgb, tokens.ids)
    return Reference(tokens=tokens, lab=lab, name=name, shape=gray.shape, regions_count=regions.count)


@dataclass
class Matches:
    """The regions of a page that took a reference color: ``ids`` (labels), ``lab`` ``[k, 3]``,
    ``distance`` ``[k]`` (token distance of the match), and how many regions were tried."""

    ids: np.ndarray
    lab: np.ndarray
    distance: np.ndarray
    tried: int


def match(regions: Regions, gray: np.ndarray, references: list[Reference], *,
          max_distance: float = MAX_DISTANCE, margin: float = MARGIN) -> Matches:
    """Each colorable region of a page takes the color of its nearest reference token, when confident.

    ``gray``: the page's uint8 gray at the label resolution. Confident: the nearest token lies within
    ``max_distance``, and every token whose color differs from it by more than COLOR_SPLIT (CIE76) lies
    at least ``margin`` times farther (tokens of about the same color agree, whichever is nearest).
    """
    empty = Matches(np.zeros(0, np.int64), np.zeros((0, 3), np.float32), np.zeros(0, np.float32), 0)
    refs = [r for r in references if len(r.tokens.ids)]
    target = describe(regions, gray)
    if not refs or not len(target.ids):
        return Matches(empty.ids, empty.lab, empty.distance, len(target.ids))
    feats = np.concatenate([r.tokens.features for r in refs])
    lab = np.concatenate([r.lab for r in refs]).astype(np.float32)
    tone = np.concatenate([r.tokens.tone for r in refs])
    d2 = ((target.features[:, None, :] - feats[None, :, :]) ** 2).sum(-1) + tone_cost(target.tone, tone) ** 2
    d = np.sqrt(np.maximum(d2, 0.0))
    # The references that fit the page: a chapter's color pages show other characters too. Each
    # reference's fit is the median distance from the page's tokens to their nearest in it; those
    # clearly worse than the best are left out.
    owner = np.concatenate([np.full(len(r.tokens.ids), k) for k, r in enumerate(refs)])
    if len(refs) > 1:
        fit = np.array([np.median(d[:, owner == k].min(axis=1)) for k in range(len(refs))])
        d = np.where((fit <= fit.min() * FIT_SLACK)[owner][None, :], d, np.inf)
    best = d.argmin(axis=1)
    best_d = d[np.arange(len(best)), best]
    color_gap = np.sqrt(((lab[best][:, None, :] - lab[None, :, :]) ** 2).sum(-1))
    rival = np.where(color_gap > COLOR_SPLIT, d, np.inf).min(axis=1)
    ok = (best_d <= max_distance) & (rival >= margin * best_d)
    taken = lab[best[ok]].copy()
    # A toned region (gray shading, screentone, solid black) keeps the page's lightness and takes the
    # reference's hue and chroma only: the page already says how dark it is. White paper takes the
    # reference color whole (line art leaves every color white).
    tone = target.tone[ok]
    toned = tone < TONE_WHITE
    taken[toned, 0] = gray_to_l(tone[toned])
    return Matches(target.ids[ok], taken, best_d[ok].astype(np.float32), len(target.ids))
