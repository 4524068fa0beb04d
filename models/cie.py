"""The constants of the fused Lab -> sRGB compose, shared by the torch one (``models.color``) and
the numpy one (``models.compose_cpu``, which must not import torch): plain Python numbers only."""

# kornia's xyz_to_rgb matrix and D65 white, so the fused conversions are kornia's lab_to_rgb term for term.
XYZ_TO_LINEAR_RGB = ((3.2404813432005266, -1.5371515162713185, -0.4985363261688878),
                     (-0.9692549499965682, 1.8759900014898907, 0.0415559265582928),
                     (0.0556466391351772, -0.2040413383665112, 1.0573110696453443))
WHITE_X, WHITE_Z = 0.95047, 1.08883
# Entries of the linear -> sRGB uint8 table: sRGB's steepest slope (12.92) keeps a step under 0.06 of a level.
SRGB_TABLE_SIZE = 65536
# Chroma below this (Lab units) never darkens a page: a faint tint on paper is noise, not a fill.
FILL_CHROMA_START = 6.0
# Chroma at which a fill gets the full lightness it needs.
FILL_CHROMA_FULL = 16.0
