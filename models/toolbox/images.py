"""The one image loader, and the small jobs every caller of it shares: page order, pixel conversion.

Training (``trainer.data``), ``colorize``, ``eval`` and ``export`` all decode pages here. Decoding
honors EXIF orientation and reads gray, gray+alpha, RGB, RGBA, palette, 16-bit, CMYK and GIF pages;
a page whose pixels are all neutral (R = G = B) comes back as gray, so it is never mistaken for a
color page. Transparency is kept as ``alpha`` and flattened on white paper by ``on_paper``. Every
failure is one ``ImageDecodeError`` line naming the page.
"""

from __future__ import annotations

import importlib.util
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import first_line

if TYPE_CHECKING:
    import torch

# File extension -> PIL format name, for every page format the loader reads.
FORMAT_BY_EXTENSION = {
    ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".jpe": "jpeg", ".webp": "webp",
    ".bmp": "bmp", ".tif": "tiff", ".tiff": "tiff", ".gif": "gif", ".jfif": "jpeg",
}
if importlib.util.find_spec("PIL._avif") is not None:  # Pillow built with libavif (11.2+) reads and writes it
    # (asked of the import system: Image.registered_extensions() loads all 40 of PIL's plugins, 40 ms of start-up)
    FORMAT_BY_EXTENSION[".avif"] = "avif"
IMAGE_EXTENSIONS = frozenset(FORMAT_BY_EXTENSION)
# Decompression-bomb guard: a manga page scan is 2-20 megapixels; 80 allows double-page 600 dpi scans.
MAX_PAGE_PIXELS = 80_000_000


class ImageDecodeError(ValueError):
    """A page that cannot be decoded; ``str(err)`` is one line naming it, ``reason`` is the why alone."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")
        self.name, self.reason = name, reason


@dataclass
class DecodedPage:
    """A page's pixels, upright: ``pixels`` is ``HxW`` (gray) or ``HxWx3`` (RGB), uint8, uint16 or float32 in [0, 1].

    ``info``: ``dpi`` and ``icc_profile`` when the file has them; ``frames`` when it holds more than one (only the
    first is decoded).
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    format: str = "png"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def is_gray(self) -> bool:
        return self.pixels.ndim == 2

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


# ---------------------------------------------------------------------------- names and order
def natural_key(name: str) -> list:
    """Sort key that orders ``page2`` before ``page10`` (digit runs compare as numbers), case-insensitive."""
    # re.split with a capture group alternates text, digits, text..., so positions always compare like with like.
    return [int(part) if i % 2 else part.lower() for i, part in enumerate(re.split(r"(\d+)", name))]


def natural_path_key(path: str | Path) -> list:
    """``natural_key`` applied per path component, so a folder's pages stay together."""
    text = path.as_posix() if isinstance(path, Path) else path
    return [natural_key(part) for part in text.replace("\\", "/").split("/")]


def is_image_name(name: str) -> bool:
    """True for a file name with one of the page extensions the loader reads."""
    return format_of_name(name) is not None


def format_of_name(name: str) -> str | None:
    """PIL format name for a file name's extension, or None."""
    dot = name.rfind(".")
    return FORMAT_BY_EXTENSION.get(name[dot:].lower()) if dot >= 0 else None


# ---------------------------------------------------------------------------- decoding
def decode_image(data: bytes, name: str, *, min_side: int | None = None) -> DecodedPage:
    """Decode an encoded page (``name`` is used in error messages only); raises ``ImageDecodeError``.

    ``min_side`` lets a JPEG decode at a reduced scale whose short side is still at least that.
    """
    try:
        img = Image.open(io.BytesIO(data))
        width, height = img.size
        if width * height > MAX_PAGE_PIXELS:
            raise ImageDecodeError(name, f"{width}x{height} pixels is over the {MAX_PAGE_PIXELS // 1_000_000} "
                                         "megapixel limit (decompression bomb guard)")
        fmt = (img.format or "png").lower()
        frames = int(getattr(img, "n_frames", 1) or 1)  # animated GIF/PNG/WebP, multi-page TIFF
        if min_side and fmt == "jpeg":
            k = max(1.0, min(width, height) / min_side)
            img.draft("RGB", (math.ceil(width / k), math.ceil(height / k)))
        img.load()
        try:
            img = ImageOps.exif_transpose(img)
        except Exception:  # a broken EXIF block must not cost the page; keep it as stored
            pass
        page = _to_page(img, fmt)
        if frames > 1:
            page.info["frames"] = frames
        return page
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageDecodeError(name, f"refused as a decompression bomb ({first_line(e)})") from None
    except UnidentifiedImageError:
        raise ImageDecodeError(name, "not an image PIL can read") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError, IndexError, TypeError) as e:
        raise ImageDecodeError(name, f"cannot decode ({first_line(e)})") from None
    except Exception as e:  # PIL's plugins raise what they like on hostile bytes (struct.error, KeyError, ...)
        raise ImageDecodeError(name, f"cannot decode ({type(e).__name__}: {first_line(e)})") from None


def read_image(path: str | Path, *, min_side: int | None = None) -> DecodedPage:
    """``decode_image`` of a file; a file that cannot be read is an ``ImageDecodeError`` too."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ImageDecodeError(str(path), f"cannot read ({first_line(e)})") from None
    return decode_image(data, str(path), min_side=min_side)


def page_from_pil(img: Image.Image) -> DecodedPage:
    """A ``DecodedPage`` from an already-open PIL image (notebooks), EXIF orientation honored."""
    img = ImageOps.exif_transpose(img)
    return _to_page(img, (img.format or "png").lower())


def _to_page(img: Image.Image, fmt: str) -> DecodedPage:
    info = {k: img.info[k] for k in ("dpi", "icc_profile") if img.info.get(k)}
    mode = img.mode
    alpha = None
    if mode == "1":
        img = img.convert("L")
    elif mode in ("P", "PA"):
        img = img.convert("RGBA" if ("transparency" in img.info or mode == "PA") else "RGB")
    elif mode == "La":
        img = img.convert("LA")
    elif mode == "RGBa":
        img = img.convert("RGBA")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        img = img.convert("RGB")
    mode = img.mode
    if mode.startswith("I;16"):
        pixels = np.asarray(img).astype(np.uint16)
    elif mode == "I":
        raw = np.asarray(img)
        pixels = np.clip(raw, 0, 65535).astype(np.uint16) if raw.max(initial=0) > 255 else raw.astype(np.uint8)
    elif mode == "F":
        raw = np.asarray(img, dtype=np.float32)
        pixels = np.clip(raw / 255.0 if raw.max(initial=0) > 1.0 else raw, 0.0, 1.0).astype(np.float32)
    elif mode == "L":
        pixels = np.asarray(img, dtype=np.uint8)
    elif mode == "LA":
        both = np.asarray(img, dtype=np.uint8)
        pixels, alpha = both[..., 0].copy(), both[..., 1].copy()
    elif mode == "RGBA":
        both = np.asarray(img, dtype=np.uint8)
        pixels, alpha = both[..., :3].copy(), both[..., 3].copy()
    elif mode == "RGB":
        pixels = np.asarray(img, dtype=np.uint8)
    else:
        pixels = np.asarray(img.convert("RGB"), dtype=np.uint8)
    if alpha is not None and alpha.min(initial=255) == 255:
        alpha = None
    if pixels.ndim == 3 and _is_neutral(pixels):
        pixels = np.ascontiguousarray(pixels[..., 0])
    return DecodedPage(pixels=np.ascontiguousarray(pixels), alpha=alpha, format=fmt, info=info)


def _is_neutral(rgb: np.ndarray) -> bool:
    return bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))


# ---------------------------------------------------------------------------- pixel conversion
def to_unit_float(pixels: np.ndarray) -> np.ndarray:
    """Pixels (uint8, uint16, or float) as float32 in [0, 1]."""
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float32) / 255.0
    if pixels.dtype == np.uint16:
        return pixels.astype(np.float32) / 65535.0
    return np.clip(pixels.astype(np.float32), 0.0, 1.0)


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Pixels (uint8, uint16, or float in [0, 1]) as uint8, rounded to the nearest level."""
    if pixels.dtype == np.uint8:
        return pixels
    return np.round(to_unit_float(pixels) * 255.0).astype(np.uint8)


def to_rgb8(pixels: np.ndarray) -> np.ndarray:
    """Decoded pixels (gray or RGB, any depth) as ``uint8 [H, W, 3]``."""
    x = to_uint8(pixels)
    return np.ascontiguousarray(np.repeat(x[..., None], 3, axis=2) if x.ndim == 2 else x)


def tensor_to_uint8(x: torch.Tensor) -> np.ndarray:
    """``[C, H, W]`` float in [0, 1] (C = 1 or 3) -> ``uint8`` ``[H, W]`` (C = 1) or ``[H, W, 3]``."""
    import torch  # the image loader itself stays torch-free (colorize's ONNX path)

    arr = (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    return arr[0].numpy() if arr.shape[0] == 1 else arr.permute(1, 2, 0).numpy()


def uint8_to_tensor(img: np.ndarray) -> torch.Tensor:
    """``uint8`` ``[H, W]`` or ``[H, W, 3]`` -> float ``[C, H, W]`` in [0, 1]."""
    import torch

    t = torch.from_numpy(img if img.flags.writeable else img.copy()).float().div(255.0)
    return t[None] if t.dim() == 2 else t.permute(2, 0, 1)


def to_rgba8(page: DecodedPage) -> np.ndarray:
    """The page as ``uint8 [H, W, 4]`` RGBA (opaque where it has no alpha), for drawings composed onto pages."""
    alpha = page.alpha if page.alpha is not None else np.full(page.pixels.shape[:2], 255, np.uint8)
    return np.dstack([to_rgb8(page.pixels), alpha])


def on_paper(page: DecodedPage) -> np.ndarray:
    """The page as ``uint8 [H, W, 3]`` sRGB, transparency composited on white paper."""
    rgb = to_rgb8(page.pixels)
    if page.alpha is not None:
        a = page.alpha.astype(np.float32)[..., None] / 255.0
        rgb = np.round(rgb * a + 255.0 * (1.0 - a)).astype(np.uint8)
    return rgb
