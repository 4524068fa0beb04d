"""mangacolor models: architectures, their registry and the color math they share.

    >>> import models
    >>> models.available()
    ['autoencoder', 'unet', 'pix2pix', 'pix2pixhd', 'cyclegan', 'eccv16']
    >>> net = models.create("unet", preset="tiny")
"""

from .base import ColorModel, NullStepContext, StepContext
from .checkpoint import CHECKPOINT_FORMAT, CheckpointError, load_model, read_checkpoint, save_checkpoint
from .registry import available, create, model_class, register

# Importing the architecture modules registers them (order = models.available() order).
from . import unet  # noqa: E402,F401
# further architectures are imported here as they land

__all__ = [
    "CHECKPOINT_FORMAT", "CheckpointError", "ColorModel", "NullStepContext", "StepContext",
    "available", "create", "load_model", "model_class", "read_checkpoint", "register", "save_checkpoint",
]
