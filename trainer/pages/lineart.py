"""Manga-style line art synthesized from a color drawing that has no inked twin.

Line-art colorization research trains on outlines extracted from color art; flat vector drawings
(clipart, emoji) make that easy because their colors change only at region boundaries. The ink is:
  - the boundaries between differently colored regions (Sobel gradient of each RGB channel and of
    the alpha, so two regions of equal lightness but different hue still get a line), and
  - the drawing's own dark strokes (pixels darker than ``dark``), which are its drawn outlines.
Fills are left to the page composer: white paper, screentone or hatching for mid tones, solid black
for dark areas (``trainer.pages.render.render_panel``).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from models import cie


def synthesize_line_art(rgba: np.ndarray, edge: float = 0.16, dark: float = 0.2) -> np.ndarray:
    """RGBA uint8 color drawing ``[H,W,4]`` -> RGBA uint8 line art: black ink, alpha = ink coverage.

    ``edge``: gradient magnitude (in [0, 1] color units per pixel) where a boundary becomes a full
    line; ``dark``: luma below which a pixel is one of the drawing's own ink strokes.
    """
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"want an RGBA image [H,W,4], got shape {rgba.shape}")
    x = rgba.astype(np.float32) / 255.0
    alpha = x[..., 3]
    # Colors over white paper, so a transparent edge and a white fill look alike (no line between them).
    rgb = x[..., :3] * alpha[..., None] + (1.0 - alpha[..., None])
    mag = np.zeros(alpha.shape, np.float32)
    for c in (rgb[..., 0], rgb[..., 1], rgb[..., 2], alpha):
        gx = ndimage.sobel(c, axis=1, mode="nearest")
        gy = ndimage.sobel(c, axis=0, mode="nearest")
        mag = np.maximum(mag, np.hypot(gx, gy) / 4.0)  # Sobel sums 4 pixel differences
    boundary = np.clip((mag - edge * 0.5) / (edge * 0.5), 0.0, 1.0)
    luma = cie.luma(rgb)
    strokes = np.clip((dark + 0.05 - luma) / 0.1, 0.0, 1.0) * (alpha > 0.5)
    # Thin dark strokes are ink; large dark areas stay for the composer to fill (solid black or tone).
    opened = ndimage.grey_opening(strokes, size=(7, 7))
    ink = np.maximum(boundary, strokes - opened)
    out = np.zeros(rgba.shape, np.uint8)
    out[..., 3] = np.clip(ink * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out
