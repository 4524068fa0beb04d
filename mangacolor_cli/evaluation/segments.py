"""The paint-bucket papers' own measures (BasicPBC, DACoN): how many of a page's regions, and how much
of its art, took the right color. Used by ``eval --reference`` and ``benchmarks/bench_references.py``.

A region's color is the per-channel median of its core (``models.paint.references.region_lab``) in the
output and in the target; it is right when the two lie within CIEDE2000 ``SEGMENT_TOLERANCE``. The
regions are those of the B/W page (``models.paint.segmentation``), colorable ones only (paper outside the
art, balloons and specks left out); *pixel accuracy* weighs each region by its area.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.cie import ciede2000, luma8
from models.paint import references as refs
from models.paint import regions as rg

SEGMENT_TOLERANCE = 5.0
# The names eval reports them under (``eval --reference``).
SEGMENT_METRICS = ("segment_accuracy", "pixel_accuracy")


@dataclass
class SegmentScore:
    regions: int            # colorable regions of the B/W page
    right: int              # of them, the ones within SEGMENT_TOLERANCE of the target
    pixel_accuracy: float   # the share of their area that is right

    @property
    def segment_accuracy(self) -> float:
        return self.right / self.regions if self.regions else float("nan")


def segment_score(bw: np.ndarray, output: np.ndarray, target: np.ndarray,
                  regions: rg.Regions | None = None) -> SegmentScore:
    """Score ``output`` (``HxWx3`` uint8) against ``target`` region by region of ``bw`` (``HxW`` uint8)."""
    bw = np.asarray(bw)
    if bw.ndim == 3:
        bw = luma8(bw)
    if regions is None:
        regions = rg.segment_regions(bw)
    f = regions.factor
    tokens = refs.describe(regions, bw[::f, ::f])
    if not len(tokens.ids):
        return SegmentScore(0, 0, float("nan"))
    out_lab = refs.region_lab(regions, np.asarray(output)[..., :3], tokens.ids)
    tgt_lab = refs.region_lab(regions, np.asarray(target)[..., :3], tokens.ids)
    right = ciede2000(out_lab, tgt_lab) < SEGMENT_TOLERANCE
    area = np.bincount(regions.labels.ravel(), minlength=regions.count + 1)[tokens.ids].astype(np.float64)
    return SegmentScore(len(tokens.ids), int(right.sum()), float((area * right).sum() / max(area.sum(), 1.0)))
