"""The work on a page around the model: what it is (gray or color), its regions made ahead, its
hints, and the batching and resizing the Colorizer feeds the model with. No model is loaded here.

``as_page`` takes every page form the API accepts; ``looks_colored`` decides which pages the model
colors; ``page_regions`` is the segmentation the pipeline makes ahead, in its decode threads;
``PageBatcher`` groups pages by working shape for the model calls.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
from PIL import Image

from models.cie import srgb8_to_lab
from models.paint import regions as rg
from models.toolbox.images import DecodedPage, ImageDecodeError, page_from_pil, read_image, to_rgb8, to_unit_float

from ..errors import PageError, UsageError

if TYPE_CHECKING:
    import torch


class _LazyModule:
    """A module imported on its first attribute access: an ``.onnx`` model on gray pages never imports
    torch (start-up, docs/PERFORMANCE.md); the torch paths use these names as if imported."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self._name), attr)


if not TYPE_CHECKING:
    torch = _LazyModule("torch")
F = _LazyModule("torch.nn.functional")


def loaded_torch() -> Any:
    """torch where it is imported, else None; never a torch that another thread is still importing.

    A decode thread may be importing torch while the model thread asks: ``sys.modules`` holds the
    half-initialized module then (``no attribute 'inference_mode'``), so wait for the import to finish.
    """
    module = sys.modules.get("torch")
    if module is not None and getattr(getattr(module, "__spec__", None), "_initializing", False):
        module = importlib.import_module("torch")  # blocks on the module's import lock until it is complete
    return module

# Color-page detection: a page is in color when this share of its pixels is this far from the page's tint.
COLOR_CHROMA = 15.0
COLOR_SHARE = 0.02
# How far a lightness band's tint may sit from the whole page's: a yellowed or sepia scan's bands drift a
# little; a band whose median is a color area (a red block on line art) is not a tint.
COLOR_TINT_SPREAD = 10.0
_DETECT_SIDE = 256

PageLike = DecodedPage | np.ndarray | Image.Image | str | os.PathLike


def as_page(page: PageLike) -> DecodedPage:
    """Accept a DecodedPage, an ``HxW``/``HxWx3``/``HxWx4`` array (uint8, uint16 or float in [0, 1]), a PIL image
    or an image file's path (str or ``pathlib.Path``: one that cannot be read is a ``PageError`` naming it)."""
    if isinstance(page, DecodedPage):
        return page
    if isinstance(page, Image.Image):
        return page_from_pil(page)
    if isinstance(page, (str, os.PathLike)):
        try:
            return read_image(Path(page).expanduser())
        except ImageDecodeError as e:
            raise PageError(str(e)) from None
    arr = np.asarray(page)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[2] == 4:
        return DecodedPage(pixels=np.ascontiguousarray(arr[..., :3]), alpha=np.ascontiguousarray(arr[..., 3]))
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise UsageError(f"a page must be HxW, HxWx3 or HxWx4, got shape {arr.shape}")
    return DecodedPage(pixels=arr)


def page_regions(page: DecodedPage, fill: str, hinted: bool = False) -> rg.Regions | None:
    """A page's segmentation made ahead of its compose, for the pipeline to run beside the model: for an
    8-bit gray page whose compose will segment (the flat fill, or a hint); else None (the compose
    segments, as it would have). The same ``Regions`` the compose makes itself."""
    if (fill == "flat" or hinted) and page.is_gray and page.pixels.dtype == np.uint8:
        return rg.segment_regions(page.pixels)
    return None


def needs_color(page: PageLike, recolor: bool = False) -> bool:
    """Whether a page goes through the model: every page with ``recolor``, else those not already in color."""
    return recolor or not looks_colored(page)


def looks_colored(page: PageLike) -> bool:
    """True for a page already in color; False for gray pages, tinted/yellowed scans and JPEG chroma noise.

    The tint is measured per lightness band (paper and ink may be tinted differently) as the median
    ab (held within ``COLOR_TINT_SPREAD`` of the whole page's median, so a color area is never its own
    band's tint), and the page counts as colored when over ``COLOR_SHARE`` of its pixels sit more than
    ``COLOR_CHROMA`` ab units away from their band's tint: a line-art page with one red block is in color.
    """
    page = as_page(page)
    if page.is_gray:
        return False
    # numpy only: the color test runs in the decode threads, which must not import torch (start-up, races).
    x = to_unit_float(page.pixels)
    h, w = x.shape[:2]
    scale = _DETECT_SIDE / max(h, w)
    if scale < 1:
        # Area averaging also averages JPEG's blocky chroma noise away.
        size = (max(1, int(w * scale)), max(1, int(h * scale)))
        x = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(x[..., c]), mode="F").resize(size, Image.BOX))
                      for c in range(3)], axis=-1)
    lab = srgb8_to_lab(np.clip(x, 0.0, 1.0) * 255.0).reshape(-1, 3)
    L, ab = lab[:, 0], lab[:, 1:]
    band = np.clip((L / 10).astype(np.int64), 0, 9)
    page_tint = np.median(ab, axis=0)
    residual = np.empty_like(ab)
    for b in np.unique(band):
        mask = band == b
        # The band's tint, held within COLOR_TINT_SPREAD of the page's: a color block filling most of its
        # lightness band would otherwise be its own "tint" and the page judged black-and-white.
        drift = np.median(ab[mask], axis=0) - page_tint
        drift = drift * (COLOR_TINT_SPREAD / max(float(np.linalg.norm(drift)), COLOR_TINT_SPREAD))
        residual[mask] = ab[mask] - (page_tint + drift)
    far = np.linalg.norm(residual, axis=1) > COLOR_CHROMA
    return bool(far.mean() > COLOR_SHARE)


# A pixel counts as colored when its channels spread by more than this (8-bit levels): JPEG noise on gray
# spreads by a few levels, a visible color by far more.
COLORED_SPREAD = 12
# A page with less than this share of its area colored "stays nearly gray": the run suggests what helps.
NEARLY_GRAY = 0.02


def colored_share(rgb: np.ndarray) -> float:
    """The share of an ``HxWx3`` uint8 page whose color is visible (on every 4th pixel each way: cheap)."""
    x = np.asarray(rgb)[::4, ::4].astype(np.int16)
    spread = x.max(axis=-1) - x.min(axis=-1)
    return float((spread > COLORED_SPREAD).mean()) if spread.size else 0.0


def load_hints(hints: Any, page: DecodedPage | None = None, page_label: str = "the page") -> np.ndarray | None:
    """A hint image (path, PIL image or ``HxWx4``/``HxWx3`` array) -> ``HxWx4`` uint8 RGBA, checked against the page's size.

    An RGB image without alpha counts its white pixels as transparent. A hint map at most half the
    page's size each way (``models.regions.is_hint_map``) is kept as it is: the compose scales it to the
    page and takes its hue and chroma only. Any other size that does not match the page is a one-line
    ``PageError`` naming both.
    """
    if hints is None:
        return None
    name = "hints"
    if isinstance(hints, (str, os.PathLike)):
        name = str(hints)
        try:
            decoded = read_image(hints)
        except ImageDecodeError as e:
            raise PageError(f"{name}: cannot read the hint image ({e.reason})") from None
        # An image without transparency: its white pixels count as transparent (below).
        hints = to_rgb8(decoded.pixels) if decoded.alpha is None else np.dstack([to_rgb8(decoded.pixels), decoded.alpha])
    if isinstance(hints, Image.Image):
        hints = np.asarray(hints.convert("RGBA"))
    arr = np.asarray(hints)
    if arr.ndim == 3 and arr.shape[2] == 3:
        alpha = np.where((arr >= 250).all(axis=2), 0, 255).astype(np.uint8)
        arr = np.concatenate([arr.astype(np.uint8), alpha[..., None]], axis=2)
    if arr.ndim != 3 or arr.shape[2] != 4:
        raise PageError(f"{name}: a hint image must be RGBA (HxWx4), got shape {arr.shape}")
    if page is not None and arr.shape[:2] != page.pixels.shape[:2] and not rg.is_hint_map(arr.shape[:2],
                                                                                    page.pixels.shape[:2]):
        ph, pw = page.pixels.shape[:2]
        raise PageError(f"{name} is {arr.shape[1]}x{arr.shape[0]} but {page_label} is {pw}x{ph}: "
                        "a hint image must be the size of its page (or a hint map at most half its size)")
    return np.ascontiguousarray(arr, dtype=np.uint8)


class PageBatcher:
    """The Colorizer's one batching: pages grouped by working shape, ``size`` to a model call (an int,
    or a function of the working shape: ``Colorizer.pages_per_call``).

    ``add(key, page)`` returns ``(key, page, prediction)`` for every page of the batch it completed
    (run at once), else nothing; ``flush()`` runs the batches still incomplete.
    """

    def __init__(self, size: int | Callable[[tuple[int, int]], int], shape_of: Callable[[DecodedPage], tuple[int, int]],
                 run: Callable[[list[DecodedPage]], Sequence[Any]]):
        self._size = size if callable(size) else (lambda shape: size)
        self._shape_of, self._run = shape_of, run
        self._buckets: dict[tuple[int, int], list[tuple[Any, DecodedPage]]] = {}

    def add(self, key: Any, page: DecodedPage) -> list[tuple[Any, DecodedPage, Any]]:
        shape = self._shape_of(page)
        bucket = self._buckets.setdefault(shape, [])
        bucket.append((key, page))
        return self._run_bucket(shape) if len(bucket) >= self._size(shape) else []

    def flush(self) -> list[tuple[Any, DecodedPage, Any]]:
        return [done for shape in list(self._buckets) for done in self._run_bucket(shape)]

    def _run_bucket(self, shape: tuple[int, int]) -> list[tuple[Any, DecodedPage, Any]]:
        batch = self._buckets.pop(shape, [])
        predictions = self._run([page for _, page in batch]) if batch else []
        return [(key, page, p) for (key, page), p in zip(batch, predictions)]


def _scaled_size(page: DecodedPage, size: int) -> tuple[int, int]:
    scale = size / max(page.height, page.width)
    return max(1, round(page.height * scale)), max(1, round(page.width * scale))


def _pad_np(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """``_pad_to`` for one ``[h, w]`` numpy plane (numpy's "reflect" is torch's)."""
    pad_h, pad_w = h - x.shape[-2], w - x.shape[-1]
    if pad_h == 0 and pad_w == 0:
        return x
    mode = "reflect" if pad_h < x.shape[-2] and pad_w < x.shape[-1] else "edge"
    return np.pad(x, ((0, pad_h), (0, pad_w)), mode=mode)


def _pad_to(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    pad_h, pad_w = h - x.shape[-2], w - x.shape[-1]
    if pad_h == 0 and pad_w == 0:
        return x
    # Reflection continues the page's texture into the padding; it needs the pad smaller than the side.
    mode = "reflect" if pad_h < x.shape[-2] and pad_w < x.shape[-1] else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)

