"""Raster primitives of the segmentation (``models.regions``) in numpy, without scipy.

``scipy.ndimage`` costs 0.27 s of CPU to import, a quarter of a one-page colorize run
(docs/PERFORMANCE.md, "Start-up"), so its two calls here have stand-ins: :func:`max_filter` (exact,
and 8x faster: 0.45 ms against 3.7 ms for a 5x5 filter of a half-size page) and :func:`label`
(scikit-image's compiled labeling, whose import costs nothing over numpy, 3-10 ms a call; or scipy's,
2 ms, where scipy.ndimage is already loaded: the same labels in the same order, tested).
"""

from __future__ import annotations

import sys

import numpy as np

_EIGHT = np.ones((3, 3), dtype=bool)


def label(mask: np.ndarray, eight: bool = False) -> tuple[np.ndarray, int]:
    """Connected components of a bool mask, 4- or 8-connected: labels 1..n in raster order (0 = background), n.

    ``scipy.ndimage.label`` where scipy.ndimage is already imported, else scikit-image's compiled
    labeling (the same labels, without scipy's 0.27 s import).
    """
    ndi = sys.modules.get("scipy.ndimage")
    if ndi is None:
        try:
            from skimage.measure._ccomp import label_cython
        except ImportError:  # a scikit-image that moved its private labeling: scipy's, imported
            from scipy import ndimage as ndi
        else:
            labels, n = label_cython(mask, background=0, connectivity=2 if eight else 1, return_num=True)
            return labels, int(n)
    labels, n = ndi.label(mask, structure=_EIGHT if eight else None)
    return labels, int(n)


def max_filter(x: np.ndarray, size: int) -> np.ndarray:
    """A ``size x size`` (odd) maximum filter of a 2-D array, borders taking the max over the window inside
    the array: ``scipy.ndimage.maximum_filter(x, size)`` exactly (its ``reflect`` border repeats values
    already in the window), as two separable passes of shifted ``np.maximum`` (8x faster at size 3-5)."""
    r = size // 2
    if r == 0:
        return x.copy()
    out = x
    for axis in (0, 1):
        src, out = out, out.copy()
        for d in range(1, r + 1):
            if axis == 0:
                np.maximum(out[d:], src[:-d], out=out[d:])
                np.maximum(out[:-d], src[d:], out=out[:-d])
            else:
                np.maximum(out[:, d:], src[:, :-d], out=out[:, d:])
                np.maximum(out[:, :-d], src[:, d:], out=out[:, :-d])
    return out


def grow(mask: np.ndarray, size: int) -> np.ndarray:
    """Binary dilation by a ``size x size`` square (a separable max filter: 5x faster than binary_dilation)."""
    return max_filter(mask.view(np.uint8), size).view(bool)
