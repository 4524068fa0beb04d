"""``--reference``: colored pages whose region colors carry to the B/W pages (``models.paint.references``).

:func:`load_references` reads what the user names (an image, a folder of them, a CBZ/ZIP/CBR) and
prepares each colored page once: segmented, its regions described. A reference that cannot serve
(unreadable, black and white, tiny) is left out with one warning line naming it; a folder's or an
archive's B/W pages are left out silently (a chapter passed as its own reference gives its color
pages). Very large pages are scaled down to REFERENCE_SIDE first: the tokens describe shapes
relative to the figure, so a smaller copy describes the same regions.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
from PIL import Image

from models.paint import references as refs
from models.paint import regions as rg

from ..errors import PageError, UsageError
from ..pages.images import decode_page, is_page_name
from ..pages.sources import ArchiveJob, archive_kind
from .pagework import as_page, looks_colored

# A reference's long side is brought to at most this many pixels (the segmentation's own working size
# is about 900 label pixels on the long side: larger costs time and adds nothing).
REFERENCE_SIDE = 1800
# Below this short side a reference holds too little to match regions against.
MIN_REFERENCE_SIDE = 64
# At most this many references are used (each adds to every page's matching).
MAX_REFERENCES = 32


def _rgb8(page) -> np.ndarray:
    from models.toolbox.images import to_rgb8
    return to_rgb8(page.pixels)


def _scaled(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    side = max(h, w)
    if side <= REFERENCE_SIDE:
        return rgb
    s = REFERENCE_SIDE / side
    return np.asarray(Image.fromarray(rgb).resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.LANCZOS))


def prepare(page: Any, name: str, warn: Callable[[str], None], *, from_collection: bool = False) -> list[refs.Reference]:
    """One reference page (path, PIL image, array or DecodedPage) -> its prepared references
    (``models.paint.references.prepare_references``), or none (warned)."""
    try:
        decoded = as_page(page)
    except PageError as e:
        warn(f"--reference {name}: {e} (left out)")
        return []
    h, w = decoded.pixels.shape[:2]
    if min(h, w) < MIN_REFERENCE_SIDE:
        warn(f"--reference {name}: {w}x{h} is too small to take colors from (left out)")
        return []
    if not looks_colored(decoded):
        if not from_collection:
            warn(f"--reference {name}: the page is black and white, a reference must be in color (left out)")
        return []
    prepared = [r for r in refs.prepare_references(_scaled(_rgb8(decoded)), name=name) if len(r.tokens.ids)]
    if not prepared:
        warn(f"--reference {name}: no regions to take colors from (left out)")
    return prepared


def _pages_of(path: Path) -> Iterable[tuple[str, Callable[[], bytes]]]:
    """(name, read) of each page of a folder (sorted, not recursive into hidden folders) or archive."""
    if path.is_dir():
        from models.toolbox.folders import image_paths  # the one folder walk
        for p in image_paths(path, accept=is_page_name):
            yield str(p), p.read_bytes
        return
    job = ArchiveJob(path, path)
    try:
        for page in job.pages():
            yield page.label, page.read
    finally:
        job.close()


def load_references(paths: Iterable[Any], warn: Callable[[str], None] = lambda m: None) -> list[refs.Reference]:
    """Prepare every usable reference page under ``paths`` (images, folders, archives; or images given
    as PIL images or arrays). A path that does not exist is a ``UsageError``; a page that cannot serve
    is left out with a warning."""
    out: list[refs.Reference] = []
    for item in paths:
        if isinstance(item, refs.Reference):
            out.append(item)
            continue
        if not isinstance(item, (str, os.PathLike)):
            out += prepare(item, f"reference {len(out) + 1}", warn)
            continue
        path = Path(item)
        if not path.exists():
            raise UsageError(f"--reference {path}: no such file or folder")
        if path.is_dir() or (path.is_file() and (archive_kind(path) == "rar" or zipfile.is_zipfile(path))):
            found = 0
            try:
                for name, read in _pages_of(path):
                    try:
                        page = decode_page(read(), name)
                    except (PageError, OSError) as e:
                        warn(f"--reference {name}: {e} (left out)")
                        continue
                    prepared = prepare(page, name, warn, from_collection=True)
                    out += prepared
                    found += bool(prepared)
            except (PageError, OSError, ValueError) as e:
                warn(f"--reference {path}: cannot read it ({str(e).splitlines()[0] if str(e) else type(e).__name__}) (left out)")
                continue
            if not found:
                warn(f"--reference {path}: no color page in it to take colors from (left out)")
            continue
        try:
            page = decode_page(path.read_bytes(), str(path))
        except (PageError, OSError) as e:
            warn(f"--reference {path}: {e} (left out)")
            continue
        out += prepare(page, str(path), warn)
    if len(out) > MAX_REFERENCES:
        warn(f"--reference: more color pages than it takes, the first {MAX_REFERENCES} references are used")
        out = out[:MAX_REFERENCES]
    return out


# Image modes that hold no color: a page in one of them is never a reference (no decoding needed).
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def chapter_references(pages: Iterable[Any], warn: Callable[[str], None] = lambda m: None) -> list[refs.Reference]:
    """The color pages of a chapter (its ``SourcePage``s), prepared as references for its B/W pages.

    Cheap on a chapter without color: a page stored gray is known B/W from its header, a JPEG is
    judged on a reduced decode (``draft``), and only a page that looks colored is decoded whole.
    """
    import io

    out: list[refs.Reference] = []
    for page in pages:
        if len(out) >= MAX_REFERENCES:
            break
        try:
            data = page.read()
            with Image.open(io.BytesIO(data)) as im:
                if im.mode in GRAY_MODES:
                    continue
                if im.format == "JPEG":
                    im.draft("RGB", (max(1, im.width // 4), max(1, im.height // 4)))
                small = np.asarray(im.convert("RGB"))
            if not looks_colored(small):
                continue
            decoded = decode_page(data, page.label)
        except (PageError, OSError, ValueError, Image.DecompressionBombError):
            continue  # the page fails on its own when the run reaches it
        out += prepare(decoded, page.label, warn, from_collection=True)
    return out


def fingerprint(paths: Iterable[Any]) -> str | None:
    """A short digest of the reference files (name, size, modification time) for the settings record."""
    items = []
    for item in paths:
        if isinstance(item, (str, os.PathLike)):
            p = Path(item)
            try:
                st = p.stat()
                items.append(f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}")
            except OSError:
                items.append(str(p))
        else:
            items.append(type(item).__name__)
    if not items:
        return None
    return hashlib.sha1("\n".join(items).encode("utf-8", "surrogateescape")).hexdigest()[:12]


def page_known(regions: rg.Regions, gray_small: np.ndarray, references: list[refs.Reference],
               hints: np.ndarray | None = None) -> rg.Known:
    """The known colors of a page's regions: reference matches, then its hint image over them."""
    m = refs.match(regions, gray_small, references)
    return rg.known_colors(regions, hints, (m.ids, m.lab))
