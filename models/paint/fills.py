"""The fills a page's colors are laid with, in one place: their names and check, the segmentation a
compose makes when it is not given one, and the flat fill's one color per region (docs/ARCHITECTURE.md,
"Color"). Both composes (``models.paint.compose``, torch; ``models.paint.compose_cpu``, numpy) read them.

* ``flat``: every region enclosed by ink takes one color (``models.paint.regions``): the
  confidence-weighted robust color of the model's prediction inside it; paper outside the art and
  balloons stay white; a region where the prediction is weak stays uncolored.
* ``soft``: every pixel takes its own predicted chroma, upsampled bilinearly (the compose before
  regions existed).

numpy only.
"""

from __future__ import annotations

import numpy as np

from ..cie import l_to_gray8
from . import regions as rg
from .hint_split import split_for_hint_map
from .spread import spread_hints

FILLS = ("flat", "soft")
# The fill `mangacolor colorize` uses unless told: the one that scored better on the validation sets
# (docs/MODELS.md, "Flat vs soft fill").
DEFAULT_FILL = "flat"


def check_fill(fill: str) -> str:
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {', '.join(FILLS)}, got {fill!r}")
    return fill


def segment(gray: np.ndarray | None, L: np.ndarray | None) -> rg.Regions:
    """The page's regions from its ``HxW`` 8-bit gray pixels (``gray``) or, without them, from its CIE L ``HxW``."""
    if gray is not None:
        return rg.segment_regions(gray)
    return rg.segment_regions(np.asarray(L, np.float32), lightness=True)


def flat_colors(regions: rg.Regions, ab, confidence=None, *, hints=None, saturation: float = 1.0,
                palette: str = rg.DEFAULT_PALETTE, model_colors: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The flat fill's chroma: one ab per label ``[n + 1, 2]`` float32 (Lab units), and the hinted
    labels with their Lab ``(ids [k], lab [k, 3])`` (both None without ``hints``).

    ``ab``/``confidence``: the model's working-size prediction (``regions.region_colors``);
    ``saturation``: ``regions.saturate`` (hinted regions keep their exact hint color); ``hints``: an
    ``HxWx4`` RGBA image of the page's size or a ``regions.Known`` (``regions.hint_colors``). Paper
    outside the art, balloons and solid blacks are 0 unless a hint colors them; ink pixels take the
    color of the region they bound. ``model_colors``: one ab per label ``[n + 1, 2]`` already decided
    (the region model's, ``models.paint.tokens.decode``), laid instead of ``ab``'s region colors.
    """
    if model_colors is not None:
        colors = np.array(model_colors, dtype=np.float32).reshape(regions.count + 1, 2)
        colors[regions.neutral] = 0.0
    else:
        colors = rg.region_colors(regions, ab, confidence, palette=palette)
    colors = rg.saturate(colors, saturation)
    ids, hint_lab = rg.hint_colors(regions, hints) if hints is not None else (None, None)
    if ids is not None:
        colors[ids] = hint_lab[:, 1:]
    return colors, ids, hint_lab


def regions_for_hints(regions: rg.Regions | None, hints, model_colors: np.ndarray | None = None
                      ) -> tuple[rg.Regions | None, np.ndarray | None]:
    """The regions a page's ``hints`` are laid on: under a *hint map* (an RGBA image at most half the page,
    ``regions.is_hint_map``) each region holding several of its colors split between them
    (``hint_split.split_for_hint_map``); otherwise (a page-size hint image, a ``Known``, none) ``regions`` as
    they are. ``model_colors`` (one ab per label, or None) follow: a part takes its region's."""
    if regions is None or hints is None or isinstance(hints, rg.Known):
        return regions, model_colors
    hints = np.asarray(hints)
    if (hints.ndim != 3 or hints.shape[2] != 4 or hints.dtype != np.uint8
            or not rg.is_hint_map(hints.shape[:2], regions.shape)):
        return regions, model_colors
    split, parent = split_for_hint_map(regions, hints)
    if parent is None:
        return regions, model_colors
    if model_colors is not None:
        model_colors = np.asarray(model_colors, np.float32).reshape(regions.count + 1, 2)[parent]
    return split, model_colors


def known_and_gray(regions: rg.Regions, hints, gray: np.ndarray | None, fill_paper: bool, L: np.ndarray | None = None):
    """The page's known colors and the gray its compose lays them on: ``(known, ids, lab, gray)``.

    ``known``: a ``regions.Known`` of ``hints`` (an RGBA image, a hint map or a ``Known``), or None
    (``ids``/``lab`` then None), with each hint (and each reference's color, across screentone only) spread
    to the neighbours of its region that share its tone (``spread.spread_hints``; measured on the page's ``gray``, or its CIE ``L`` without it). Under hints'
    colors with their own lightness the region's screentone and grain become the shade they make
    (``regions.descreened``; ``gray`` is then a new array).
    """
    if hints is None:
        return None, None, None, gray
    ids, lab = rg.hint_colors(regions, hints)
    from_hints = getattr(hints, "from_hints", len(ids))
    hinted = getattr(hints, "hinted", None)
    if hinted is None or len(hinted) != len(ids):
        hinted = np.ones(len(ids), bool)
    if len(ids) and (gray is not None or L is not None):
        f = regions.factor
        small = gray[::f, ::f] if gray is not None else l_to_gray8(np.asarray(L)[::f, ::f])
        ids, lab, added = spread_hints(regions, small, ids, lab, hinted)
        if added:
            # A spread region is toned (its screentone under a color carried across a line): descreened as
            # a hint's, whichever row it came from.
            hinted = np.concatenate([hinted, np.ones(added, bool)])
            order = np.argsort(ids, kind="stable")
            ids, lab, hinted = ids[order], lab[order], hinted[order]
    known = rg.Known(ids, lab, from_hints=from_hints, from_references=getattr(hints, "from_references", 0),
                     hinted=hinted)
    if len(known.ids) and fill_paper and gray is not None:
        gray = rg.descreened(gray, regions, rg.descreen_ids(known, known.ids, known.lab))
    return known, known.ids, known.lab, gray
