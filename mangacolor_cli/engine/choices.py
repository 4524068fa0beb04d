"""The fixed sets of values colorize options take, without importing torch (the CLI builds its enums from them)."""

from __future__ import annotations

# --device, besides cuda:N (a GPU's index); training and eval also take mps (models.toolbox.device.DEVICES).
DEVICES = ("auto", "cpu", "cuda")
BACKENDS = ("auto", "torch", "onnx")
# Formats --format may force on every page.
OUTPUT_FORMATS = ("png", "jpg", "webp")
# --palette (models.paint.regions.PALETTES, tested equal): how boldly the model's colors are laid.
PALETTES = ("safe", "vivid")
# --fill (models.paint's FILLS, tested equal): each region one color, or every pixel its own.
FILLS = ("flat", "soft")
