"""``colorize --compare DIR``: before/after pictures a user can look at without opening archives.

One side-by-side JPEG per page file (``page.color.compare.jpg``) and one contact sheet per archive
(``chapter.color.compare.jpg``: every page as a before | after pair, in page order, named under it).
Pages are shrunk to ``THUMB_HEIGHT`` as they finish, so a long chapter holds only thumbnails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from models.files import fit_name, write_bytes_atomic
from trainer.images import to_rgb8

from .images import encode_image

THUMB_HEIGHT = 360
SHEET_COLUMNS = 3   # before | after pairs per row of a contact sheet
_GAP, _CAPTION = 8, 16


def _thumb(rgb: np.ndarray) -> Image.Image:
    img = Image.fromarray(rgb)
    if img.height > THUMB_HEIGHT:
        img = img.resize((max(1, round(img.width * THUMB_HEIGHT / img.height)), THUMB_HEIGHT), Image.LANCZOS)
    return img


def compare_pair(page: Any, colored: np.ndarray | None) -> tuple[Image.Image, Image.Image]:
    """The page before and after (``colored`` None: a page passed through unchanged), as thumbnails."""
    before = _thumb(to_rgb8(page.pixels))
    return before, (before if colored is None else _thumb(np.asarray(colored)))


def _pair_image(before: Image.Image, after: Image.Image, caption: str | None = None) -> Image.Image:
    height = max(before.height, after.height) + (_CAPTION if caption else 0)
    canvas = Image.new("RGB", (before.width + _GAP + after.width, height), "white")
    canvas.paste(before, (0, 0))
    canvas.paste(after, (before.width + _GAP, 0))
    if caption:
        ImageDraw.Draw(canvas).text((2, height - _CAPTION + 2), caption, fill=(60, 60, 60))
    return canvas


def contact_sheet(pairs: list[tuple[str, Image.Image, Image.Image]], columns: int = SHEET_COLUMNS) -> Image.Image:
    """``(caption, before, after)`` pairs in a grid, ``columns`` pairs a row, each captioned."""
    tiles = [_pair_image(b, a, caption) for caption, b, a in pairs]
    rows = [tiles[i:i + columns] for i in range(0, len(tiles), columns)]
    width = max(sum(t.width for t in row) + _GAP * (len(row) - 1) for row in rows)
    height = sum(max(t.height for t in row) for row in rows) + _GAP * (len(rows) - 1)
    sheet = Image.new("RGB", (width, height), (235, 235, 235))
    y = 0
    for row in rows:
        x = 0
        for tile in row:
            sheet.paste(tile, (x, y))
            x += tile.width + _GAP
        y += max(t.height for t in row) + _GAP
    return sheet


def comparison_path(folder: Path, target: Path) -> Path:
    return folder / fit_name(f"{target.stem}.compare.jpg")


def write_comparison(folder: Path, job: Any, thumbs: list[tuple[int, Image.Image, Image.Image]]) -> Path:
    """Write ``job``'s before/after picture into ``folder``: a side-by-side for one page, else a contact sheet."""
    thumbs = sorted(thumbs, key=lambda t: t[0])
    names = {ref.key: ref.name for ref in job.pages()} if len(thumbs) > 1 else {}
    if len(thumbs) == 1:
        image = _pair_image(thumbs[0][1], thumbs[0][2])
    else:
        image = contact_sheet([(names.get(key, str(key)), b, a) for key, b, a in thumbs])
    path = comparison_path(folder, job.target)
    return write_bytes_atomic(path, encode_image(np.asarray(image), "jpg", quality=85))
