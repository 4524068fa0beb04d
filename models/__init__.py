"""mangacolor models: architectures, their registry and the color math they share.

    >>> import models
    >>> models.available()
    ['autoencoder', 'unet', 'pix2pix', 'pix2pixhd', 'cyclegan', 'eccv16']
    >>> net = models.create("unet", preset="tiny")
"""

from __future__ import annotations

import importlib

# Everything here needs torch, so it loads on first use (PEP 562): `models.toolbox` (but its metrics),
# `models.cie` and the paint wing `models.paint` but its torch compose (the ONNX path of colorize) are torch-free.
_LAZY = {
    "ColorModel": ".base", "NullStepContext": ".base", "StepContext": ".base",
    "CHECKPOINT_FORMAT": ".checkpoint", "CheckpointError": ".checkpoint", "load_model": ".checkpoint",
    "read_checkpoint": ".checkpoint", "save_checkpoint": ".checkpoint",
    "available": ".registry", "create": ".registry", "model_class": ".registry", "register": ".registry",
}
# Importing the architecture modules registers them (order = models.available() order); the registry
# imports them before it answers.
_ARCHITECTURES = ("autoencoder", "unet", "pix2pix", "pix2pixhd", "cyclegan", "eccv16", "effunet")


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "CHECKPOINT_FORMAT", "CheckpointError", "ColorModel", "NullStepContext", "StepContext",
    "available", "create", "load_model", "model_class", "read_checkpoint", "register", "save_checkpoint",
]
