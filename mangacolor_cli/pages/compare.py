"""``colorize --compare DIR``: before/after pictures a user can look at without opening archives.

One side-by-side JPEG per page file (``page.color.compare.jpg``) and one contact sheet per archive
(``chapter.color.compare.jpg``: every page as a before | after pair, in page order, named under it).
Their names are chosen before any work (``plan_comparisons``): never an input or an output, never twice.
Pages are shrunk to ``THUMB_HEIGHT`` as they finish, so a long chapter holds only thumbnails.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from PIL import Image, ImageDraw

from models.toolbox.files import MAX_NAME_BYTES, fit_name, write_bytes_atomic
from models.toolbox.images import to_rgb8

from .sources import ArchiveJob, ImageJob, Job

COMPARISON_SUFFIX = ".compare.jpg"
# The JPEG comment of every picture: what tells a comparison from a page that happens to share its name.
COMPARISON_MARK = b"mangacolor before/after comparison"
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


def is_comparison(path: Path) -> bool:
    """A before/after picture a run wrote (its name and its JPEG comment say so): a folder run never reads one
    back as a page, and a rerun writes over it."""
    if not path.name.lower().endswith(COMPARISON_SUFFIX):
        return False
    try:
        with Image.open(path) as img:
            comment = img.info.get("comment", b"")
    except Exception:  # unreadable, or not an image at all: not ours
        return False
    return isinstance(comment, bytes) and comment.startswith(COMPARISON_MARK)


def plan_comparisons(folder: Path, jobs: Iterable[Job], inputs: Iterable[Path]) -> dict[int, Path]:
    """Where each job's picture goes (by ``id(job)``), chosen before any work: ``<output stem>.compare.jpg``,
    the output's whole name where two stems meet (``p.png``, ``p.jpg``), then `` (2)``... until the name is
    no input, no output, no other picture and no file a run did not write."""
    jobs = list(jobs)
    own = [job for job in jobs if isinstance(job, (ImageJob, ArchiveJob))]
    taken = {p.resolve() for p in inputs} | {path.resolve() for job in jobs for path in (job.source, job.target)}
    stems = Counter(job.target.stem for job in own)
    planned: dict[int, Path] = {}
    for job in own:
        name = job.target.stem if stems[job.target.stem] == 1 else job.target.name
        path = _free_name(folder, name, taken)
        taken.add(path.resolve())
        planned[id(job)] = path
    return planned


def _free_name(folder: Path, name: str, taken: set[Path]) -> Path:
    """``folder/<name>.compare.jpg``, numbered from `` (2)`` while that is taken or a file a run did not write."""
    n = 1
    while True:
        tail = (f" ({n})" if n > 1 else "") + COMPARISON_SUFFIX
        path = folder / (fit_name(name, MAX_NAME_BYTES - len(tail.encode())) + tail)
        if path.resolve() not in taken and not (os.path.lexists(path) and not is_comparison(path)):
            return path
        n += 1


def write_comparison(path: Path, job: Any, thumbs: list[tuple[int, Image.Image, Image.Image]]) -> Path:
    """Write ``job``'s before/after picture at ``path`` (``plan_comparisons``): a side-by-side for one page,
    else a contact sheet; its JPEG comment marks it as a comparison."""
    thumbs = sorted(thumbs, key=lambda t: t[0])
    names = {ref.key: ref.name for ref in job.pages()} if len(thumbs) > 1 else {}
    if len(thumbs) == 1:
        image = _pair_image(thumbs[0][1], thumbs[0][2])
    else:
        image = contact_sheet([(names.get(key, str(key)), b, a) for key, b, a in thumbs])
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=85, optimize=True, comment=COMPARISON_MARK)
    return write_bytes_atomic(path, buf.getvalue())
