"""How models learn: datasets and the manga-look transform, the training loop, validation and checkpoints.
The shared building blocks it uses with ``mangacolor_cli`` (image loading, device, progress, metrics) live in
``models.toolbox``.

    >>> from trainer import TrainConfig, train
    >>> train(TrainConfig(model="unet", preset="tiny", data="pages/", out="runs/unet", steps=100))
"""

_EXPORTS = {
    "DataError": "data", "build_datasets": "data", "load_rgb": "data", "manga_look": "transforms",
    "ConfigError": "config", "TrainConfig": "config",
    "TrainSummary": "loop", "TrainingDiverged": "loop", "train": "loop",
}


def __getattr__(name: str):
    # Lazy, so light modules (trainer.choices) load without the training loop and torch's data stack.
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'trainer' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
