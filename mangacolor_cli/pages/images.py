"""Page images for ``colorize``: which files are pages, decoding through the one loader
(``models.toolbox.images``) with ``PageError``, and encoding colored pages back.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

from models.toolbox import images as loader

from ..errors import PageError

# Pages colorize reads: every format the loader reads, each written back in its own format under the
# page's own name (a colored GIF page in an adaptive 256-color palette).
PAGE_EXTENSIONS = frozenset(loader.FORMAT_BY_EXTENSION)
# The extension a page gets when written in a format other than its own (--format).
EXTENSION_BY_FORMAT = {"png": ".png", "jpeg": ".jpg", "jpg": ".jpg", "webp": ".webp", "bmp": ".bmp", "tiff": ".tif"}
WRITABLE_FORMATS = frozenset({"png", "jpeg", "jpg", "webp", "bmp", "tiff", "gif"}
                             | ({"avif"} if ".avif" in loader.FORMAT_BY_EXTENSION else set()))
FORMATS_WITH_ALPHA = frozenset({"png", "webp", "tiff", "avif"})
# The longest side a format can hold: a longer page fails in one line, never written in another format
# under this one's name.
MAX_SIDE_BY_FORMAT = {"webp": (16383, "WebP"), "jpeg": (65535, "JPEG"), "gif": (65535, "GIF")}
# Formats that carry an ICC profile: a page keeps its own (Adobe RGB...); BMP and GIF pages are converted to sRGB.
FORMATS_WITH_ICC = frozenset({"png", "jpeg", "webp", "tiff", "avif"})
# Image files colorize cannot color (not readable here): reported and kept as they are, never silently copied.
OTHER_IMAGE_EXTENSIONS = frozenset({".heic", ".heif", ".jxl", ".jp2", ".j2k", ".psd", ".svg", ".ico", ".tga",
                                    ".pcx", ".ppm", ".pgm", ".pbm", ".qoi", ".avif", ".apng", ".dds"}) - PAGE_EXTENSIONS


def is_page_name(name: str) -> bool:
    """True for a file name ``colorize`` treats as a page (see ``PAGE_EXTENSIONS``); never a macOS
    resource fork (``__MACOSX/``, ``._page.png``), which holds no image."""
    dot = name.rfind(".")
    return dot >= 0 and name[dot:].lower() in PAGE_EXTENSIONS and not is_resource_fork(name)


def is_other_image_name(name: str) -> bool:
    """True for an image file colorize cannot color (HEIC, JPEG XL, PSD...): reported, kept as it is."""
    dot = name.rfind(".")
    return dot >= 0 and name[dot:].lower() in OTHER_IMAGE_EXTENSIONS and not is_resource_fork(name)


def is_resource_fork(name: str) -> bool:
    """A macOS archive's metadata: anything under ``__MACOSX/`` or an AppleDouble ``._name`` file."""
    parts = name.replace("\\", "/").split("/")
    return "__MACOSX" in parts or parts[-1].startswith("._")


def decode_page(data: bytes, name: str) -> loader.DecodedPage:
    """``models.toolbox.images.decode_image`` with its one-line error as a ``PageError`` (the job goes on)."""
    try:
        page = loader.decode_image(data, name)
    except loader.ImageDecodeError as e:
        raise PageError(str(e)) from None
    frames = page.info.get("frames", 1)
    if frames > 1:
        # Coloring the first frame would drop the rest: the page is reported and kept as it is.
        raise PageError(f"{name}: {frames} frames (animated or multi-page image); only single-frame pages are colored")
    return _gray_in_srgb(page)


def _profile(icc: bytes | None) -> Any:
    """The ``ImageCms`` profile of an ICC blob, or None (none, or broken: the page is read as sRGB, as before)."""
    if not icc:
        return None
    from PIL import ImageCms

    try:
        return ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except Exception:  # a truncated or hostile profile
        return None


def _color_space(icc: bytes | None) -> str | None:
    profile = _profile(icc)
    return None if profile is None else profile.profile.xcolor_space.strip()


def _gray_in_srgb(page: loader.DecodedPage) -> loader.DecodedPage:
    """A gray page with a gray ICC profile (dot gain, gamma 1.8) in sRGB gray: the colored page is RGB, which
    cannot carry a gray profile, so its lightness is converted instead of dropped (shifts of 45 levels)."""
    icc = page.info.get("icc_profile")
    if not (page.is_gray and page.pixels.dtype == np.uint8 and _color_space(icc) == "GRAY"):
        return page
    from PIL import ImageCms

    try:
        rgb = ImageCms.profileToProfile(Image.fromarray(page.pixels, "L"), _profile(icc),
                                        ImageCms.createProfile("sRGB"), outputMode="RGB")
    except ImageCms.PyCMSError:
        return page  # a profile littlecms cannot apply: read as sRGB, as before
    page.pixels = np.asarray(rgb.convert("L"), dtype=np.uint8)
    del page.info["icc_profile"]
    return page


def encode_image(rgb: np.ndarray, fmt: str, *, alpha: np.ndarray | None = None, quality: int = 92,
                 info: dict[str, Any] | None = None, settings: str | None = None) -> bytes:
    """Encode an ``HxWx3`` uint8 sRGB page as ``fmt`` (png, jpeg/jpg, webp, bmp, tiff); alpha kept where the format can.

    ``settings``: the record of the settings the page was colored with, kept in its metadata
    (``settings_params``) for a rerun to compare (``read_settings``).
    """
    fmt = "jpeg" if fmt == "jpg" else fmt
    _check_side(rgb.shape[1], rgb.shape[0], fmt)
    if alpha is not None and fmt not in FORMATS_WITH_ALPHA:
        # A format without alpha: the page on white paper, as training and eval see it (never black).
        rgb, alpha = loader.on_paper(loader.DecodedPage(pixels=np.asarray(rgb), alpha=alpha)), None
    img = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB")
    if alpha is not None:
        img.putalpha(Image.fromarray(np.ascontiguousarray(alpha, dtype=np.uint8), "L"))
    params: dict[str, Any] = settings_params(fmt, settings) if settings is not None else {}
    if info and "dpi" in info:
        params["dpi"] = info["dpi"]
    icc = (info or {}).get("icc_profile")
    if _color_space(icc) == "RGB":  # the page's own RGB space (Adobe RGB...): its colors read as they were
        if fmt in FORMATS_WITH_ICC:
            params["icc_profile"] = icc
        else:
            img = _in_srgb(img, icc)
    if fmt == "jpeg":
        params.update(quality=quality, optimize=True)
    elif fmt == "webp":
        params.update(quality=quality, method=4)
    elif fmt == "gif":
        img = img.quantize(256)  # an adaptive palette: the colored page's own 256 colors
    elif fmt == "png":
        # zlib level 3: 0.15 s instead of 0.32 s for a colored 1200x1700 page, 9 % larger (docs/PERFORMANCE.md).
        params.update(compress_level=3)
    buf = io.BytesIO()
    img.save(buf, format=fmt.upper(), **params)
    return buf.getvalue()


def _check_side(width: int, height: int, fmt: str) -> None:
    limit, name = MAX_SIDE_BY_FORMAT.get(fmt, (None, fmt))
    if limit is not None and max(width, height) > limit:
        raise ValueError(f"{width}x{height} pixels is over {name}'s limit of {limit} a side; PNG holds it")


def _in_srgb(img: Image.Image, icc: bytes) -> Image.Image:
    """``img``'s pixels, read in the RGB profile ``icc``, converted to sRGB (for a format without a profile)."""
    from PIL import ImageCms

    try:
        return ImageCms.profileToProfile(img, _profile(icc), ImageCms.createProfile("sRGB"))
    except ImageCms.PyCMSError:
        return img


# How an output holds the settings it was made with (engine.settings): this mark, then the record.
SETTINGS_MARK = "mangacolor settings: "
_EXIF_DESCRIPTION = 0x010E


def settings_params(fmt: str, settings: str) -> dict[str, Any]:
    """Save parameters that keep ``settings`` in an image's metadata: a PNG text chunk, a JPEG or GIF
    comment, the EXIF image description of WebP, TIFF and AVIF; none for BMP, which has no room for it."""
    text = SETTINGS_MARK + settings
    if fmt == "png":
        chunks = PngImagePlugin.PngInfo()
        chunks.add_text("mangacolor", text)
        return {"pnginfo": chunks}
    if fmt in ("jpeg", "gif"):
        return {"comment": text}
    if fmt in ("webp", "tiff", "avif"):
        exif = Image.Exif()
        exif[_EXIF_DESCRIPTION] = text
        return {"exif": exif}
    return {}


def read_settings(path: str | os.PathLike) -> str | None:
    """The settings record an image file carries (``settings_params``), or None: none kept (a BMP, a page
    copied as it was, an older mangacolor's output) or not readable as an image."""
    try:
        with Image.open(path) as img:
            found = [img.info.get("mangacolor"), img.info.get("comment"), img.getexif().get(_EXIF_DESCRIPTION)]
    except Exception:  # a truncated or hostile file: it holds no record we wrote
        return None
    for value in found:
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        if isinstance(text, str) and text.startswith(SETTINGS_MARK):
            return text[len(SETTINGS_MARK):]
    return None
