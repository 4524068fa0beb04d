"""The one image loader: every page format and mode we promise, natural order, bomb guard."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mangacolor_cli.errors import PageError
from mangacolor_cli.pages.images import decode_page as decode_image
from mangacolor_cli.pages.images import encode_image
from tests.conftest import color_page, draw_page, encoded
from models.toolbox import images as loader


def test_natural_order_puts_2_before_10():
    names = ["p10.png", "P2.png", "p1.png", "a/p3.png", "b/p1.png"]
    assert sorted(names, key=loader.natural_path_key) == ["a/p3.png", "b/p1.png", "p1.png", "P2.png", "p10.png"]


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P", "I;16", "CMYK", "1"])
def test_gray_page_decodes_as_gray_in_every_mode(mode):
    page = draw_page()
    img = page.convert(mode) if mode != "I;16" else Image.fromarray(np.asarray(page).astype(np.uint16) * 257)
    fmt = "JPEG" if mode == "CMYK" else ("TIFF" if mode == "I;16" else "PNG")
    decoded = decode_image(encoded(img, fmt), "page")
    assert decoded.is_gray
    assert (decoded.width, decoded.height) == page.size


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF"])
def test_color_page_decodes_as_rgb_in_every_format(fmt):
    decoded = decode_image(encoded(color_page(), fmt), "page")
    assert not decoded.is_gray and decoded.pixels.shape == (64, 48, 3)


def test_exif_orientation_is_honored():
    img = draw_page(48, 64)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    decoded = decode_image(encoded(img, "JPEG", exif=exif), "page")
    assert (decoded.width, decoded.height) == (64, 48)


def test_alpha_is_kept_through_encode():
    rgba = color_page().convert("RGBA")
    rgba.putalpha(128)
    decoded = decode_image(encoded(rgba), "page")
    out = Image.open(io.BytesIO(encode_image(decoded.pixels, "png", alpha=decoded.alpha)))
    assert out.mode == "RGBA" and out.getpixel((0, 0))[3] == 128


def test_corrupt_page_is_a_one_line_page_error_naming_it():
    data = encoded(draw_page())[:60]
    with pytest.raises(PageError) as err:
        decode_image(data, "book.cbz:003.png")
    assert str(err.value).startswith("book.cbz:003.png: ") and "\n" not in str(err.value)


def test_decompression_bomb_is_refused(monkeypatch):
    monkeypatch.setattr(loader, "MAX_PAGE_PIXELS", 1000)
    with pytest.raises(PageError, match="decompression bomb"):
        decode_image(encoded(draw_page()), "bomb.png")
