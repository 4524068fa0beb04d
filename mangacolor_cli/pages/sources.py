"""Input reading: an image file or a CBZ/ZIP/CBR archive as a ``Job`` that lists its pages and writes its output.

``planning.plan_jobs`` turns inputs into jobs: one output file each (an image, or an archive). A job lists
its pages (``SourcePage``) in natural order for processing and writes its output in the input's own
order with ``finish``. The base types live in ``jobs``; archives are read defensively by
``archive_reader.ArchiveJob`` (re-exported here), this module holds the image and copy jobs.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from PIL import Image

from models.toolbox.errors import first_line
from models.toolbox.files import MAX_NAME_BYTES, fit_name, write_bytes_atomic
from models.toolbox.images import format_of_name

from ..errors import InputError, PageError
from .archive_reader import MAX_ENTRY_BYTES, ArchiveJob, archive_kind  # noqa: F401
from .images import read_settings
from .jobs import Job, PageResult, SourcePage  # noqa: F401

# Archives a folder run takes as chapters; each is opened by what its bytes are (``archive_kind``), never its name.
NOT_ZIP_EXTENSIONS = frozenset({".cbr", ".rar", ".cb7", ".7z", ".cbt", ".tar"})
ARCHIVE_EXTENSIONS = frozenset({".cbz", ".zip"}) | NOT_ZIP_EXTENSIONS
# An image file's own size limit (a folder page or a single input), like an archive entry's.
MAX_FILE_BYTES = MAX_ENTRY_BYTES
# Beside a folder run's page that failed and was copied as it is: a rerun tries it again.
FAILED_MARKER_SUFFIX = ".mangacolor-failed"


class ReportedJob(Job):
    """An input found but not processed (an image colorize cannot color, a path it cannot open): its one
    error line is reported when the run reaches it, and nothing is written."""

    def __init__(self, source: Path, target: Path, message: str):
        self.source, self.target, self.errors, self.message = source, target, [], message

    def pages(self) -> list[SourcePage]:
        raise InputError(self.message)

    def page_count(self) -> int:
        return 0

    def output_state(self) -> str | None:
        return None

    def finish(self, results: dict[int, PageResult]) -> None:
        pass


class ImageJob(Job):
    """A single image file -> a single image file.

    ``keep_original`` (a page of a folder run, as in an archive run): a page that fails is copied to
    its output as it is, and a hidden marker beside it (``.<name>.mangacolor-failed``) makes a rerun
    try it again.
    """

    def __init__(self, source: Path, target: Path, label: str | None = None, keep_original: bool = False,
                 fmt: str | None = None):
        self.source, self.target, self.errors = source, target, []
        self.label = label or str(source)
        self.keep_original = keep_original
        self.fmt = fmt

    def copies_original(self) -> bool:
        """Whether a failed page is copied to its output as it is: only under a name that says its format
        (never PNG bytes in ``strip.webp``; that page is reported, a rerun tries it again)."""
        return self.keep_original and format_of_name(self.target.name) == format_of_name(self.source.name)

    def failed_marker(self) -> Path:
        name = fit_name(self.target.name, MAX_NAME_BYTES - 1 - len(FAILED_MARKER_SUFFIX))
        return self.target.with_name(f".{name}{FAILED_MARKER_SUFFIX}")

    def pages(self) -> list[SourcePage]:
        return [SourcePage(0, self.source.name, self.label, self._read)]

    def page_count(self) -> int:
        return 1

    def _read(self) -> bytes:
        try:
            with open(self.source, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    raise PageError(f"{self.label}: not a regular file")
                data = f.read(MAX_FILE_BYTES + 1)
        except OSError as e:
            raise PageError(f"{self.label}: cannot read ({first_line(e)})") from None
        if len(data) > MAX_FILE_BYTES:
            raise PageError(f"{self.label}: over the {MAX_FILE_BYTES >> 20} MiB page file limit")
        return data

    def _judge_output(self) -> str:
        if self.keep_original and self.failed_marker().exists():
            return "unfinished"  # the original, copied when the page failed
        # Our output is an image in the format its name says; anything else is not ours to skip or replace.
        try:
            with Image.open(self.target) as img:
                fmt = (img.format or "").lower()
        except Exception:
            return "foreign"
        if fmt != format_of_name(self.target.name):
            return "foreign"
        # Finished means marked by us (the settings record), or the input copied as it was; a thumbnail or
        # another tool's page at the target path is not. A BMP has no room for the record.
        if fmt == "bmp" or read_settings(self.target) is not None or self.output_is_a_copy():
            return "finished"
        return "foreign"

    def output_settings(self) -> str | None:
        return read_settings(self.target)

    def output_is_a_copy(self) -> bool:
        try:
            if self.target.stat().st_size != self.source.stat().st_size:
                return False
            return self.target.read_bytes() == self.source.read_bytes()
        except OSError:
            return False

    def finish(self, results: dict[int, PageResult]) -> None:
        result = results.get(0)
        if result is None:
            if self.copies_original():  # the folder's output stays complete; the marker says the page is not done
                try:
                    original = self._read()
                except PageError:
                    return  # unreadable (its error is already reported): nothing to keep
                write_bytes_atomic(self.failed_marker(), b"")
                write_bytes_atomic(self.target, original)
            return  # the page failed: the error is reported, a rerun tries again
        write_bytes_atomic(self.target, result.data if result.data is not None else self._read())
        if self.keep_original:
            self.failed_marker().unlink(missing_ok=True)


class CopyJob(Job):
    """A file of a folder run that is not a page (ComicInfo.xml, a text file): copied to the output as it is,
    as an archive run keeps its non-image entries."""

    def __init__(self, source: Path, target: Path, label: str | None = None):
        self.source, self.target, self.errors = source, target, []
        self.label = label or str(source)

    def pages(self) -> list[SourcePage]:
        return []

    def page_count(self) -> int:
        return 0

    def finish(self, results: dict[int, PageResult]) -> None:
        try:
            with open(self.source, "rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
        except OSError as e:
            self.errors.append(f"{self.label}: cannot read, not copied ({first_line(e)})")
            return
        if len(data) > MAX_FILE_BYTES:
            self.errors.append(f"{self.label}: over the {MAX_FILE_BYTES >> 20} MiB file limit, not copied")
            return
        write_bytes_atomic(self.target, data)
