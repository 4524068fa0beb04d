"""A page's regions: the areas enclosed by ink that a colorist flats, found on the page's own gray
(docs/ARCHITECTURE.md, "Color"). numpy only: no torch, no scipy, no scikit-image (the ONNX path of
colorize imports none of them).

Pipeline of :func:`segment_regions` (``f`` = the reduction factor, 2 for a 1200x1700 page; every
size below is at the label resolution, about 850 px on the long side, so a page's screentone and
line widths stay in the same range whatever its scan resolution):

1. **Ink** at the label resolution: a block is ink when its mean gray is below ``ink_level`` (a
   block half covered by a black line counts, so a 1-px line at full resolution stays a line).
2. **Lines vs texture** (screentone dots and letters are small 8-connected ink components, lines
   large ones: measured on a real scanned spread, the sample chapter agrees; a degraded copy of it,
   gray paper, noise and JPEG at quality 40, segments the same): an ink component is a *line* when
   its bounding box spans at least ``line_extent`` px. Dots, letters and hatching stubs are texture
   and belong to the region around them. Dark tone is the other way round (a connected ink mesh
   around small paper holes): ink within ``mesh_radius`` px of a small paper hole is texture too,
   unless it also borders open paper. Dense straight 1-px strokes (hatching) are shading, not lines;
   1-px gray outlines lost in the block mean (a card's edge) are lines again.
3. **Tone edges** split the paper where its gray steps by more than ``tone_step`` without a line
   (``models.paint.trapped_ball.tone_edges``: gray-shaded art, whose colors meet without ink).
4. **Gaps** are closed by trapped balls (``models.paint.trapped_ball``): a fill stops at every gap
   narrower than its ball, the strips no ball reaches join the fill they border longest. The lines
   and slivers then take their neighbors' labels by ``fill_iterations`` rounds of a 3x3 max filter,
   so the anti-aliased edges of lines take their region's label.
5. **Kinds**: a large white region touching the page border is *paper outside the art* (margins),
   and so are the thin white fills meeting it in open paper (gutters); an enclosed white region
   holding a row of letter-sized components is a *balloon*; ink deeper than the regrowth, where a
   ball of ``solid_radius`` fits, is *solid* (solid blacks). All three stay neutral under the
   model's colors; hints color solid areas. Paper specks in a solid's noisy rim (regions with a core
   under ``min_region`` px, mostly ink) join the solid, or the model would color them.

Labels map back to full resolution exactly by block repetition (:meth:`Regions.full_labels`).

Why no scipy and no OpenCV on this path: start-up. ``scipy.ndimage`` costs 0.27 s of CPU to import
(0.4 s against numpy's 0.13 s), a quarter of a one-page run (docs/PERFORMANCE.md, "Start-up"), and
OpenCV is a 60 MB wheel: the max filters and the labeling are ``models.paint.raster``'s. Cost: about 95-100 ms
a 1200x1700 page on a slow day of the 2-core machine (docs/PERFORMANCE.md, "The segmentation 31% faster").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cie import l_to_gray8, luma
from . import trapped_ball as tb
from .raster import boxes_of, grow, label, label_boxes, label_spans, max_filter
from .tone_split import TONE_SPLIT_PART, split_tones


# Region kinds.
REGION = 0
PAPER = 1      # paper outside the art: margins, gutters
BALLOON = 2    # enclosed white region with text
SOLID = 3      # a solid black (or dark-shaded) area: no model color shows on it, a known color does

# How much darker than its block's mean a thin line's darkest pixel is (gray levels).
THIN_CONTRAST = 24
# A SOLID under this share ink is a textured one (a dense stipple or screen); its holes with a core under
# TEXTURE_HOLE times min_region and ENCLOSED of their border its own join it (_join_ink_fragments).
SOLID_TEXTURED = 0.85
TEXTURE_HOLE = 4
ENCLOSED = 0.8

# Defaults at the label resolution (about LABEL_SIDE px on the long side).
LABEL_SIDE = 900
# Below this long side (at the label resolution) the sizes shrink with the page.
SMALL_SIDE = 512


@dataclass
class Regions:
    """A page's regions at the label resolution.

    ``labels``: int32 ``[h, w]`` (0 = deep ink, no region; 1..n regions), ``h = ceil(H / factor)``.
    ``kind``: per label (index 0 included) REGION, PAPER or BALLOON. ``core``: bool ``[h, w]``,
    the pixels of each region away from the lines (where its color is measured). ``shape``: the
    full-resolution ``(H, W)``.
    """

    labels: np.ndarray
    kind: np.ndarray
    core: np.ndarray
    factor: int
    shape: tuple[int, int]

    @property
    def count(self) -> int:
        return len(self.kind) - 1

    @property
    def neutral(self) -> np.ndarray:
        """Per label: True where the model leaves the region neutral (label 0, paper, balloons, solid blacks)."""
        out = self.kind != REGION
        out[0] = True
        return out

    def full_labels(self) -> np.ndarray:
        """Labels at the page's full resolution ``[H, W]`` (each label pixel covers a ``factor`` block)."""
        return upsample_blocks(self.labels, self.factor, self.shape)


def upsample_blocks(x: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Repeat each pixel of ``x`` (``[..., h, w]``) into a ``factor x factor`` block, cropped to ``shape``."""
    if factor == 1:
        return x[..., :shape[0], :shape[1]]
    h, w = x.shape[-2:]
    out = np.empty(x.shape[:-2] + (h, factor, w, factor), dtype=x.dtype)
    out[...] = x[..., :, None, :, None]
    return out.reshape(x.shape[:-2] + (h * factor, w * factor))[..., :shape[0], :shape[1]]


def _pad_to_blocks(gray: np.ndarray, f: int) -> np.ndarray:
    """A uint8 page padded with paper to whole ``f x f`` blocks."""
    H, W = gray.shape
    h, w = -(-H // f), -(-W // f)
    if (h * f, w * f) == (H, W):
        return gray
    padded = np.full((h * f, w * f), 255, dtype=np.uint8)
    padded[:H, :W] = gray
    return padded


def _block_sum(gray: np.ndarray, f: int) -> np.ndarray:
    """Sum of each ``f x f`` block of a uint8 page (edge blocks padded with paper)."""
    gray = _pad_to_blocks(gray, f)
    out = np.zeros((gray.shape[0] // f, gray.shape[1] // f), dtype=np.uint16 if f <= 16 else np.uint32)
    for dy in range(f):
        for dx in range(f):
            out += gray[dy::f, dx::f]
    return out


def _block_min(gray: np.ndarray, f: int) -> np.ndarray:
    """Minimum of each ``f x f`` block of a uint8 page (edge blocks padded with paper)."""
    gray = _pad_to_blocks(gray, f)
    out = gray[::f, ::f].copy()
    for dy in range(f):
        for dx in range(f):
            np.minimum(out, gray[dy::f, dx::f], out=out)
    return out


def _as_gray8(page: np.ndarray) -> np.ndarray:
    page = np.asarray(page)
    if page.ndim == 3:
        if page.shape[2] == 1:
            page = page[..., 0]
        else:  # luma of an RGB page in [0, 1] (only lines vs paper matter here), made 8-bit below
            scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(page.dtype, 1.0)
            page = luma(page[..., :3]) / np.float32(scale)
    if page.dtype == np.uint8:
        return page
    if page.dtype == np.uint16:
        return (page >> 8).astype(np.uint8)
    if page.dtype.kind == "f":  # float pages are in [0, 1]
        page = np.asarray(page, dtype=np.float32) * 255.0
    return np.clip(page + 0.5, 0, 255).astype(np.uint8)


def label_factor(shape: tuple[int, int], label_side: int = LABEL_SIDE) -> int:
    """The block size that brings a page's long side to about ``label_side`` px (at least 1)."""
    return max(1, round(max(shape) / label_side))


def segment_regions(page: np.ndarray, *, lightness: bool = False, factor: int | None = None,
                    ink_level: int = 128, thin_level: int = 176, line_extent: int = 24, hole_area: int = 12,
                    mesh_radius: int = 2, gap_radius: int = 2, ball_radii: tuple[int, ...] = (16, 8, 4),
                    tone_step: float | None = 28.0, tone_split: float | None = 24.0,
                    hatch_density: float = 0.14, min_region: int = 24,
                    solid_area: int = 96, solid_radius: int = 3, fill_iterations: int = 3) -> Regions:
    """Segment a full-resolution page into regions enclosed by ink.

    ``page``: ``HxW`` uint8 gray (or float in [0, 1], or RGB; ``lightness=True``: CIE L in
    [0, 100]). Sizes are in label-resolution px (see the module docstring); ``factor`` overrides
    the reduction (1 = full resolution). On pages smaller than SMALL_SIDE the sizes shrink in
    proportion (lengths with the side, areas with its square). ``ball_radii``: the trapped balls
    that close gaps in the lines (``models.paint.trapped_ball``); ``tone_step``: the gray-level step that
    splits regions where no line does (None: split at ink only); ``tone_split``: the step of a region's
    mean gray, screentone dots and all, between two parts that makes them two regions (two tones meeting
    without a line; None: never, see ``tone_split.split_tones``); ``hatch_density``: the share of a
    17x17 window that thin parallel lines cover where they count as hatching (texture), 0 for never.
    """
    gray = l_to_gray8(page) if lightness else _as_gray8(page)
    H, W = gray.shape
    f = label_factor((H, W)) if factor is None else max(1, int(factor))
    side = max(-(-H // f), -(-W // f))
    if side < SMALL_SIDE:
        # A small page (a training preview, a thumbnail): its lines, dots and gaps are smaller too.
        s = side / SMALL_SIDE
        line_extent = max(6, round(line_extent * s))
        hole_area = max(2, round(hole_area * s * s))
        min_region = max(4, round(min_region * s * s))
        solid_area = max(8, round(solid_area * s * s))
        mesh_radius, gap_radius = max(1, round(mesh_radius * s)), max(1, round(gap_radius * s))
        ball_radii = tuple(max(1, round(r * s)) for r in ball_radii)
    # 1. ink where at least half of a block is darker than ink_level (the block's mean is below it), or
    # where a block holds a pixel darker than thin_level: a 1-px gray outline (a card's edge) stays a line.
    block_total = _block_sum(gray, f) if f > 1 else gray
    block_mean = block_total / np.float32(f * f) if f > 1 else gray
    ink = block_total < ink_level * f * f

    # 2. lines = ink components spanning line_extent px; the rest (dots, letters) is texture.
    ink_lab, n_ink, is_line = label_spans(ink, line_extent, eight=True)
    lines = is_line[ink_lab]
    # Dark tone: a connected ink mesh around small paper holes. Ink near such holes is texture ...
    paper_lab, n_paper = label(~ink)
    small_hole = np.bincount(paper_lab.ravel(), minlength=n_paper + 1) <= hole_area
    small_hole[0] = False
    holes = small_hole[paper_lab]
    if holes.any():
        # ... unless it also borders open paper: the edge of a line (a panel border next to dark tone) stays.
        size = 2 * mesh_radius + 1
        near_hole = grow(holes, size)
        near_open = grow(~ink & ~holes, size)
        mesh = lines & near_hole & ~near_open
        if mesh.any():
            lines &= ~mesh
            # A mesh that lost its hole-adjacent ink leaves line fragments: keep only pieces that still span.
            frag_lab, _, spans = label_spans(lines, line_extent, eight=True)
            lines = spans[frag_lab]
    hatch = _hatching(lines, hatch_density, 4 * line_extent) if hatch_density else None
    if hatch is not None:
        lines &= ~hatch
    if thin_level > ink_level and f > 1:
        # Lines thinner than a block (a 1-px gray outline: a card's edge) vanish in the block mean: blocks
        # holding a pixel darker than thin_level that join lines or run long are lines too. Not near
        # texture (letters, dots, hatching stubs), which must not thicken into lines.
        darkest = _block_min(gray, f)
        # A block crossed by a thin line is much darker at its darkest than on average; a flat gray area is not.
        thin = (darkest < thin_level) & (block_mean - darkest > THIN_CONTRAST) & ~grow(ink & ~lines, 3)
        thin_lab, _, spans = label_spans(thin | lines, line_extent, eight=True)
        lines |= spans[thin_lab] & thin

    # 3. the paper left between the lines, split where its tone steps (gray-shaded art), labeled by
    # trapped balls so a region stops at every gap narrower than its ball (models.paint.trapped_ball).
    paper = ~lines
    if tone_step is not None:
        # Tone is measured on paper and mid-tones, and across hatching (shading of its own), never on
        # letters or screentone dots, which would make edges around every word.
        counted = ~grow(ink, 3)
        if hatch is not None:
            counted |= grow(hatch, 5)
        edges = tb.tone_edges(block_total, counted, step=tone_step * f * f)
        paper &= ~edges
    labels, n = tb.trapped_ball_labels(paper, (*ball_radii, gap_radius), min_area=min_region)
    touching = tb.adjacent_pairs(labels)[:2]  # fills that meet in open paper (the balls split them at a gap)
    # A region's core, where its color is measured: its pixels away from the lines.
    labels[grow(lines, 2 * gap_radius + 1) if gap_radius else lines] = 0
    area = np.bincount(labels.ravel(), minlength=n + 1)
    small = area == 0
    small[0] = True
    if small[1:].any():
        # A region that is all near-line pixels has no core: it follows its neighbors.
        kept = np.flatnonzero(~small)
        remap = np.zeros(n + 1, dtype=np.int32)
        remap[kept] = np.arange(1, len(kept) + 1, dtype=np.int32)
        labels = remap[labels]
        n = len(kept)
        touching = tuple(remap[t] for t in touching)
    labels = labels.astype(np.uint16 if n < 65535 else np.int32, copy=False)
    core = labels > 0
    # The barrier (grown lines and dropped slivers) takes its nearest region's label, one pixel a round.
    for _ in range(fill_iterations):
        empty = labels == 0
        grown = max_filter(labels, 3)
        np.copyto(labels, grown, where=empty)
    labels = labels.astype(np.int32, copy=False)

    # 4. kinds: paper outside the art, balloons.
    kind = _classify(labels, n, core, ink, ink_lab, is_line, touching, max(ball_radii, default=gap_radius))
    if tone_split is not None:
        # Regions only: a balloon's letters or a margin's page number are no second tone. One pass: a second
        # one, splitting parts that still hold two tones, changed nothing measurable.
        labels, added = split_tones(labels, n, kind == REGION, block_total, core, f, step=tone_split,
                                    min_part=max(min_region, TONE_SPLIT_PART * side // LABEL_SIDE))
        kind = np.concatenate([kind, np.full(added, REGION, kind.dtype)])
        n += added
    # 5. Solid blacks and dark-shaded areas, deeper than the regrowth reaches, are regions of their own
    # (SOLID): line art draws dark hair or a dark coat as solid black, and a known color (a hint, a
    # reference) colors it; the model's colors never show there.
    # Only ink a ball of radius solid_radius fits in, and its footprint: lines and panel borders joining
    # two solid areas do not make them one.
    rest = labels == 0
    centres = ~grow(~rest, 2 * solid_radius + 1)
    solid, m = label(centres)
    if m:
        solid = max_filter(solid.astype(np.uint16 if m < 65535 else np.int32), 2 * solid_radius + 1)
        solid[~rest] = 0
        big = np.bincount(solid.ravel(), minlength=m + 1) >= solid_area
        big[0] = False
        if big.any():
            ids = np.zeros(m + 1, np.int32)
            ids[big] = np.arange(n + 1, n + 1 + int(big.sum()), dtype=np.int32)
            new_labels = ids[solid]
            np.copyto(labels, new_labels, where=new_labels > 0)
            core |= new_labels > 0
            kind = np.concatenate([kind, np.full(int(big.sum()), SOLID, kind.dtype)])
            labels, kind = _join_ink_fragments(labels, kind, core, ink, min_region)
    return Regions(labels=labels, kind=kind, core=core, factor=f, shape=(H, W))


def _join_ink_fragments(labels: np.ndarray, kind: np.ndarray, core: np.ndarray, ink: np.ndarray,
                        min_region: int) -> tuple[np.ndarray, np.ndarray]:
    """Regions that are paper specks of a solid or textured area join the SOLID they share the longest
    border with: a few specks in a solid area's noisy edge (a dark-shaded heart's anti-aliased rim: core
    under ``min_region`` px, mostly ink once regrown, bordering a SOLID), and the holes of a dense stipple
    or screen taken for a SOLID (a textured SOLID: under SOLID_TEXTURED of it ink; core under
    TEXTURE_HOLE times ``min_region``, ENCLOSED of its border with other labels that SOLID's, other such
    holes aside). Left alone, the model colors them: a vivid page shows red squares inside a gray heart
    and red confetti on a stippled dress. A small region walled by a solid black (skin between black
    braids) stays.
    ``labels`` and ``core`` are updated in place (a solid's core is all of it); returns the labels,
    compacted, and the kinds. About 6 ms a 1200x1700 page: one pass for the counts, then only the
    candidates' pixels."""
    count = len(kind)
    # Per label, in one bincount: pixels, core pixels, ink pixels.
    code = labels.ravel() * 4
    code += core.ravel().view(np.uint8) * 2
    code += ink.ravel().view(np.uint8)
    counts = np.bincount(code, minlength=4 * count).reshape(count, 4)
    area, core_px, ink_px = counts.sum(1), counts[:, 2] + counts[:, 3], counts[:, 1] + counts[:, 3]
    region = kind == REGION
    region[0] = False
    speck = region & (core_px < min_region) & (2 * ink_px > area)
    hole = region & ~speck & (core_px < TEXTURE_HOLE * min_region)
    textured = (kind == SOLID) & (ink_px < SOLID_TEXTURED * area)
    if not (speck.any() or (hole.any() and textured.any())):
        return labels, kind
    candidate = speck | (hole if textured.any() else False)
    # Their pixels' 4-neighbours of another label (the page's edge pads with label 0).
    h, w = labels.shape
    flat = labels.ravel()
    at = np.flatnonzero(candidate[flat])
    y, x = np.divmod(at, w)
    own, other = [], []
    for ok, step in ((x > 0, -1), (x < w - 1, 1), (y > 0, -w), (y < h - 1, w)):
        nb = flat[at[ok] + step]
        differ = nb != flat[at[ok]]
        own.append(flat[at[ok][differ]])
        other.append(nb[differ])
    own, other = np.concatenate(own).astype(np.int64), np.concatenate(other).astype(np.int64)
    # A hole's border, deep ink (label 0) and other candidates aside (the holes of a stipple meet each other).
    border = np.bincount(own[(other > 0) & ~candidate[other]], minlength=count)
    solid = kind[other] == SOLID
    own, other = own[solid], other[solid]
    if len(own) == 0:
        return labels, kind
    uniq, shared = np.unique(own * count + other, return_counts=True)
    a, b = uniq // count, uniq % count
    order = np.lexsort((shared, a))
    last = np.r_[a[order][1:] != a[order][:-1], True]
    a, b, shared = a[order][last], b[order][last], shared[order][last]
    # Specks join the SOLID they border most; holes only a textured SOLID enclosing them.
    joins = speck[a] | (textured[b] & (shared >= ENCLOSED * border[a]))
    target = np.arange(count)
    target[a[joins]] = b[joins]
    joined = target != np.arange(count)
    if not joined.any():
        return labels, kind
    moved = at[joined[flat[at]]]
    np.put(labels, moved, target[flat[moved]])
    np.put(core, moved, True)
    kept = np.flatnonzero(~joined)
    remap = np.zeros(count, labels.dtype)
    remap[kept] = np.arange(len(kept), dtype=labels.dtype)
    return remap[labels], kind[kept]


def _hatching(lines: np.ndarray, density: float, min_area: int) -> np.ndarray:
    """Hatching among the lines: 1-px lines (gone under a 2x2 opening; panel borders and outlines are
    thicker) packed densely enough that a 17x17 window holds three or more (``density`` of it), over an
    area of at least ``min_area`` px. It is shading, like screentone: the area it covers is one region,
    not a stack of strips between lines."""
    core = np.zeros_like(lines)
    core[:-1, :-1] = lines[:-1, :-1] & lines[1:, :-1] & lines[:-1, 1:] & lines[1:, 1:]
    opened = core.copy()
    opened[1:, :] |= core[:-1, :]
    opened[:, 1:] |= opened[:, :-1].copy()
    thin = lines & ~opened
    if np.count_nonzero(thin) < min_area:
        return np.zeros_like(thin)
    # Hatching strokes are straight: a 1-px stroke's area is about its bounding box's long side (wiggly
    # strokes of a drawing, folds of cloth, are not hatching). Thin pixels are a few thousand of a page's
    # half million: counted and boxed at their coordinates, the density measured over their box only.
    stroke, n = label(thin, eight=True)
    ys, xs = np.nonzero(thin)
    ids = stroke[ys, xs]
    area = np.bincount(ids, minlength=n + 1)
    candidate = area >= 12
    candidate[0] = False
    pick = candidate[ids]
    box = boxes_of(ys[pick], xs[pick], ids[pick], n + 1)
    span = np.maximum(box[:, 1] - box[:, 0], box[:, 3] - box[:, 2]) + 1
    straight = candidate & (span >= 12) & (area <= 1.5 * span)
    if area[straight].sum() < min_area:
        return np.zeros_like(thin)
    keep = straight[ids]
    ys, xs = ys[keep], xs[keep]
    # Every window holding a stroke pixel lies within 8 px of the strokes' box: the zone is inside it.
    h, w = thin.shape
    y0, y1 = max(int(ys.min()) - 8, 0), min(int(ys.max()) + 9, h)
    x0, x1 = max(int(xs.min()) - 8, 0), min(int(xs.max()) + 9, w)
    strokes = np.zeros((y1 - y0, x1 - x0), np.uint8)
    strokes[ys - y0, xs - x0] = 1
    zone = tb.box_sum(strokes, 8) > density * 17 * 17
    zone_lab, n = label(zone)
    out = np.zeros_like(thin)
    if n == 0:
        return out
    big = np.bincount(zone_lab.ravel(), minlength=n + 1) >= min_area
    big[0] = False
    out[y0:y1, x0:x1] = strokes.view(bool) & big[zone_lab]
    return out


def _classify(labels: np.ndarray, n: int, core: np.ndarray, ink: np.ndarray, ink_lab: np.ndarray,
              is_line: np.ndarray, touching: tuple[np.ndarray, np.ndarray] | None = None,
              ball: int = 0) -> np.ndarray:
    """Per label: REGION, PAPER (white, large, touching the page border) or BALLOON (enclosed, white, text)."""
    h, w = labels.shape
    kind = np.full(n + 1, REGION, dtype=np.int8)
    if n == 0:
        return kind
    in_core = labels[core]
    area = np.bincount(in_core, minlength=n + 1).astype(np.float64)
    ink_frac = np.bincount(labels[core & ink], minlength=n + 1) / np.maximum(area, 1)
    border = np.zeros(n + 1, dtype=bool)
    for edge in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        border[np.unique(edge)] = True
    white = ink_frac < 0.01  # a few specks (scan dust, a page number) still leave a margin white
    paper = border & white & (area >= 0.002 * h * w)
    paper[0] = False
    if touching is not None and len(touching[0]) and paper.any():
        # A gutter narrower than the largest ball is a fill of its own that meets the margin in open paper:
        # white, thin (at most twice the ball across) and touching paper, it is paper too, and so on along
        # the gutters. A white face open to the margin is thicker, and stays a region.
        box = label_boxes(labels, n + 1, white & ~paper)
        long_side = np.maximum(box[:, 1] - box[:, 0], box[:, 3] - box[:, 2]) + 1
        thin = white & (area <= 2 * ball * np.maximum(long_side, 1))
        a, b = touching
        for _ in range(8):
            spread = np.zeros(n + 1, bool)
            spread[a[paper[b]]] = True
            new = spread & thin & ~paper
            new[0] = False
            if not new.any():
                break
            paper |= new
    kind[paper] = PAPER

    # Balloons: enclosed, and the ink inside is a few letter-sized components, the rest pure white.
    text_like = ~border & (ink_frac > 0.002) & (ink_frac < 0.35) & (area >= 0.0005 * h * w) & (area <= 0.08 * h * w)
    text_like[0] = False
    if not text_like.any():
        return kind
    # Each texture component (ink that is not a line) and the region it lies in.
    ys, xs = np.nonzero(ink & core & ~is_line[ink_lab])
    comp_ids = ink_lab[ys, xs]
    owner = np.zeros(len(is_line), dtype=np.int64)
    owner[comp_ids] = labels[ys, xs]
    present = np.zeros(len(is_line), dtype=bool)
    present[comp_ids] = True
    owner[~present] = 0
    per_region = np.bincount(owner, minlength=n + 1)
    per_region[0] = 0
    # Tone dots also come in rows, but many more per area (one per ~64 px against one per 300+ px).
    candidates = text_like & (per_region >= 4) & (per_region <= np.maximum(12, area / 150.0))
    if not candidates.any():
        return kind
    sel = candidates[owner[comp_ids]]
    box = boxes_of(ys[sel], xs[sel], comp_ids[sel], len(is_line))
    for r in np.flatnonzero(candidates):
        if _looks_like_text(box[present & (owner == r)]):
            kind[r] = BALLOON
    return kind


def _looks_like_text(boxes: np.ndarray) -> bool:
    """Letters: at least 4 components of similar height, most of them in rows (or columns) of 3 or more."""
    boxes = boxes.astype(np.float64)
    hgt = boxes[:, 1] - boxes[:, 0] + 1
    med = np.median(hgt)
    if med < 3:
        return False
    letters = (hgt >= 0.4 * med) & (hgt <= 1.6 * med)
    if letters.sum() < 4:
        return False
    b = boxes[letters]
    wid = b[:, 3] - b[:, 2] + 1
    if len(b) > 12 and np.std(wid) < 0.1 * np.mean(wid) and np.std(b[:, 1] - b[:, 0]) < 0.1 * med:
        return False  # all the same size: dots of a tone, not letters
    best = 0
    for lo, hi, start in ((0, 1, 2), (2, 3, 0)):  # rows (horizontal text), then columns (vertical text)
        centre = (b[:, lo] + b[:, hi]) / 2
        near = (np.abs(centre[:, None] - centre[None]) < 0.5 * med) & \
               (np.abs(b[:, start][:, None] - b[:, start][None]) < 3.0 * med)
        best = max(best, int((near.sum(axis=1) >= 3).sum()))
    return best >= 0.6 * len(b)
