"""Reference pages: a colored page carries its colors, region by region, to the B/W pages of the same
characters (docs/ARCHITECTURE.md, "Reference pages"). numpy only, like the segmentation.

The paint-bucket counterpart of BasicPBC and DACoN, without their learned matcher: both pages are cut
into the regions of the flat fill (``models.paint.segmentation``), each region becomes a token of what a
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

from ..cie import luma8, srgb8_to_lab
from .raster import label, label_boxes
from .regions import BALLOON, PAPER, REGION, SOLID, Regions, paper_levels, segment_regions

# Regions larger than this share of the page are backgrounds (a panel's sky, a screentoned wall): they
# change from page to page, are never matched, and split the page into figures.
BACKGROUND_SHARE = 0.03
BACKGROUND_BOX = 0.09  # ... and whose bounding box covers this share of the page (a figure's coat does not)
BACKGROUND_EDGE = 0.6  # ... and that fills this share of its box's rim (a panel), solid black or not
BACKGROUND_RIM = 0.05  # the rim's width, a share of the box's shorter side
# A region of at least PIECE_SHARE of the page, its box at least PIECE_SIDE label pixels each way,
# that covers PIECE_EDGE of two sides of its box or more is a piece of a panel's background.
PIECE_SHARE = 0.004
PIECE_SIDE = 24
PIECE_EDGE = 0.85
# Inside a panel (PANEL_*), a region of at least FRAME_SHARE of the page that covers PIECE_EDGE of one side
# of its box is a piece of the panel's background too (the white between a figure and the frame, a strip
# between speed lines) when, beyond that side, a line at most FRAME_REACH label pixels thick (the frame)
# has open paper outside the art behind it (the gutter, the margin: FRAME_GUTTER pixels or more), or when
# the side is a long one (the box FRAME_STRIP times longer than wide) and FRAME_PAPER of its neighbourhood
# is such paper (strips between speed lines, ended by the frame). A figure's part meets open paper along
# its curved outline instead; one cut straight by the frame (a close-up) is lost with them.
FRAME_SHARE = 0.002
FRAME_REACH = 8
FRAME_GUTTER = 6
FRAME_PAPER = 0.3
FRAME_STRIP = 1.5
FRAME_SIDE = 8
# Panels (:func:`_in_panels`): pieces of the page apart from the paper outside the art that fill PANEL_FILL
# of their box, each side at least PANEL_SIDE of the page's. A lone figure on a page is none.
PANEL_FILL = 0.9
PANEL_SIDE = 0.1
# A match whose reference figure holds under this share of its page figure's matched area is dropped: one
# figure of a page is one or two figures of the references, and the rest are strays (`match`).
FIGURE_SHARE = 0.25
# A match whose region has matched neighbours on the page needs this many of them to agree with it (to have
# matched the same reference token, one of its neighbours or one of its color): a figure's parts border the
# same parts on both pages, and a stray match borders strangers (0: not asked).
NEIGHBOUR_SUPPORT = 1
# ... and a match with no matched neighbour is dropped when its region is a thin strip: elongation (a quarter of
# the log of its moments' ratio) of at least LONE_STRIP, about 2.7 times as long as wide (the strips between
# speed lines; a figure's arm or strap has matched neighbours).
LONE_STRIP = 0.5
# On a reference, a token within this CIE76 distance of a colored background's color is background too.
BACKGROUND_COLOR = 10.0
# Regions smaller than this share of their figure's box are not matched (specks, line fragments),
# and neither taken from a reference.
MIN_SHARE = 2e-4
# Two regions are neighbours when they lie this many label pixels apart across a row or a column
# (a line between them is ink deeper than the regrowth: label 0).
NEIGHBOUR_REACH = (1, 3, 6)
# The token's features, in this order: centroid down and across its figure's box (0..1), log of its
# area's share of the box, elongation and fill of its moments, the share of its neighbourhood that is
# dark, that is paper outside the art, and log(1 + its neighbours).
FEATURES = ("y", "x", "log_share", "elongation", "fill", "dark_neighbours", "paper_neighbours", "neighbours")
# Their weights in the token distance (set by hand on comicgen figures, each feature in units of
# about one typical difference between two parts of a figure), and the weight of the tone cost.
FEATURE_WEIGHTS = np.array([3.0, 3.0, 0.8 / 3.0, 0.6, 0.6, 0.8, 0.8, 0.24])
TONE_WEIGHT = 1.5
# A match counts when its distance is below MAX_DISTANCE and the nearest token of a clearly other
# color (CIEDE76 > COLOR_SPLIT) is at least MARGIN farther.
MAX_DISTANCE = 1.2
MARGIN = 1.08
COLOR_SPLIT = 12.0
# A reference whose median token distance to the page exceeds the best reference's by this factor
# is left out for that page.
FIT_SLACK = 1.15
# ``match(max_fit=...)``: a reference whose median token distance to the page exceeds it is left out
# whatever the others. Off by default: on held-out single figures the right reference's median lies
# near 0.3-0.4 and another character's near 0.45-1.0, but on composed manga pages (panels, tones,
# balloons) the right reference's lies at 0.58-0.90, so no threshold keeps the right one and drops
# the wrong one (docs/MODELS.md, "Reference pages").
MAX_FIT = float("inf")
# A match must also be among the MUTUAL_K nearest page tokens of the reference token (0: not asked).
MUTUAL_K = 3
# On a color page, pixels above this chroma (opponent channels, 8-bit levels) are never ink, however dark.
INK_CHROMA = 12.0
# Reference colors below this chroma (Lab units) are neutral: not taken.
NEUTRAL_CHROMA = 4.0
# Tone: paper at or above TONE_WHITE counts as white; a reference luma under TONE_BLACK as black;
# a toned region's level may differ from its reference's luma by TONE_SLACK for free.
TONE_WHITE = 0.85
TONE_BLACK = 0.25
TONE_SLACK = 0.08
TONE_SCALE = 0.2


@dataclass
class Tokens:
    """One row per matched region: ``ids`` (labels), ``features`` ``[k, d]`` float32, ``tone`` ``[k]``
    (paper level, 0 black .. 1 white), ``background`` ``[k]`` bool: a piece of a panel's background along
    its frame, never matched on a page nor taken from a reference, but a rival of a reference's other
    tokens all the same (None: none is); ``figure`` ``[k]``: the figure (a connected piece of the art,
    ``_figures``) the region lies in, 0 for none (None: unknown); ``adjacent`` ``[p, 2]``: pairs of rows whose
    regions are neighbours (``_neighbours``), both orders (None: unknown)."""

    ids: np.ndarray
    features: np.ndarray
    tone: np.ndarray
    background: np.ndarray | None = None
    figure: np.ndarray | None = None
    adjacent: np.ndarray | None = None

    def backgrounds(self) -> np.ndarray:
        return self.background if self.background is not None else np.zeros(len(self.ids), bool)


def tone_cost(target: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``[k, m]``: how unlikely a region of paper level ``target`` (0 black .. 1 white) is drawn from a
    reference region of luma ``reference``. White paper may be any color but black (line art leaves
    colors white, and inks black areas black); a toned or dark region keeps about its reference's luma
    (a gray page is the luma of its colors; screentone and solid blacks stand for dark colors)."""
    t, r = target[:, None], reference[None, :]
    white = np.maximum(0.0, TONE_BLACK - r) / TONE_BLACK
    toned = np.maximum(0.0, np.abs(t - r) - TONE_SLACK) / TONE_SCALE
    return TONE_WEIGHT * np.where(t >= TONE_WHITE, white, toned)


@dataclass
class Reference:
    """A prepared reference: its tokens and each token's Lab color; ``name`` for messages."""

    tokens: Tokens
    lab: np.ndarray
    name: str = "reference"
    shape: tuple[int, int] = (0, 0)
    regions_count: int = 0
    extra: dict = field(default_factory=dict)


def _boxes(labels: np.ndarray, n: int) -> np.ndarray:
    """``[4, n + 1]``: each label's first and last row and column (``raster.label_boxes`` read from the label
    map's runs; an absent label's box is empty: its last row and column come before its first)."""
    box = label_boxes(labels, n + 1, np.ones(n + 1, bool))
    return box[:, [0, 2, 1, 3]].T


def _straight_sides(labels: np.ndarray, box: np.ndarray, k: int) -> np.ndarray:
    """Which sides of label ``k``'s box (top, bottom, left, right) it runs straight along: it covers
    PIECE_EDGE of a 2-pixel band inside the side."""
    y0, x0, y1, x1 = box[:, k]
    inside = labels[y0:y1 + 1, x0:x1 + 1] == k
    return np.array([float(band.any(axis=axis).mean()) > PIECE_EDGE for band, axis in
                     ((inside[:2], 0), (inside[-2:], 0), (inside[:, :2], 1), (inside[:, -2:], 1))])


def _in_panels(regions: Regions) -> np.ndarray:
    """Per label: whether it lies inside a panel, a piece of the page apart from the paper outside the art
    (ink included) that fills PANEL_FILL of its box, each side at least PANEL_SIDE of the page's. A lone
    figure on a page fills far less of its box."""
    labels = regions.labels
    h, w = labels.shape
    art = ~(regions.kind == PAPER)[labels]
    comp, m = label(art, eight=False)
    inside = np.zeros(regions.count + 1, bool)
    if m == 0:
        return inside
    box = _boxes(comp, m)
    size = np.bincount(comp.ravel(), minlength=m + 1)
    bh, bw = box[2] - box[0] + 1, box[3] - box[1] + 1
    panel = ((size >= PANEL_FILL * np.maximum(bh, 0) * np.maximum(bw, 0))
             & (bh >= PANEL_SIDE * h) & (bw >= PANEL_SIDE * w))
    panel[0] = False
    inside[labels[panel[comp]]] = True
    inside[0] = False
    return inside


def _speed_strip(box: np.ndarray, k: int, straight: np.ndarray) -> bool:
    """Whether label ``k`` runs straight along a long side of its box (FRAME_STRIP times the short one);
    ``straight``: its :func:`_straight_sides`."""
    height, width = box[2, k] - box[0, k] + 1, box[3, k] - box[1, k] + 1
    return bool((width >= FRAME_STRIP * height and straight[:2].any())
                or (height >= FRAME_STRIP * width and straight[2:].any()))


def _outward(image: np.ndarray, side: int, at: int, a: int, b: int, depth: int) -> np.ndarray:
    """``depth`` rows of ``image`` going outward from side ``side`` (0 top, 1 bottom, 2 left, 3 right) of a
    box whose side lies at row or column ``at`` (that row first), positions ``a..b`` along it."""
    if side == 0:
        return image[max(0, at - depth + 1):at + 1, a:b + 1][::-1]
    if side == 1:
        return image[at:at + depth, a:b + 1]
    if side == 2:
        return image[a:b + 1, max(0, at - depth + 1):at + 1][:, ::-1].T
    return image[a:b + 1, at:at + depth].T


def _beyond(labels: np.ndarray, gray: np.ndarray, paper: np.ndarray, side: int, at: int, lo: int,
            hi: int) -> np.ndarray:
    """Per position ``lo..hi`` along side ``side`` of a box whose side lies at row or column ``at``: whether,
    going outward, an ink line (gray under 128) comes first and, within FRAME_REACH pixels, paper outside
    the art (``paper``: per label) that goes on for FRAME_GUTTER pixels. Positions off the page are False."""
    h, w = labels.shape
    r, g = FRAME_REACH, FRAME_GUTTER
    out = np.zeros(hi - lo + 1, bool)
    a, b = max(lo, 0), min(hi, (w if side < 2 else h) - 1)
    if b < a:
        return out
    band = _outward(labels, side, at, a, b, 1 + r + g)[1:]
    dark = _outward(gray, side, at, a, b, 1 + r)
    if band.shape[0] < r + g:
        return out
    found = band[:r] > 0
    start = found.argmax(axis=0)
    cols = np.arange(band.shape[1])
    first = band[start, cols]
    rows = start[None, :] + np.arange(g)[:, None]
    # An ink pixel between the side and the paper (the side's own row included: regrowth takes part of a line).
    inked = np.minimum.accumulate(dark, axis=0)[start, cols] < 128
    out[a - lo:b - lo + 1] = (found.any(axis=0) & paper[first] & inked
                              & (band[rows, cols[None, :]] == first[None, :]).all(axis=0))
    return out


def _against_frame(labels: np.ndarray, gray: np.ndarray, paper: np.ndarray, box: np.ndarray, k: int,
                   straight: np.ndarray) -> bool:
    """Whether label ``k`` runs along a panel's frame: straight along a side of its box (``straight``: its
    :func:`_straight_sides`), with a line and open paper beyond it (the gutter, the margin: :func:`_beyond`)
    on PIECE_EDGE of the side."""
    y0, x0, y1, x1 = box[:, k]
    for side, (at, lo, hi) in enumerate(((y0, x0, x1), (y1, x0, x1), (x0, y0, y1), (x1, y0, y1))):
        if straight[side] and float(_beyond(labels, gray, paper, side, at, lo, hi).mean()) > PIECE_EDGE:
            return True
    return False


def _figures(regions: Regions, area: np.ndarray,
             box: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each label's figure box and figure: ``(y0, x0, side, background, figure)`` per label, at label
    resolution (``figure``: the index of the figure it lies in, 0 for none).

    A figure is a connected piece of the art once the paper outside it, balloons and backgrounds
    (regions larger than BACKGROUND_SHARE of the page spread over BACKGROUND_BOX of it: a panel's sky,
    a screentoned wall) are taken
    away; its box runs from its top down its height, centered across on its mass (arms spread or not,
    the body stays in the middle). A page of several panels and figures thus places each region in
    its own figure, as a single drawing on a page places it in the drawing. ``box``: each label's box
    (:func:`_boxes`).
    """
    n = regions.count
    labels = regions.labels
    box_area = np.maximum(box[2] - box[0] + 1, 0) * np.maximum(box[3] - box[1] + 1, 0)
    background = ((area > BACKGROUND_SHARE * labels.size) & (box_area > BACKGROUND_BOX * labels.size)
                  & ((regions.kind == REGION) | (regions.kind == SOLID)))
    # ... and fills the rim of its box (a panel, up to its frame); a large face or dark hair does not.
    for k in np.flatnonzero(background):
        y0b, x0b, y1b, x1b = box[:, k]
        inside = labels[y0b:y1b + 1, x0b:x1b + 1] == k
        w = max(2, int(BACKGROUND_RIM * min(inside.shape)))
        ring = np.concatenate([inside[:w].ravel(), inside[-w:].ravel(), inside[:, :w].ravel(), inside[:, -w:].ravel()])
        background[k] = ring.mean() > BACKGROUND_EDGE
    # Pieces of a panel's background (cut by a figure, a balloon, a tone step) run straight along the
    # panel's frame on two sides or more; a figure's part rarely does.
    sides_h = box[2] - box[0] + 1
    sides_w = box[3] - box[1] + 1
    pieces = ((area > PIECE_SHARE * labels.size) & ~background & (sides_h >= PIECE_SIDE) & (sides_w >= PIECE_SIDE)
              & ((regions.kind == REGION) | (regions.kind == SOLID)))
    pieces[0] = False
    for k in np.flatnonzero(pieces):
        background[k] = _straight_sides(labels, box, k).sum() >= 2
    outside = (regions.kind == PAPER) | (regions.kind == BALLOON) | background
    outside[0] = False
    art = ~outside[labels]
    comp, m = label(art, eight=True)
    y0 = np.zeros(n + 1)
    x0 = np.zeros(n + 1)
    side = np.ones(n + 1)
    if m == 0:
        return y0, x0, side, background, np.zeros(n + 1, np.int64)
    ys, xs = np.nonzero(art)
    c = comp[ys, xs]
    comp_box = _boxes(comp, m)
    top, bottom = comp_box[0], comp_box[2]
    count = np.maximum(np.bincount(c, minlength=m + 1), 1)
    cx = np.bincount(c, weights=xs, minlength=m + 1) / count
    height = np.maximum(bottom - top + 1, 1).astype(np.float64)
    # Each label's figure: the component most of its pixels lie in.
    pair = labels[ys, xs].astype(np.int64) * (m + 1) + c
    if (n + 1) * (m + 1) <= 8_000_000:
        table = np.bincount(pair, minlength=(n + 1) * (m + 1)).reshape(n + 1, m + 1)
        lab_of = np.flatnonzero(table.any(axis=1))
        comp_of = table[lab_of].argmax(axis=1)  # ties: the first component, as the sort below
    else:
        codes, counts = np.unique(pair, return_counts=True)
        order = np.lexsort((-counts, codes // (m + 1)))
        codes = codes[order]
        first = np.unique(codes // (m + 1), return_index=True)[1]
        lab_of, comp_of = codes[first] // (m + 1), codes[first] % (m + 1)
    y0[lab_of] = top[comp_of]
    side[lab_of] = height[comp_of]
    x0[lab_of] = cx[comp_of] - height[comp_of] / 2.0
    figure = np.zeros(n + 1, np.int64)
    figure[lab_of] = comp_of
    return y0, x0, side, background, figure


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
    return _describe(regions, gray)[0]


def _describe(regions: Regions, gray: np.ndarray) -> tuple[Tokens, np.ndarray]:
    """:func:`describe`, and the labels of the page's large backgrounds (no tokens: a panel's sky)."""
    n = regions.count
    labels = regions.labels
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
    box = _boxes(labels, n)
    y0, x0, side, background, figure = _figures(regions, area, box)
    share = area / side ** 2
    keep = (regions.kind == REGION) | (regions.kind == SOLID)
    keep[0] = False
    keep &= (share >= MIN_SHARE) & ~background
    tone = paper_levels(regions, gray, np.arange(n + 1)).astype(np.float64) / 255.0
    # Context, what a color reference and its line art share: how much of a region's neighbourhood
    # (area-weighted) is dark (solid black, dark tones) and how much is paper outside the art.
    i, j = _neighbours(labels, n)
    w = area[j]
    wsum = np.maximum(np.bincount(i, weights=w, minlength=n + 1), 1e-9)
    ctx_dark = np.bincount(i, weights=w * (tone[j] < TONE_BLACK), minlength=n + 1) / wsum
    ctx_paper = np.bincount(i, weights=w * (regions.kind[j] == PAPER), minlength=n + 1) / wsum
    ctx_count = np.log1p(np.bincount(i, minlength=n + 1).astype(np.float64))
    # Pieces of a panel's background along its frame (FRAME_SHARE): neither matched nor taken, but rivals
    # of a reference's other tokens (a page region that looks as much like the reference's background as
    # like one of its figure's parts is no clear match).
    framed = keep & (area > FRAME_SHARE * labels.size)
    framed &= (np.minimum(box[2] - box[0], box[3] - box[1]) + 1 >= FRAME_SIDE)
    if framed.any():
        framed &= _in_panels(regions)
    paper = regions.kind == PAPER
    framed_piece = np.zeros(n + 1, bool)
    for k in np.flatnonzero(framed):
        straight = _straight_sides(labels, box, k)
        framed_piece[k] = (_against_frame(labels, gray, paper, box, k, straight)
                           or (ctx_paper[k] > FRAME_PAPER and _speed_strip(box, k, straight)))
    raw = np.stack([(my - y0) / side, (mx - x0) / side, np.log(np.maximum(share, 1e-6)), elong, fill,
                    ctx_dark, ctx_paper, ctx_count], axis=1)
    feats = (raw * FEATURE_WEIGHTS).astype(np.float32)
    ids = np.flatnonzero(keep)
    row = np.full(n + 1, -1, np.int64)
    row[ids] = np.arange(len(ids))
    both = (row[i] >= 0) & (row[j] >= 0)
    tokens = Tokens(ids=ids, features=feats[ids], tone=tone[ids].astype(np.float32),
                    background=framed_piece[ids], figure=figure[ids],
                    adjacent=np.stack([row[i][both], row[j][both]], axis=1))
    return tokens, np.flatnonzero(background)


def region_lab(regions: Regions, rgb: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The per-channel median sRGB of each region's core in ``rgb`` (full resolution), as Lab ``[k, 3]``
    (a region too thin for a core: of all its pixels)."""
    f = regions.factor
    small = np.asarray(rgb)[::f, ::f]
    out = np.stack([paper_levels(regions, small[..., c], ids, thin=True) for c in range(3)], axis=1)
    return srgb8_to_lab(out)


def ink_of_color_page(rgb: np.ndarray, gray: np.ndarray) -> np.ndarray:
    """The gray a color page is segmented on: its luma, with every colored pixel (chroma above
    INK_CHROMA) lifted into the upper half of the range, so that only neutral dark pixels are ink.
    A dark brown face or a purple coat is a color, not a solid black; tone steps between colors stay
    (halved). The chroma is the opponent channels' (half the largest of |R - G| and |G - B|, in 8-bit
    levels): the page's Lab would cost ~1 s on a 1200x1700 page."""
    c = rgb.astype(np.int16)
    chroma = np.maximum(np.abs(c[..., 0] - c[..., 1]), np.abs(c[..., 1] - c[..., 2])) / 2.0
    colored = chroma > INK_CHROMA
    lifted = (128 + gray.astype(np.uint16) // 2).astype(np.uint8)
    return np.where(colored, lifted, gray)


def prepare_references(rgb: np.ndarray, name: str = "reference") -> list[Reference]:
    """A colored page as references: segmented as line art sees it (dark colors are areas, not ink:
    :func:`ink_of_color_page`) and, where it has dark colors, as a gray page sees it too (its plain
    luma, where they are dark areas). ``match`` keeps, page by page, whichever fits the page better."""
    rgb = np.asarray(rgb)[..., :3]
    gray = luma8(rgb)
    ink = ink_of_color_page(rgb, gray)
    lifted = _prepare(rgb, gray, ink, name)
    if np.array_equal(ink < 128, gray < 128):
        return [lifted]
    return [lifted, _prepare(rgb, gray, gray, name)]


def prepare_reference(rgb: np.ndarray, name: str = "reference", *, lift: bool = True) -> Reference:
    """Segment a colored reference page (``HxWx3`` uint8 sRGB) and take each region's color.
    ``lift``: segment it on :func:`ink_of_color_page` (else on its plain luma)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"{name}: a reference must be an RGB image, got shape {rgb.shape}")
    rgb = rgb[..., :3]
    gray = luma8(rgb)
    return _prepare(rgb, gray, ink_of_color_page(rgb, gray) if lift else gray, name)


def _prepare(rgb: np.ndarray, gray: np.ndarray, segmented_on: np.ndarray, name: str) -> Reference:
    regions = segment_regions(segmented_on)
    f = regions.factor
    tokens, backgrounds = _describe(regions, gray[::f, ::f])
    lab = region_lab(regions, rgb, tokens.ids)
    # A panel's color seen between a figure's arms and legs is background too: tokens within
    # BACKGROUND_COLOR of a colored background (a large one, a piece along a frame) are rivals only.
    backdrop = tokens.backgrounds()
    colors = np.concatenate([region_lab(regions, rgb, backgrounds), lab[backdrop]])
    colors = colors[np.hypot(colors[:, 1], colors[:, 2]) >= NEUTRAL_CHROMA]
    if len(colors) and len(lab):
        near = np.sqrt(((lab[:, None, :] - colors[None, :, :]) ** 2).sum(-1)).min(axis=1) < BACKGROUND_COLOR
        tokens = Tokens(ids=tokens.ids, features=tokens.features, tone=tokens.tone, background=backdrop | near,
                        figure=tokens.figure, adjacent=tokens.adjacent)
    return Reference(tokens=tokens, lab=lab, name=name, shape=gray.shape, regions_count=regions.count)


def _color_adjacent(reference: Reference) -> np.ndarray:
    """``[k, k]`` bool: token rows whose colors border each other somewhere on the reference (each row's
    color and its neighbours' colors, CIE76 within COLOR_SPLIT), made once per reference. Two rows of one
    color are :func:`_agreed`'s own test."""
    cached = reference.extra.get("color_adjacent")
    if cached is None:
        k = len(reference.tokens.ids)
        lab = reference.lab.astype(np.float32)
        same = (np.sqrt(((lab[:, None, :] - lab[None, :, :]) ** 2).sum(-1)) <= COLOR_SPLIT).astype(np.float32)
        adjacent = np.zeros((k, k), np.float32)
        if reference.tokens.adjacent is not None and len(reference.tokens.adjacent):
            adjacent[reference.tokens.adjacent[:, 0], reference.tokens.adjacent[:, 1]] = 1.0
        cached = (same @ adjacent @ same) > 0
        reference.extra["color_adjacent"] = cached
    return cached


def _agreed(ok: np.ndarray, best: np.ndarray, adjacent: np.ndarray, refs: list[Reference],
            strip: np.ndarray | None = None) -> np.ndarray:
    """``ok`` less the matches their neighbours disagree with. A matched neighbour agrees when its color and
    the match's border each other on the match's reference (the same color, or two colors of neighbouring
    regions there: ``Tokens.adjacent``); a match whose region has matched neighbours needs
    ``NEIGHBOUR_SUPPORT`` of them to agree. A match with no matched neighbour stays (nothing speaks for or
    against it) unless its region is a thin strip (``strip``, per row: the strips between speed lines)."""
    sizes = np.array([len(r.tokens.ids) for r in refs], np.int64)
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    owner = np.repeat(np.arange(len(refs)), sizes)
    a, b = adjacent[:, 0], adjacent[:, 1]
    sel = ok[b]
    a, b = a[sel], b[sel]
    ta, tb = best[a], best[b]
    agree = np.zeros(len(a), bool)
    for k, r in enumerate(refs):
        mine = (owner[ta] == k) & (owner[tb] == k)
        if mine.any():
            agree[mine] = _color_adjacent(r)[ta[mine] - start[k], tb[mine] - start[k]]
    lab = np.concatenate([r.lab for r in refs])
    agree |= np.sqrt(((lab[ta] - lab[tb]) ** 2).sum(-1)) <= COLOR_SPLIT
    matched = np.bincount(a, minlength=len(ok))
    support = np.bincount(a[agree], minlength=len(ok))
    lone_ok = np.ones(len(ok), bool) if strip is None else ~np.asarray(strip, bool)
    return ok & (((matched == 0) & lone_ok) | ((matched > 0) & (support >= NEIGHBOUR_SUPPORT)))


@dataclass
class Matches:
    """The regions of a page that took a reference color: ``ids`` (labels), ``lab`` ``[k, 3]``,
    ``distance`` ``[k]`` (token distance of the match), and how many regions were tried."""

    ids: np.ndarray
    lab: np.ndarray
    distance: np.ndarray
    tried: int


def match(regions: Regions, gray: np.ndarray, references: list[Reference], *,
          max_distance: float = MAX_DISTANCE, margin: float = MARGIN, max_fit: float = MAX_FIT,
          mutual_k: int = MUTUAL_K) -> Matches:
    """Each colorable region of a page takes the color of its nearest reference token, when confident.

    ``gray``: the page's uint8 gray at the label resolution. Confident: the nearest token lies within
    ``max_distance``, and every token whose color differs from it by more than COLOR_SPLIT (CIE76) lies
    at least ``margin`` times farther (tokens of about the same color agree, whichever is nearest).
    """
    empty = Matches(np.zeros(0, np.int64), np.zeros((0, 3), np.float32), np.zeros(0, np.float32), 0)
    refs = [r for r in references if len(r.tokens.ids)]
    target = describe(regions, gray)
    # The page's background pieces are tokens (for the mutual check) but never matched.
    matchable = ~target.backgrounds()
    tried = int(matchable.sum())
    if not refs or not tried:
        return Matches(empty.ids, empty.lab, empty.distance, tried)
    feats = np.concatenate([r.tokens.features for r in refs])
    lab = np.concatenate([r.lab for r in refs]).astype(np.float32)
    tone = np.concatenate([r.tokens.tone for r in refs])
    d2 = ((target.features[:, None, :] - feats[None, :, :]) ** 2).sum(-1) + tone_cost(target.tone, tone) ** 2
    d = np.sqrt(np.maximum(d2, 0.0))
    # The references that fit the page: a chapter's color pages show other characters too. Each
    # reference's fit is the median distance from the page's tokens to their nearest in it; those
    # clearly worse than the best are left out.
    owner = np.concatenate([np.full(len(r.tokens.ids), k) for k, r in enumerate(refs)])
    fit = np.array([np.median(d[:, owner == k].min(axis=1)) for k in range(len(refs))])
    usable = (fit <= fit.min() * FIT_SLACK) & (fit <= max_fit)
    if not usable.any():
        return Matches(empty.ids, empty.lab, empty.distance, tried)
    d = np.where(usable[owner][None, :], d, np.inf)
    # A reference's background pieces are rivals only: never the match.
    takable = np.where(np.concatenate([r.tokens.backgrounds() for r in refs])[None, :], np.inf, d)
    best = takable.argmin(axis=1)
    best_d = takable[np.arange(len(best)), best]
    color_gap = np.sqrt(((lab[best][:, None, :] - lab[None, :, :]) ** 2).sum(-1))
    rival = np.where(color_gap > COLOR_SPLIT, d, np.inf).min(axis=1)
    ok = matchable & (best_d <= max_distance) & (rival >= margin * best_d)
    # Mutual: the reference token is among the MUTUAL_K nearest page tokens of its own (a panel's
    # background cut into strips by speed lines offers many near copies of one token; a figure's part
    # offers one per figure).
    if mutual_k:
        finite = np.where(np.isfinite(d), d, np.inf)
        kth = np.sort(finite, axis=0)[min(mutual_k, len(finite)) - 1]
        ok &= best_d <= kth[best]
    # One figure of the page is one or two figures of the references: a match from a reference figure
    # that holds under FIGURE_SHARE of the page figure's matched area is a stray.
    if FIGURE_SHARE and target.figure is not None and all(r.tokens.figure is not None for r in refs):
        ref_fig = np.concatenate([r.tokens.figure for r in refs])[best]
        area = np.bincount(regions.labels.ravel(), minlength=regions.count + 1)[target.ids].astype(np.float64)
        rows = np.flatnonzero(ok)
        # Each match's (page figure, reference, reference figure), and the page figure's matched area.
        pair = np.stack([target.figure[rows], owner[best[rows]], ref_fig[rows]], axis=1)
        uniq, inv = np.unique(pair, axis=0, return_inverse=True)
        inv = inv.ravel()
        held = np.bincount(inv, weights=area[rows])
        _, fig_inv = np.unique(uniq[:, 0], return_inverse=True)
        total = np.bincount(fig_inv.ravel(), weights=held)[fig_inv.ravel()]
        ok[rows] = (held / np.maximum(total, 1e-9))[inv] >= FIGURE_SHARE
    # Neighbours agree: a figure's parts border the same parts on both pages.
    if NEIGHBOUR_SUPPORT and target.adjacent is not None and all(r.tokens.adjacent is not None for r in refs):
        thin = target.features[:, FEATURES.index("elongation")] / FEATURE_WEIGHTS[FEATURES.index("elongation")]
        ok = _agreed(ok, best, target.adjacent, refs, thin >= LONE_STRIP)
    # A neutral reference color (white, gray, black) adds nothing the page does not show.
    ok &= np.hypot(lab[best][:, 1], lab[best][:, 2]) >= NEUTRAL_CHROMA
    taken = lab[best[ok]].copy()
    # A toned region (gray shading, screentone, solid black) keeps the page's lightness and takes the
    # reference's hue and chroma only: the page already says how dark it is. White paper takes the
    # reference color whole (line art leaves every color white).
    # (NaN lightness: the compose lays the hue under the page's own lightness, as the model's colors.)
    toned = target.tone[ok] < TONE_WHITE
    taken[toned, 0] = np.nan
    return Matches(target.ids[ok], taken, best_d[ok].astype(np.float32), tried)
