"""Atomic output writing: every file goes to a temporary name beside its target and is renamed when complete.

A temporary name carries the writing process's id (``.<target>.<pid>.<random>.mangacolor-tmp``), so
a later run can prove a leftover one stale (its writer is dead: killed, power cut) and remove it.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import secrets
import struct
import threading
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

TEMP_SUFFIX = ".mangacolor-tmp"
# Most file systems cap one name at 255 bytes (ext4, APFS, NTFS in UTF-16 units: stricter for none of ours).
MAX_NAME_BYTES = 255
_TEMP_NAME = re.compile(r"^\..*\.(\d+)\.[0-9a-f]{8}" + re.escape(TEMP_SUFFIX) + r"$", re.DOTALL)
_cleaned_folders: set[Path] = set()
_cleaned_lock = threading.Lock()


def is_temp_name(name: str) -> bool:
    """True for a temporary file this module writes (skipped when scanning folders)."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def fit_name(name: str, limit: int = MAX_NAME_BYTES) -> str:
    """``name`` shortened (its stem, at a character boundary) so its UTF-8 form fits ``limit`` bytes."""
    if len(os.fsencode(name)) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or len(os.fsencode(ext)) > 16:
        stem, dot, ext = name, "", ""
    room = limit - len(os.fsencode(dot + ext))
    while stem and len(os.fsencode(stem)) > room:
        stem = stem[:-1]
    return stem + dot + ext


def _temp_name(target: Path) -> str:
    tail = f".{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
    return "." + fit_name(target.name, MAX_NAME_BYTES - 1 - len(tail)).rstrip(".") + tail


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but belongs to someone else (or cannot tell): not ours to judge
    return True


def clean_stale_temps(folder: Path) -> list[Path]:
    """Remove temp files in ``folder`` left by mangacolor runs whose process is gone; returns them.

    Only names of our own pattern with a dead writer pid are touched; a live writer's file, ours
    included, is never removed.
    """
    removed: list[Path] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _TEMP_NAME.match(name)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        path = folder / name
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink():
                path.unlink()
                removed.append(path)
    return removed


def _clean_once(folder: Path) -> None:
    key = folder.absolute()
    with _cleaned_lock:
        if key in _cleaned_folders:
            return
        _cleaned_folders.add(key)
    clean_stale_temps(folder)


@contextlib.contextmanager
def atomic_target(target: Path) -> Iterator[Path]:
    """Yield a temp path beside ``target``; on success it is renamed onto ``target``, on failure removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _clean_once(target.parent)
    tmp = target.parent / _temp_name(target)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_file_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temp file and a rename."""
    with atomic_target(target) as tmp:
        tmp.write_bytes(data)


@dataclass
class OutputEntry:
    """One entry of an output archive, in the order it is written.

    Exactly one of ``data`` (bytes to store) or ``raw`` (an entry's stored bytes, copied compressed and
    as they are, e.g. an encrypted page we cannot read) is set; ``info`` gives the original's time and
    attributes (and, for ``raw``, its method, CRC and sizes).
    """

    name: str
    info: zipfile.ZipInfo | None = None
    data: bytes | None = None
    compress: bool = False
    raw: bytes | None = None


def write_cbz_atomic(target: Path, entries: Iterable[OutputEntry] | Callable[[], Iterable[OutputEntry]],
                     comment: bytes = b"") -> None:
    """Write a ZIP/CBZ with ``entries`` in order, through a temp file renamed into place when complete.

    ``entries`` may be a generator (or a callable returning one): entries are written as they come,
    and whatever it raises leaves no file at ``target``.
    """
    with atomic_target(target) as tmp:
        with zipfile.ZipFile(tmp, "w") as out, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # duplicate names are kept on purpose, as in the input
            out.comment = comment[:65535]
            for entry in (entries() if callable(entries) else entries):
                if entry.raw is not None and entry.info is not None:
                    _write_raw_entry(out, entry.info, entry.raw)
                    continue
                zinfo = zipfile.ZipInfo(entry.name, date_time=entry.info.date_time if entry.info else (1980, 1, 1, 0, 0, 0))
                if entry.info is not None:
                    zinfo.external_attr = entry.info.external_attr
                    zinfo.create_system = entry.info.create_system
                zinfo.compress_type = zipfile.ZIP_DEFLATED if entry.compress else zipfile.ZIP_STORED
                out.writestr(zinfo, entry.data or b"")


def read_raw_entry(source: Path, info: zipfile.ZipInfo) -> bytes:
    """An entry's stored (compressed, maybe encrypted) bytes, read after checking its local header.

    Raises ``zipfile.BadZipFile`` or ``OSError`` when the header or data is not where the directory says.
    """
    with open(source, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if not 0 <= info.header_offset <= size - 30:
            raise zipfile.BadZipFile(f"local header offset {info.header_offset} outside the file")
        f.seek(info.header_offset)
        header = f.read(30)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile("bad local header")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        start = info.header_offset + 30 + name_len + extra_len
        if start + info.compress_size > size:
            raise zipfile.BadZipFile("entry data runs past the end of the file")
        f.seek(start)
        raw = f.read(info.compress_size)
    if len(raw) != info.compress_size:
        raise zipfile.BadZipFile("truncated entry data")
    return raw


def raw_entry_info(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    """A copy of ``info`` to write a raw entry with; raises ``zipfile.BadZipFile`` when its fields cannot be."""
    zinfo = copy.copy(info)
    zinfo.extra = b""  # zip64 and local extras are rebuilt by FileHeader
    try:
        zinfo.FileHeader()
    except (struct.error, ValueError, TypeError, OverflowError) as e:
        raise zipfile.BadZipFile(f"entry header cannot be rewritten ({e})") from None
    return zinfo


def _write_raw_entry(out: zipfile.ZipFile, info: zipfile.ZipInfo, raw: bytes) -> None:
    """Append one entry's stored bytes as they are (no decompression, no decryption)."""
    zinfo = raw_entry_info(info)
    out.fp.seek(out.start_dir)
    zinfo.header_offset = out.fp.tell()
    out.fp.write(zinfo.FileHeader())
    out.fp.write(raw)
    if zinfo.flag_bits & 0x08:
        # Sizes live in a trailing data descriptor; PKWARE encryption checks against it, so keep the flag.
        out.fp.write(struct.pack("<4sLLL", b"PK\x07\x08", zinfo.CRC, zinfo.compress_size, zinfo.file_size))
    out.start_dir = out.fp.tell()
    out.filelist.append(zinfo)
    out.NameToInfo[zinfo.filename] = zinfo
    out._didModify = True
