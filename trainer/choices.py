"""The fixed sets of values training options take, without importing torch (the CLI builds its enums from them)."""

from __future__ import annotations

# Data folder layouts (``trainer.data.build_datasets``); ``auto`` looks at the folder.
LAYOUTS = ("auto", "color", "paired", "aligned", "unpaired", "composed")
# Which half of an aligned A|B image is the gray input.
ALIGNED_INPUTS = ("left", "right")
# Learning-rate schedules (``trainer.loop``).
SCHEDULES = ("constant", "cosine")
# Validation metrics that may pick best.pt (lower is better).
BEST_METRICS = ("l1_ab", "ciede2000")
