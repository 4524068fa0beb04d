"""How models learn: datasets and the manga-look transform, the training loop, metrics.

    >>> from trainer import TrainConfig, train
    >>> train(TrainConfig(model="unet", preset="tiny", data="pages/", out="runs/unet", steps=100))
"""

from .data import DataError, build_datasets, load_rgb, manga_look
from .loop import ConfigError, TrainConfig, TrainingDiverged, TrainSummary, train

__all__ = ["ConfigError", "DataError", "TrainConfig", "TrainSummary", "TrainingDiverged", "build_datasets",
           "load_rgb", "manga_look", "train"]
