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
# Each registered model's presets (``ColorModel.presets()``; tests/test_ecosystem.py checks they agree), for
# ``mangacolor train --help`` without importing torch.
PRESETS = {
    "autoencoder": ("full", "tiny"),
    "unet": ("full", "small", "tiny"),
    "pix2pix": ("full", "tiny"),
    "pix2pixhd": ("full", "global", "tiny"),
    "cyclegan": ("full", "tiny"),
    "eccv16": ("full", "tiny"),
    "effunet": ("full", "tiny"),
}
# Training speed on a CPU-only machine, for the help: which preset trains in reasonable time there. Measured
# as benchmarks/bench_train.py does (the model's train_step on synthetic batches, data loading left out) at
# 128 px, batch 8, fp32, one thread, on the 2-core x86 development box while another run trained beside it.
CPU_TRAINING_SPEED = ("unet tiny ~16 images/s (minutes per 1,000 steps of batch 8), effunet tiny ~4.6, "
                      "unet small ~1.5, effunet full ~1.0 (hours), unet full ~0.1 (days)")
