"""The fixed sets of values colorize options take, without importing torch (the CLI builds its enums from them)."""

from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda")
BACKENDS = ("auto", "torch", "onnx")
# Formats --format may force on every page.
OUTPUT_FORMATS = ("png", "jpg", "webp")
# --palette (models.regions.PALETTES, tested equal): how boldly the model's colors are laid.
PALETTES = ("safe", "vivid")
