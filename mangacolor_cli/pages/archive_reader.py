"""Reading archives defensively: a CBZ/ZIP (or a CBR extracted by unar/unrar) as an ``ArchiveJob``.

Nothing is ever extracted to disk from a ZIP, and entries with unsafe names, symlinks, encryption,
duplicate names or bomb-like sizes are refused one by one with a one-line reason. ``archive_kind`` tells
what an archive is by its first bytes, never its name.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from models.toolbox.errors import first_line
from models.toolbox.images import natural_path_key

from ..errors import InputError, MangacolorError, PageError
from .archives import FAILED_PAGE_COMMENT, OutputEntry, raw_entry_info, read_raw_entry, write_cbz_atomic
from .images import SETTINGS_MARK, is_other_image_name, is_page_name
from .jobs import Job, PageResult, SourcePage

# Signatures at the start of an archive; a tar says "ustar" at byte 257. Anything else is read as a ZIP
# (zipfile finds its directory from the end, so a self-extracting ZIP works too).
RAR_MAGIC = b"Rar!\x1a\x07"
SEVEN_ZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"
TAR_MAGIC, TAR_MAGIC_AT = b"ustar", 257
# What cannot be read, one line each (the run goes on with the other inputs).
UNSUPPORTED_ARCHIVES = {
    "7z": "7z archives are not supported (CB7); repack it as a CBZ (ZIP) to color it",
    "tar": "tar archives are not supported (CBT); repack it as a CBZ (ZIP) to color it",
}
# Archive limits (decompression-bomb guards): per entry, per archive, and compression ratio.
MAX_ENTRY_BYTES = 256 * 2**20
MAX_ARCHIVE_BYTES = 8 * 2**30
MAX_RATIO = 200
RATIO_MIN_BYTES = 2**20
# The whole archive's ratio too: many small entries of zeros (or overlapping entries) make a bomb as well.
ARCHIVE_RATIO_MIN_BYTES = 64 * 2**20


@dataclass
class _Member:
    index: int
    name: str
    info: zipfile.ZipInfo | None
    path: Path | None = None
    is_page: bool = False
    refused: str | None = None      # dropped from the output, with this reason
    raw_copy: str | None = None     # copied as stored (not readable), with this reason
    page_key: int | None = None


class ArchiveJob(Job):
    """A CBZ/ZIP (or a CBR extracted by unar/unrar) -> a CBZ with the same entry names and order."""

    def __init__(self, source: Path, target: Path, label: str | None = None):
        self.source, self.target, self.errors = source, target, []
        self.label = label or str(source)
        self._members: list[_Member] | None = None
        self._zip: zipfile.ZipFile | None = None
        self._lock = threading.Lock()
        self._extracted: Path | None = None
        self._comment = b""
        self._archive_kind: str | None = None

    # ------------------------------------------------------------------ reading
    def _open(self) -> list[_Member]:
        if self._members is None:
            kind = self._kind()
            if kind in UNSUPPORTED_ARCHIVES:
                raise InputError(f"{self.label}: {UNSUPPORTED_ARCHIVES[kind]}")
            self._members = self._open_rar() if kind == "rar" else self._open_zip()
        return self._members

    def _kind(self) -> str:
        """What the archive is by its bytes: a ``.cbr`` that holds a ZIP is read as a ZIP, a ``.cbz`` that
        holds a RAR needs unar (unreadable: "zip", and zipfile says why)."""
        if self._archive_kind is None:
            self._archive_kind = archive_kind(self.source)
        return self._archive_kind

    def _open_zip(self) -> list[_Member]:
        try:
            if not self.source.is_file():
                raise InputError(f"{self.label}: not a regular file")
            self._zip = zipfile.ZipFile(self.source)
            infos = self._zip.infolist()
            archive_bytes = self.source.stat().st_size
        except InputError:
            raise
        except Exception as e:  # zipfile raises a dozen types (struct, zlib, NotImplemented...) on hostile bytes
            self.close()
            raise InputError(f"{self.label}: not a readable ZIP/CBZ archive ({first_line(e)})") from None
        self._comment = self._zip.comment
        overlapping = _overlapping_entries(infos)
        members, seen = [], set()
        for index, info in enumerate(infos):
            m = _Member(index, info.filename, info)
            mode = (info.external_attr >> 16) & 0o170000
            if not _safe_entry_name(info.filename):
                m.refused = "unsafe entry name (absolute or '..'), left out"
            elif mode == 0o120000:
                m.refused = "symbolic link entry, left out"
            elif index in overlapping:
                m.refused = "data overlaps another entry's (zip bomb pattern), left out"
            elif info.file_size > MAX_ENTRY_BYTES:
                # A bomb is guarded per entry: never decompressed, its stored bytes kept, the rest colored.
                m.raw_copy = (f"{info.file_size} bytes uncompressed is over the {MAX_ENTRY_BYTES >> 20} MiB entry "
                              "limit, kept as stored (not decompressed)")
            elif info.file_size > RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                m.raw_copy = (f"compression ratio over {MAX_RATIO}:1 (decompression bomb guard), kept as stored "
                              "(not decompressed)")
            elif info.flag_bits & 0x1:
                m.raw_copy = "encrypted entry, kept as it is"
            elif info.filename in seen:
                m.raw_copy = "duplicate entry name, kept as the original"
            elif not info.is_dir() and is_page_name(info.filename):
                m.is_page = True
            elif not info.is_dir() and is_other_image_name(info.filename):
                m.raw_copy = "an image format mangacolor cannot color, kept as it is"
            seen.add(info.filename)
            members.append(m)
        # The whole archive's limits count what would be decompressed: many entries each under the limits
        # (or zeros in many small entries) make a bomb too; entries kept as stored are never inflated.
        inflated = [m.info for m in members if not (m.refused or m.raw_copy) and m.info is not None]
        total = sum(i.file_size for i in inflated)
        if total > MAX_ARCHIVE_BYTES:
            self.close()
            raise InputError(f"{self.label}: {total} bytes uncompressed is over the {MAX_ARCHIVE_BYTES >> 30} GiB "
                             "archive limit (decompression bomb guard)")
        if total > ARCHIVE_RATIO_MIN_BYTES and total > MAX_RATIO * max(archive_bytes, 1):
            self.close()
            raise InputError(f"{self.label}: {total} bytes uncompressed from {archive_bytes} is over the "
                             f"{MAX_RATIO}:1 compression ratio limit (decompression bomb guard)")
        return members

    def _open_rar(self) -> list[_Member]:
        tool = shutil.which("unar") or shutil.which("unrar")
        if tool is None:
            raise InputError(f"{self.label}: reading CBR/RAR needs 'unar' or 'unrar' "
                             "(e.g. apt install unar, or brew install unar)")
        self._extracted = Path(tempfile.mkdtemp(prefix="mangacolor-cbr-"))
        if Path(tool).name == "unar":
            cmd = [tool, "-quiet", "-no-directory", "-force-overwrite", "-output-directory", str(self._extracted),
                   str(self.source)]
        else:
            cmd = [tool, "x", "-idq", "-o+", "-y", str(self.source), str(self._extracted) + os.sep]
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise InputError(f"{self.label}: {Path(tool).name} could not extract it "
                             f"({detail[-1] if detail else 'exit code ' + str(proc.returncode)})")
        root = self._extracted.resolve()
        files = []
        for dirpath, _dirs, names in os.walk(root):
            for fname in names:
                path = Path(dirpath) / fname
                # Extraction tools may create links; never follow one out of the temp folder.
                if path.is_symlink() or not path.resolve().is_relative_to(root):
                    continue
                files.append(path.relative_to(root).as_posix())
        files.sort(key=natural_path_key)
        members = []
        for index, name in enumerate(files):
            path = root / name
            m = _Member(index, name, None, path=path)
            if path.stat().st_size > MAX_ENTRY_BYTES:
                m.refused = f"over the {MAX_ENTRY_BYTES >> 20} MiB entry limit, left out"
            else:
                m.is_page = is_page_name(name)
                if not m.is_page and is_other_image_name(name):
                    m.raw_copy = "an image format mangacolor cannot color, kept as it is"
            members.append(m)
        return members

    def _read_member(self, m: _Member) -> bytes:
        if m.path is not None:
            return m.path.read_bytes()
        if self._zip is None:
            raise PageError(f"{self.label}:{m.name}: archive is closed")
        with self._lock:
            with self._zip.open(m.info) as f:
                data = f.read(MAX_ENTRY_BYTES + 1)
        if len(data) > MAX_ENTRY_BYTES:
            raise PageError(f"{self.label}:{m.name}: over the entry size limit")
        return data

    def _reader(self, m: _Member) -> Callable[[], bytes]:
        def read() -> bytes:
            try:
                return self._read_member(m)
            except PageError:
                raise
            except Exception as e:  # bad CRC, zlib/lzma errors, unknown methods, bad headers: one page lost
                raise PageError(f"{self.label}:{m.name}: cannot read entry ({first_line(e)})") from None
        return read

    def pages(self) -> list[SourcePage]:
        members = self._open()
        pages = [m for m in members if m.is_page]
        pages.sort(key=lambda m: natural_path_key(m.name))
        refs = []
        for key, m in enumerate(pages):
            m.page_key = key
            refs.append(SourcePage(key, m.name, f"{self.label}:{m.name}", self._reader(m)))
        return refs

    def page_count(self) -> int:
        if self._kind() != "zip":
            return 0  # counting a RAR means extracting it; the progress total grows when it is opened
        return sum(1 for m in self._open() if m.is_page)

    def entry_names(self) -> list[str]:
        """The names the output archive will hold, in order (refused entries left out)."""
        return [m.name for m in self._open() if not m.refused]

    def refusals(self) -> list[str]:
        """One line per entry refused or kept raw, naming ``archive:entry`` and the reason."""
        return [f"{self.label}:{m.name}: {m.refused or m.raw_copy}" for m in self._open() if m.refused or m.raw_copy]

    def _judge_output(self) -> str:
        # Our archive with a page marked failed is not done: a rerun must not hide that page.
        try:
            with zipfile.ZipFile(self.target) as z:
                comments = [i.comment for i in z.infolist()]
        except Exception:  # not a ZIP at all
            return "foreign"
        failed = FAILED_PAGE_COMMENT in comments
        # Ours when its pages carry our marks (the settings record, or the failed mark); an unrelated ZIP at
        # the output path is not finished, and not ours to replace without --overwrite.
        ours = failed or any(c.startswith(SETTINGS_MARK.encode()) for c in comments)
        every_run = self._reports_on_every_run()
        if not ours and not every_run:
            return "foreign"
        return "unfinished" if failed or every_run else "finished"

    def _reports_on_every_run(self) -> bool:
        """Whether this input has entries every run reports (refused, kept as stored: an encrypted page) or
        no page at all: its output is never "finished", so a rerun says so again (exit 1), not "skipped"."""
        try:
            members = self._open()
        except MangacolorError:
            return True  # the run says why it cannot be read
        return any(m.refused or m.raw_copy for m in members) or not any(m.is_page for m in members)

    def output_settings(self) -> str | None:
        # Every page entry of our archive carries the record in its comment (failed ones their mark instead).
        mark = SETTINGS_MARK.encode()
        try:
            with zipfile.ZipFile(self.target) as z:
                comments = [i.comment for i in z.infolist()]
        except Exception:  # not a ZIP at all
            return None
        return next((c[len(mark):].decode("utf-8", "replace") for c in comments if c.startswith(mark)), None)

    # ------------------------------------------------------------------ writing
    def finish(self, results: dict[int, PageResult]) -> None:
        write_cbz_atomic(self.target, self._output_entries(results), comment=self._comment)

    def _output_entries(self, results: dict[int, PageResult]):
        for m in self._open():
            if m.refused:
                continue
            if m.raw_copy and m.info is not None:
                entry = self._raw_entry(m)
                if entry is not None:
                    yield entry
                continue
            result = results.get(m.page_key) if m.is_page else None
            # A page with no result failed: its original is kept, marked so a rerun tries it again; a page
            # done (colored or kept) carries the run's settings, for a rerun to compare.
            comment = FAILED_PAGE_COMMENT if m.is_page and result is None else (
                self._settings_comment() if m.is_page else m.info.comment if m.info is not None else b"")
            if result is not None and result.data is not None:
                yield OutputEntry(result.name, info=m.info, data=result.data, comment=comment)
                continue
            try:
                data = self._reader(m)()
            except PageError as e:
                if m.info is None:
                    self.errors.append(f"{e}, left out")
                    continue
                # The entry cannot be decompressed (bad CRC, unknown method): keep its stored bytes, marked
                # failed as above (every run reports it, so a rerun must not skip the archive).
                entry = self._raw_entry(m, FAILED_PAGE_COMMENT)
                if entry is not None:
                    self.errors.append(f"{self.label}:{m.name}: unreadable entry kept as stored ({e})")
                    yield entry
                continue
            if not m.is_page and m.info is not None:
                # Not a page: read whole, then copied as stored (name bytes, flags, comment, extra fields as they were).
                entry = self._raw_entry(m, quiet=True)
                if entry is not None:
                    yield entry
                    continue
            compress = m.info.compress_type != zipfile.ZIP_STORED if m.info is not None else not m.is_page
            yield OutputEntry(m.name, info=m.info, data=data, compress=compress, comment=comment)

    def _settings_comment(self) -> bytes:
        return (SETTINGS_MARK + self.settings).encode() if self.settings else b""

    def _raw_entry(self, m: _Member, comment: bytes = b"", quiet: bool = False) -> OutputEntry | None:
        """The entry's stored bytes to copy as they are, or None (error noted unless ``quiet``) when even those
        are broken."""
        try:
            raw_entry_info(m.info)
            raw = read_raw_entry(self.source, m.info)
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            if not quiet:
                self.errors.append(f"{self.label}:{m.name}: entry cannot be copied ({first_line(e)}), left out")
            return None
        return OutputEntry(m.name, info=m.info, raw=raw, comment=comment)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None
        if self._extracted is not None:
            shutil.rmtree(self._extracted, ignore_errors=True)
            self._extracted = None


def archive_kind(path: Path) -> str:
    """``"rar"``, ``"7z"``, ``"tar"`` or ``"zip"`` (everything else: zipfile says whether it is one) from the
    file's first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(TAR_MAGIC_AT + len(TAR_MAGIC))
    except OSError:
        return "zip"  # opening it again says why it cannot be read
    if head.startswith(RAR_MAGIC):
        return "rar"
    if head.startswith(SEVEN_ZIP_MAGIC):
        return "7z"
    if head[TAR_MAGIC_AT:] == TAR_MAGIC:
        return "tar"
    return "zip"


def _overlapping_entries(infos: list[zipfile.ZipInfo]) -> set[int]:
    """Indexes of entries whose local header or data starts inside another's (overlapping-entry bombs)."""
    spans = []
    for index, info in enumerate(infos):
        try:
            name_len = len(info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437"))
        except UnicodeEncodeError:
            name_len = len(info.orig_filename.encode("utf-8"))
        spans.append((info.header_offset, info.header_offset + 30 + name_len + info.compress_size, index))
    spans.sort()
    overlapping, end = set(), -1
    for start, stop, index in spans:
        if start < end:
            overlapping.add(index)
        end = max(end, stop)
    return overlapping


def _safe_entry_name(name: str) -> bool:
    if not name or "\x00" in name:
        return False
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        return False
    return ".." not in PurePosixPath(posix).parts
