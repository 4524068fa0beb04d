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
from . import autoencoder  # noqa: E402,F401
from . import unet  # noqa: E402,F401
from . import pix2pix  # noqa: E402,F401
from . import pix2pixhd  # noqa: E402,F401
from . import cyclegan  # noqa: E402,F401
from . import eccv16  # noqa: E402,F401
from . import effunet  # noqa: E402,F401

__all__ = [
    "CHECKPOINT_FORMAT", "CheckpointError", "ColorModel", "NullStepContext", "StepContext",
    "available", "create", "load_model", "model_class", "read_checkpoint", "register", "save_checkpoint",
]
