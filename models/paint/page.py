"""A page's compose, whatever runs it: :func:`compose_page` takes the page's own pixels and the model's
working-size chroma, makes the page's full-resolution lightness (and, through the compose, its
regions) and picks the compose: numpy on the CPU (``models.paint.compose_cpu``, torch-free, ~5x
cheaper), torch on the prediction's device (``models.paint.compose``); the same picture within 1 level.

torch is imported only where a page needs it (a GPU prediction, a color or float page's lightness):
an 8-bit gray page composed on the CPU never imports it (start-up, docs/PERFORMANCE.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..cie import gray_level_lightness, l_to_gray8
from ..toolbox.images import to_unit_float
from . import compose_cpu
from . import regions as rg
from .fills import DEFAULT_FILL

if TYPE_CHECKING:
    import torch


def is_gray8(pixels: np.ndarray) -> bool:
    """An ``HxW`` uint8 page: the compose reads its gray levels directly (tables, no Lab conversion)."""
    return pixels.ndim == 2 and pixels.dtype == np.uint8


def page_tensor(pixels: np.ndarray, device: torch.device) -> torch.Tensor:
    """Pixels as ``[1, C, H, W]`` float in [0, 1] (C = 1 gray, 3 RGB) on ``device``.

    To a GPU the uint8 pixels travel (a quarter of the bytes of float32) from pinned memory,
    asynchronously, and become float there.
    """
    import torch
    if device.type == "cuda" and pixels.dtype == np.uint8:
        host = torch.empty(pixels.shape, dtype=torch.uint8, pin_memory=True)
        host.numpy()[...] = pixels
        arr = host.to(device, non_blocking=True).float().div_(255.0)
    else:
        arr = torch.from_numpy(to_unit_float(pixels)).to(device)
    return arr[None, None] if arr.ndim == 2 else arr.permute(2, 0, 1)[None]


def page_lightness(pixels: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """The page's CIE L in [0, 100] at full resolution, ``[1, 1, H, W]`` float32 on ``device``."""
    import torch

    from .. import color
    device = torch.device(device)
    if pixels.ndim == 2 and pixels.dtype in (np.uint8, np.uint16):
        levels = 256 if pixels.dtype == np.uint8 else 65536
        index = torch.from_numpy(pixels.astype(np.int64)).to(device)
        return color.gray_level_lightness(levels, str(device))[index][None, None]
    x = page_tensor(pixels, device)
    return color.gray_to_l(x) if x.shape[1] == 1 else color.rgb_to_lab(x)[:, :1]


def numpy_lightness(pixels: np.ndarray) -> np.ndarray:
    """The page's L ``[H, W]`` float32 for the numpy compose (a table for 16-bit gray; torch for color pages)."""
    if pixels.ndim == 2 and pixels.dtype == np.uint16:
        return np.take(gray_level_lightness(65536), pixels)
    import torch
    with torch.inference_mode():
        return page_lightness(pixels)[0, 0].numpy()


def gray_or_lightness(pixels: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """What the numpy compose reads a page by (``(gray, None)`` for 8-bit gray pixels, else ``(None, L)``):
    its segmentation is ``fills.segment(*gray_or_lightness(pixels))``."""
    return (pixels, None) if is_gray8(pixels) else (None, numpy_lightness(pixels))


def page_gray8(pixels: np.ndarray) -> np.ndarray:
    """The 8-bit gray the page is segmented on: its own levels, or the gray level of its L."""
    return pixels if is_gray8(pixels) else l_to_gray8(numpy_lightness(pixels))


def compose_page(pixels: np.ndarray, ab: Any, *, confidence: Any = None, hints: Any = None,
                 regions: rg.Regions | None = None, fill: str = DEFAULT_FILL, saturation: float = 1.0,
                 fill_paper: bool = True, palette: str = rg.DEFAULT_PALETTE,
                 model_colors: np.ndarray | None = None) -> np.ndarray:
    """One page: its pixels (``HxW`` gray or ``HxWx3`` RGB; uint8, uint16 or float in [0, 1]) and the
    model's ab ``[1,2,h,w]`` (Lab units, working size covering the page; numpy or a torch tensor) ->
    ``HxWx3`` uint8 sRGB.

    ``ab`` a numpy array or on the CPU: the numpy compose; on a GPU: the torch compose there.
    ``confidence``: ``[1,1,h,w]`` in [0, 1] or None; ``hints``: an ``HxWx4`` RGBA image of the page's
    size or a ``regions.Known``; ``regions``: the page's segmentation when it was made ahead;
    ``model_colors``: the flat fill's colors per label when a region model chose them (``fills.flat_colors``).
    """
    options = dict(fill=fill, saturation=saturation, hints=hints, fill_paper=fill_paper, regions=regions,
                   palette=palette, model_colors=model_colors)
    if isinstance(ab, np.ndarray) or ab.device.type == "cpu":
        ab = ab if isinstance(ab, np.ndarray) else ab.float().numpy()
        if confidence is not None and not isinstance(confidence, np.ndarray):
            confidence = confidence.float().numpy()
        gray, L = gray_or_lightness(pixels)
        return compose_cpu.compose(ab, gray=gray, L=L, confidence=confidence, **options)
    from . import compose as torch_compose
    L = page_lightness(pixels, ab.device)
    gray = pixels if is_gray8(pixels) else None
    return torch_compose.compose(L, ab, gray=gray, confidence=confidence, **options).cpu().numpy()
