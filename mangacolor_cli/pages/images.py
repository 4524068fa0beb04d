"""Page images for ``colorize``: which files are pages, decoding through the one loader
(``trainer.images``) with ``PageError``, and encoding colored pages back.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from trainer import images as loader

from ..errors import PageError

# Pages colorize reads are the loader's formats it can also write back under the page's own name
# (a GIF holds 256 colors: it trains, but a colored GIF page cannot be written as one).
PAGE_EXTENSIONS = frozenset(ext for ext, fmt in loader.FORMAT_BY_EXTENSION.items() if fmt != "gif")
# The extension a page gets when written in a format other than its own (--format).
EXTENSION_BY_FORMAT = {"png": ".png", "jpeg": ".jpg", "jpg": ".jpg", "webp": ".webp", "bmp": ".bmp", "tiff": ".tif"}
WRITABLE_FORMATS = frozenset({"png", "jpeg", "jpg", "webp", "bmp", "tiff"})
FORMATS_WITH_ALPHA = frozenset({"png", "webp", "tiff"})


def is_page_name(name: str) -> bool:
    """True for a file name ``colorize`` treats as a page (see ``PAGE_EXTENSIONS``)."""
    dot = name.rfind(".")
    return dot >= 0 and name[dot:].lower() in PAGE_EXTENSIONS


def decode_page(data: bytes, name: str) -> loader.DecodedPage:
    """``trainer.images.decode_image`` with its one-line error as a ``PageError`` (the job goes on)."""
    try:
        return loader.decode_image(data, name)
    except loader.ImageDecodeError as e:
        raise PageError(str(e)) from None


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
