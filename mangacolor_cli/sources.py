"""Input discovery and reading: image files, folders (recursive, natural order), CBZ/ZIP and CBR archives.

Each input becomes one or more ``Job``s: one output file each (an image, or an archive). A job lists
its pages (``PageRef``) in natural order for processing and writes its output in the input's own
order with ``finish``. Archives are read defensively: nothing is ever extracted to disk from a ZIP,
and entries with unsafe names, symlinks, encryption, duplicate names or bomb-like sizes are refused
one by one with a one-line reason.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

from .errors import InputError, OutputError, PageError, UsageError, one_line
from .imageio import EXTENSION_BY_FORMAT, format_of_name, is_image_name, natural_key, natural_path_key
from .outputs import (OutputEntry, clean_stale_temps, fit_name, is_temp_name, raw_entry_info, read_raw_entry,
                      write_cbz_atomic, write_file_atomic)

ARCHIVE_EXTENSIONS = frozenset({".cbz", ".zip", ".cbr", ".rar"})
RAR_EXTENSIONS = frozenset({".cbr", ".rar"})
# Archive limits (decompression-bomb guards): per entry, per archive, and compression ratio.
MAX_ENTRY_BYTES = 256 * 2**20
MAX_ARCHIVE_BYTES = 8 * 2**30
MAX_RATIO = 200
RATIO_MIN_BYTES = 2**20
# The whole archive's ratio too: many small entries of zeros (or overlapping entries) make a bomb as well.
ARCHIVE_RATIO_MIN_BYTES = 64 * 2**20
# An image file's own size limit (a folder page or a single input), like an archive entry's.
MAX_FILE_BYTES = MAX_ENTRY_BYTES


@dataclass
class PageRef:
    """One page to color: ``key`` identifies it inside its job, ``label`` names it in messages."""

    key: int
    name: str
    label: str
    read: Callable[[], bytes]


@dataclass
class PageResult:
    """What became of a page: encoded output bytes, or ``None`` to keep the original (color page, failure)."""

    data: bytes | None
    name: str


class Job:
    """One output: ``target`` written from ``source``; ``pages()`` to process, ``finish(results)`` to write."""

    source: Path
    target: Path
    errors: list[str]

    def pages(self) -> list[PageRef]:
        raise NotImplementedError

    def page_count(self) -> int:
        return len(self.pages())

    def finish(self, results: dict[int, PageResult]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def output_name(name: str, fmt: str | None) -> str:
    """A page's output name: its own, or with the extension of ``fmt`` when a format is forced."""
    if not fmt:
        return name
    stem, dot, ext = name.rpartition(".")
    new_ext = EXTENSION_BY_FORMAT[fmt]
    if dot and format_of_name(name) == ("jpeg" if fmt in ("jpg", "jpeg") else fmt):
        return name
    return (stem if dot else name) + new_ext


class ImageJob(Job):
    """A single image file -> a single image file."""

    def __init__(self, source: Path, target: Path, label: str | None = None):
        self.source, self.target, self.errors = source, target, []
        self.label = label or str(source)

    def pages(self) -> list[PageRef]:
        return [PageRef(0, self.source.name, self.label, self._read)]

    def page_count(self) -> int:
        return 1

    def _read(self) -> bytes:
        try:
            with open(self.source, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    raise PageError(f"{self.label}: not a regular file")
                data = f.read(MAX_FILE_BYTES + 1)
        except OSError as e:
            raise PageError(f"{self.label}: cannot read ({one_line(e)})") from None
        if len(data) > MAX_FILE_BYTES:
            raise PageError(f"{self.label}: over the {MAX_FILE_BYTES >> 20} MiB page file limit")
        return data

    def finish(self, results: dict[int, PageResult]) -> None:
        result = results.get(0)
        if result is None:
            return  # the page failed: no output, the error is reported, a rerun tries again
        write_file_atomic(self.target, result.data if result.data is not None else self._read())


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

    def __init__(self, source: Path, target: Path, fmt: str | None = None, label: str | None = None):
        self.source, self.target, self.fmt, self.errors = source, target, fmt, []
        self.label = label or str(source)
        self._members: list[_Member] | None = None
        self._zip: zipfile.ZipFile | None = None
        self._lock = threading.Lock()
        self._extracted: Path | None = None
        self._comment = b""

    # ------------------------------------------------------------------ reading
    def _open(self) -> list[_Member]:
        if self._members is None:
            if self.source.suffix.lower() in RAR_EXTENSIONS:
                self._members = self._open_rar()
            else:
                self._members = self._open_zip()
        return self._members

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
            raise InputError(f"{self.label}: not a readable ZIP/CBZ archive ({one_line(e)})") from None
        self._comment = self._zip.comment
        total = sum(i.file_size for i in infos)
        if total > MAX_ARCHIVE_BYTES:
            self.close()
            raise InputError(f"{self.label}: {total} bytes uncompressed is over the {MAX_ARCHIVE_BYTES >> 30} GiB "
                             "archive limit (decompression bomb guard)")
        if total > ARCHIVE_RATIO_MIN_BYTES and total > MAX_RATIO * max(archive_bytes, 1):
            self.close()
            raise InputError(f"{self.label}: {total} bytes uncompressed from {archive_bytes} is over the "
                             f"{MAX_RATIO}:1 compression ratio limit (decompression bomb guard)")
        overlapping = _overlapping_entries(infos)
        members, seen = [], set()
        for index, info in enumerate(infos):
            m = _Member(index, info.filename, info)
            mode = (info.external_attr >> 16) & 0o170000
            if not _safe_entry_name(info.filename):
                m.refused = "unsafe entry name (absolute or '..'), left out"
            elif mode == 0o120000:
                m.refused = "symbolic link entry, left out"
            elif info.file_size > MAX_ENTRY_BYTES:
                m.refused = f"{info.file_size} bytes uncompressed is over the {MAX_ENTRY_BYTES >> 20} MiB entry limit, left out"
            elif info.file_size > RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                m.refused = f"compression ratio over {MAX_RATIO}:1 (decompression bomb guard), left out"
            elif index in overlapping:
                m.refused = "data overlaps another entry's (zip bomb pattern), left out"
            elif info.flag_bits & 0x1:
                m.raw_copy = "encrypted entry, kept as it is"
            elif info.filename in seen:
                m.raw_copy = "duplicate entry name, kept as the original"
            elif not info.is_dir() and is_image_name(info.filename):
                m.is_page = True
            seen.add(info.filename)
            members.append(m)
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
                m.is_page = is_image_name(name)
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
                raise PageError(f"{self.label}:{m.name}: cannot read entry ({one_line(e)})") from None
        return read

    def pages(self) -> list[PageRef]:
        members = self._open()
        pages = [m for m in members if m.is_page]
        pages.sort(key=lambda m: natural_path_key(m.name))
        refs = []
        for key, m in enumerate(pages):
            m.page_key = key
            refs.append(PageRef(key, m.name, f"{self.label}:{m.name}", self._reader(m)))
        return refs

    def page_count(self) -> int:
        if self.source.suffix.lower() in RAR_EXTENSIONS:
            return 0  # counting a RAR means extracting it; the progress total grows when it is opened
        return sum(1 for m in self._open() if m.is_page)

    def refusals(self) -> list[str]:
        """One line per entry refused or kept raw, naming ``archive:entry`` and the reason."""
        return [f"{self.label}:{m.name}: {m.refused or m.raw_copy}" for m in self._open() if m.refused or m.raw_copy]

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
            if m.info is not None and m.info.is_dir():
                yield OutputEntry(m.name, info=m.info, data=b"")
                continue
            result = results.get(m.page_key) if m.is_page else None
            if result is not None and result.data is not None:
                yield OutputEntry(result.name, info=m.info, data=result.data)
                continue
            try:
                data = self._reader(m)()
            except PageError as e:
                if m.info is None:
                    self.errors.append(f"{e}, left out")
                    continue
                # The entry cannot be decompressed (bad CRC, unknown method): keep its stored bytes.
                entry = self._raw_entry(m)
                if entry is not None:
                    self.errors.append(f"{self.label}:{m.name}: unreadable entry kept as stored ({e})")
                    yield entry
                continue
            compress = m.info.compress_type != zipfile.ZIP_STORED if m.info is not None else not m.is_page
            yield OutputEntry(m.name, info=m.info, data=data, compress=compress)

    def _raw_entry(self, m: _Member) -> OutputEntry | None:
        """The entry's stored bytes to copy as they are, or None (error noted) when even those are broken."""
        try:
            raw_entry_info(m.info)
            raw = read_raw_entry(self.source, m.info)
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            self.errors.append(f"{self.label}:{m.name}: entry cannot be copied ({one_line(e)}), left out")
            return None
        return OutputEntry(m.name, info=m.info, raw=raw)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None
        if self._extracted is not None:
            shutil.rmtree(self._extracted, ignore_errors=True)
            self._extracted = None


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


# ---------------------------------------------------------------------- planning
def is_archive_name(name: str) -> bool:
    return Path(name).suffix.lower() in ARCHIVE_EXTENSIONS


def default_output(source: Path, fmt: str | None = None) -> Path:
    """Where an input's output goes when ``-o`` is not given: beside it, marked as colored."""
    if source.is_dir():
        return source.with_name(source.name + "_color")
    suffix = source.suffix.lower()
    if suffix in ARCHIVE_EXTENSIONS:
        return source.with_name(source.stem + ".color" + (".cbz" if suffix in RAR_EXTENSIONS | {".cbz"} else suffix))
    return source.with_name(output_name(source.stem + ".color" + source.suffix, fmt))


def _archive_target_name(name: str) -> str:
    path = Path(name)
    return path.stem + ".cbz" if path.suffix.lower() in RAR_EXTENSIONS else name


def plan_jobs(inputs: list[str | os.PathLike], output: str | os.PathLike | None = None,
              fmt: str | None = None) -> list[Job]:
    """Turn input paths into jobs with their targets; raises ``InputError``/``OutputError``/``UsageError``."""
    if not inputs:
        raise UsageError("no input given: pass image files, folders or CBZ/ZIP/CBR archives")
    sources = [Path(p).expanduser() for p in inputs]
    for src in sources:
        if not src.exists():
            raise InputError(f"{src}: no such file or folder")
        if not (src.is_file() or src.is_dir()):
            raise InputError(f"{src}: not a regular file or folder")
        if src.is_file() and not (is_image_name(src.name) or is_archive_name(src.name)):
            raise InputError(f"{src}: not a supported page image or archive "
                             "(PNG, JPEG, WebP, BMP, TIFF, CBZ, ZIP, CBR)")
    out = Path(output).expanduser() if output is not None else None
    # One folder mirrors into ``out`` itself, existing or not, so a rerun finds (and skips) what the first wrote.
    single_folder = len(sources) == 1 and sources[0].is_dir()
    into_folder = out is not None and (len(sources) > 1 or (out.is_dir() and not single_folder)
                                       or str(output).endswith(("/", os.sep)))
    jobs: list[Job] = []
    for src in sources:
        if out is None:
            target = default_output(src, fmt)
        elif into_folder:
            name = src.name if src.is_dir() else (_archive_target_name(src.name) if is_archive_name(src.name)
                                                   else output_name(src.name, fmt))
            target = out / name
        else:
            target = out
        if out is None or into_folder:
            target = target.with_name(fit_name(target.name))
        if src.is_dir():
            jobs.extend(_folder_jobs(src, target, fmt))
        elif is_archive_name(src.name):
            jobs.append(ArchiveJob(src, target, fmt))
        else:
            jobs.append(ImageJob(src, target))
    _refuse_overwriting_inputs(jobs, sources)
    # Temp files of killed runs (their pid dead) would otherwise pile up beside finished outputs.
    for folder in {job.target.parent for job in jobs}:
        clean_stale_temps(folder)
    return jobs


def _folder_jobs(folder: Path, target_root: Path, fmt: str | None) -> list[Job]:
    root = folder.resolve()
    skip_dir = target_root.resolve()
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        # Never read our own output back in when it lives inside the input folder.
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and (here / d).resolve() != skip_dir]
        for fname in filenames:
            if fname.startswith(".") or is_temp_name(fname):
                continue
            if (is_image_name(fname) or is_archive_name(fname)) and _is_regular_file(here / fname):
                found.append((here / fname).relative_to(root).as_posix())
    found.sort(key=natural_path_key)
    jobs: list[Job] = []
    for rel in found:
        src = folder / rel
        target = target_root / (_archive_target_name(rel) if is_archive_name(rel) else output_name(rel, fmt))
        target = target.with_name(fit_name(target.name))
        if is_archive_name(rel):
            jobs.append(ArchiveJob(src, target, fmt, label=str(src)))
        else:
            jobs.append(ImageJob(src, target, label=str(src)))
    return jobs


def _is_regular_file(path: Path) -> bool:
    # A FIFO or device named page.png would hang the run or never end; links to regular files are fine.
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def _refuse_overwriting_inputs(jobs: list[Job], sources: list[Path]) -> None:
    inputs = {j.source.resolve() for j in jobs} | {s.resolve() for s in sources if s.is_file()}
    for job in jobs:
        if job.target.resolve() in inputs:
            raise OutputError(f"{job.target}: output would overwrite an input; choose another -o")
    targets = [j.target.resolve() for j in jobs]
    if len(set(targets)) != len(targets):
        dup = next(t for t in targets if targets.count(t) > 1)
        raise OutputError(f"{dup}: two inputs would write the same output; choose another -o")


__all__ = ["ArchiveJob", "ImageJob", "Job", "PageRef", "PageResult", "default_output", "natural_key", "plan_jobs"]
