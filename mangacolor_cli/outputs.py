"""Atomic output writing: every file goes to a temporary name beside its target and is renamed when complete."""

from __future__ import annotations

import contextlib
import copy
import os
import struct
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

TEMP_SUFFIX = ".mangacolor-tmp"


def is_temp_name(name: str) -> bool:
    """True for a temporary file this module writes (skipped when scanning folders)."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


@contextlib.contextmanager
def atomic_target(target: Path) -> Iterator[Path]:
    """Yield a temp path beside ``target``; on success it is renamed onto ``target``, on failure removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_file_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temp file and a rename."""
    with atomic_target(target) as tmp:
        tmp.write_bytes(data)


@dataclass
class OutputEntry:
    """One entry of an output archive, in the order it is written.

    Exactly one of ``data`` (bytes to store) or ``raw_from`` (an entry to copy compressed, as stored,
    e.g. an encrypted page we cannot read) is set; ``info`` gives the original's time and attributes.
    """

    name: str
    info: zipfile.ZipInfo | None = None
    data: bytes | None = None
    compress: bool = False
    raw_from: tuple[Path, zipfile.ZipInfo] | None = None


def write_cbz_atomic(target: Path, entries: list[OutputEntry] | Callable[[], list[OutputEntry]],
                     comment: bytes = b"") -> None:
    """Write a ZIP/CBZ with ``entries`` in order, through a temp file renamed into place when complete."""
    with atomic_target(target) as tmp:
        with zipfile.ZipFile(tmp, "w") as out, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # duplicate names are kept on purpose, as in the input
            out.comment = comment
            for entry in (entries() if callable(entries) else entries):
                if entry.raw_from is not None:
                    _copy_raw_entry(out, *entry.raw_from)
                    continue
                zinfo = zipfile.ZipInfo(entry.name, date_time=entry.info.date_time if entry.info else (1980, 1, 1, 0, 0, 0))
                if entry.info is not None:
                    zinfo.external_attr = entry.info.external_attr
                    zinfo.create_system = entry.info.create_system
                zinfo.compress_type = zipfile.ZIP_DEFLATED if entry.compress else zipfile.ZIP_STORED
                out.writestr(zinfo, entry.data or b"")


def _copy_raw_entry(out: zipfile.ZipFile, source: Path, info: zipfile.ZipInfo) -> None:
    """Copy one entry's stored bytes as they are (no decompression, no decryption)."""
    with open(source, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"bad local header for {info.filename}")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        f.seek(info.header_offset + 30 + name_len + extra_len)
        raw = f.read(info.compress_size)
    if len(raw) != info.compress_size:
        raise zipfile.BadZipFile(f"truncated data for {info.filename}")
    zinfo = copy.copy(info)
    zinfo.extra = b""  # zip64 and local extras are rebuilt by FileHeader
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
