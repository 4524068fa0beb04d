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

from . import regions as rg

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


def known_and_gray(regions: rg.Regions, hints, gray: np.ndarray | None, fill_paper: bool):
    """The page's known colors and the gray its compose lays them on: ``(known, ids, lab, gray)``.

    ``known``: a ``regions.Known`` of ``hints`` (an RGBA image, a hint map or a ``Known``), or None
    (``ids``/``lab`` then None). Under hints' colors with their own lightness the region's screentone
    and grain become the shade they make (``regions.descreened``; ``gray`` is then a new array).
    """
    if hints is None:
        return None, None, None, gray
    known = rg.Known(*rg.hint_colors(regions, hints))
    if len(known.ids) and fill_paper and gray is not None:
        gray = rg.descreened(gray, regions, rg.descreen_ids(hints, known.ids, known.lab))
    return known, known.ids, known.lab, gray
