"""The one image loader and writer: decode any page file into arrays, encode colored pages back.

Decoding honors EXIF orientation and reads gray, gray+alpha, RGB, RGBA, palette, 16-bit and CMYK
pages; a page whose pixels are all neutral (R = G = B) comes back as gray, so it is never mistaken
for a color page. Every failure is a one-line ``PageError`` naming the page.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import PageError, one_line

# File extension -> PIL format name, for every page format we read and write.
FORMAT_BY_EXTENSION = {
    ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".jpe": "jpeg", ".webp": "webp",
    ".bmp": "bmp", ".tif": "tiff", ".tiff": "tiff",
}
IMAGE_EXTENSIONS = frozenset(FORMAT_BY_EXTENSION)
# The extension a page gets when written in a format other than its own (--format).
EXTENSION_BY_FORMAT = {"png": ".png", "jpeg": ".jpg", "jpg": ".jpg", "webp": ".webp", "bmp": ".bmp", "tiff": ".tif"}
OUTPUT_FORMATS = ("png", "jpg", "webp")
# Decompression-bomb guard: a manga page scan is 2-20 megapixels; 80 allows double-page 600 dpi scans.
MAX_PAGE_PIXELS = 80_000_000
FORMATS_WITH_ALPHA = frozenset({"png", "webp", "tiff"})


@dataclass
class DecodedPage:
    """A page's pixels, upright: ``pixels`` is ``HxW`` (gray) or ``HxWx3`` (RGB), uint8, uint16 or float32 in [0, 1]."""

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


def natural_key(name: str) -> list:
    """Sort key that orders ``page2`` before ``page10`` (digit runs compare as numbers), case-insensitive."""
    # re.split with a capture group alternates text, digits, text..., so positions always compare like with like.
    return [int(part) if i % 2 else part.lower() for i, part in enumerate(re.split(r"(\d+)", name))]


def natural_path_key(path: str) -> list:
    """``natural_key`` applied per path component, so a folder's pages stay together."""
    return [natural_key(part) for part in path.replace("\\", "/").split("/")]


def is_image_name(name: str) -> bool:
    """True for a file name with one of the page extensions we read."""
    dot = name.rfind(".")
    return dot >= 0 and name[dot:].lower() in IMAGE_EXTENSIONS


def format_of_name(name: str) -> str | None:
    """PIL format name for a file name's extension, or None."""
    dot = name.rfind(".")
    return FORMAT_BY_EXTENSION.get(name[dot:].lower()) if dot >= 0 else None


def decode_image(data: bytes, name: str) -> DecodedPage:
    """Decode an encoded page (``name`` is used in error messages only); raises ``PageError``."""
    try:
        img = Image.open(io.BytesIO(data))
        width, height = img.size
        if width * height > MAX_PAGE_PIXELS:
            raise PageError(f"{name}: {width}x{height} pixels is over the {MAX_PAGE_PIXELS // 1_000_000} megapixel "
                            "limit (decompression bomb guard)")
        fmt = (img.format or "png").lower()
        img.load()
        try:
            img = ImageOps.exif_transpose(img)
        except Exception:  # a broken EXIF block must not cost the page; keep it as stored
            pass
        return _to_page(img, fmt)
    except PageError:
        raise
    except Image.DecompressionBombError as e:
        raise PageError(f"{name}: refused as a decompression bomb ({one_line(e)})") from None
    except UnidentifiedImageError:
        raise PageError(f"{name}: not an image PIL can read") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError, IndexError, TypeError) as e:
        raise PageError(f"{name}: cannot decode ({one_line(e)})") from None
    except Exception as e:  # PIL's plugins raise what they like on hostile bytes (struct.error, KeyError, ...)
        raise PageError(f"{name}: cannot decode ({type(e).__name__}: {one_line(e)})") from None


def _to_page(img: Image.Image, fmt: str) -> DecodedPage:
    info = {k: img.info[k] for k in ("dpi",) if k in img.info}
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


def page_from_pil(img: Image.Image) -> DecodedPage:
    """A ``DecodedPage`` from an already-open PIL image (notebooks), EXIF orientation honored."""
    img = ImageOps.exif_transpose(img)
    return _to_page(img, (img.format or "png").lower())


def encode_image(rgb: np.ndarray, fmt: str, *, alpha: np.ndarray | None = None, quality: int = 92,
                 info: dict[str, Any] | None = None) -> bytes:
    """Encode an ``HxWx3`` uint8 sRGB page as ``fmt`` (png, jpeg/jpg, webp, bmp, tiff); alpha kept where the format can."""
    fmt = "jpeg" if fmt == "jpg" else fmt
    img = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB")
    if alpha is not None and fmt in FORMATS_WITH_ALPHA:
        img.putalpha(Image.fromarray(np.ascontiguousarray(alpha, dtype=np.uint8), "L"))
    params: dict[str, Any] = {}
    if info and "dpi" in info:
        params["dpi"] = info["dpi"]
    if fmt == "jpeg":
        params.update(quality=quality, optimize=True)
    elif fmt == "webp":
        params.update(quality=quality, method=4)
    elif fmt == "png":
        # zlib level 3: 0.15 s instead of 0.32 s for a colored 1200x1700 page, 9 % larger (docs/PERFORMANCE.md).
        params.update(compress_level=3)
    buf = io.BytesIO()
    img.save(buf, format=fmt.upper(), **params)
    return buf.getvalue()
