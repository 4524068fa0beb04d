"""Where each page's hint image comes from (``colorize --hints FILE|DIR``).

A hint image is a PNG the size of its page, transparent except colored scribbles or dots; every
region a scribble touches takes exactly its color (``models.paint.regions.hint_colors``). ``--hints FILE``
serves a single page. ``--hints DIR`` serves folders and archives, one hint file per page, matched
by the page's name: for page ``001.jpg`` of ``ch1.cbz`` (or file ``ch1/001.jpg`` of a folder) the
first of ``DIR/ch1/001.png`` and ``DIR/001.png`` that exists; a page without one has no hints.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from ..errors import MangacolorError, UsageError
from ..pages.sources import Job, SourcePage


class HintSource:
    """``--hints``: None, one file (for a single page) or a folder of per-page hint files."""

    def __init__(self, hints: str | os.PathLike | None, jobs: list[Job]):
        self.path = None if hints is None else Path(hints).expanduser()
        self.used: set[Path] = set()  # the hint files some page was matched with
        if self.path is None:
            return
        if not self.path.exists():
            raise UsageError(f"--hints {self.path}: no such file or folder")
        if not (self.path.is_file() or self.path.is_dir()):  # a FIFO or device would be read forever, or not at all
            raise UsageError(f"--hints {self.path}: not a regular file or folder")
        if self.path.is_file():
            pages = 0
            for job in jobs:
                try:
                    pages += job.page_count()
                except MangacolorError:  # an unreadable input fails on its own, later
                    pages += 1
            if pages > 1:
                raise UsageError(f"--hints {self.path} is one file, for one page; these inputs hold {pages} pages: "
                                 "give a folder with one hint file per page (matched by page name)")

    def for_page(self, job: Job, ref: SourcePage) -> Path | None:
        """The hint file of one page, or None."""
        if self.path is None:
            return None
        if self.path.is_file():
            return self.path
        name = PurePosixPath(ref.name.replace("\\", "/"))
        owner = Path(getattr(job, "source", "") or "").stem
        candidates = []
        if owner:
            candidates.append(self.path / owner / name.with_suffix(".png"))
        candidates += [self.path / name.with_suffix(".png"), self.path / (name.stem + ".png")]
        for candidate in candidates:
            if _is_file(candidate):
                self.used.add(candidate.resolve())
                return candidate
        return None

    def unmatched(self) -> list[Path]:
        """The hint files of a ``--hints DIR`` that no page of the run was matched with (a misspelled or
        renumbered name colors nothing, so the run names them)."""
        if self.path is None or not self.path.is_dir():
            return []
        files = (p for p in self.path.rglob("*") if p.suffix.lower() == ".png" and p.is_file())
        return sorted(p for p in files if p.resolve() not in self.used)


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False where the path cannot exist: a 300-character entry name is too long for the
    file system (ENAMETOOLONG), so that page has no hint file."""
    try:
        return path.is_file()
    except OSError:
        return False
