"""Models registered by name: ``create(name, **options)`` is the one way in (timm-style)."""

from __future__ import annotations

import importlib
from typing import Callable, TypeVar

from .base import ColorModel

_REGISTRY: dict[str, type[ColorModel]] = {}
M = TypeVar("M", bound=type[ColorModel])


def register(name: str) -> Callable[[M], M]:
    """Class decorator: make a ColorModel buildable as ``create(name, **options)``."""

    def deco(cls: M) -> M:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _register_architectures() -> None:
    # The architecture modules register themselves on import; `models` loads lazily, so ask for them here.
    from . import _ARCHITECTURES
    for arch in _ARCHITECTURES:
        importlib.import_module(f"{__package__}.{arch}")


def available() -> list[str]:
    """Names of every registered model, in registration order."""
    _register_architectures()
    return list(_REGISTRY)


def model_class(name: str) -> type[ColorModel]:
    _register_architectures()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}") from None


def create(name: str, preset: str | None = None, **options) -> ColorModel:
    """Build model ``name``; ``preset`` ('full', 'tiny', ...) gives defaults that ``options`` override."""
    cls = model_class(name)
    opts = dict(cls.presets().get(preset or "full", {}))
    if preset is not None and preset not in cls.presets():
        raise ValueError(f"model {name!r} has no preset {preset!r}; presets: {', '.join(cls.presets())}")
    opts.update(options)
    return cls(**opts)
