"""Output archives: a CBZ written entry by entry through the one atomic write (``models.toolbox.files``),
entries copied as stored when they cannot be read (encrypted, unknown method)."""

from __future__ import annotations

import copy
import os
import struct
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from models.toolbox.files import atomic_zip


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
    comment: bytes = b""


# The comment an output entry carries when its page failed and the original was kept: a rerun finds
# the archive unfinished and tries again (docs/RELIABILITY.md, "A rerun never hides a failure").
FAILED_PAGE_COMMENT = b"mangacolor: not colored (failed)"


class _KeptNameInfo(zipfile.ZipInfo):
    """A ZipInfo whose name is written as the given bytes, without the UTF-8 flag: an entry stored in a
    legacy encoding (Shift-JIS from a Japanese Windows, cp437) keeps its name byte for byte."""

    __slots__ = ("name_bytes",)

    def _encodeFilenameFlags(self):  # noqa: N802 (zipfile's name)
        return self.name_bytes, self.flag_bits & ~0x800


def _entry_info(name: str, info: zipfile.ZipInfo | None) -> zipfile.ZipInfo:
    """A fresh ZipInfo for ``name``; when ``info`` (the input's entry) had no UTF-8 flag, the name keeps
    its legacy bytes (zipfile decodes those as cp437, so encoding back gives the stored bytes)."""
    date_time = info.date_time if info is not None else (1980, 1, 1, 0, 0, 0)
    if info is not None and not info.flag_bits & 0x800:
        try:
            raw = (info.orig_filename if name == info.filename else name).encode("cp437")
        except UnicodeEncodeError:
            raw = None
        if raw is not None:
            zinfo = _KeptNameInfo(name, date_time=date_time)
            zinfo.name_bytes = raw
            return zinfo
    return zipfile.ZipInfo(name, date_time=date_time)


def write_cbz_atomic(target: Path, entries: Iterable[OutputEntry] | Callable[[], Iterable[OutputEntry]],
                     comment: bytes = b"") -> None:
    """Write a ZIP/CBZ with ``entries`` in order, through a temp file renamed into place when complete.

    ``entries`` may be a generator (or a callable returning one): entries are written as they come,
    and whatever it raises leaves no file at ``target``.
    """
    with atomic_zip(target) as out, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicate names are kept on purpose, as in the input
        out.comment = comment[:65535]
        for entry in (entries() if callable(entries) else entries):
            if entry.raw is not None and entry.info is not None:
                _write_raw_entry(out, entry.info, entry.raw, entry.comment)
                continue
            zinfo = _entry_info(entry.name, entry.info)
            zinfo.comment = entry.comment
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
    zinfo = _entry_info(info.filename, info)
    for slot in zipfile.ZipInfo.__slots__:  # everything else as the input's entry (method, CRC, sizes, flags)
        if slot not in ("filename", "orig_filename") and hasattr(info, slot):
            setattr(zinfo, slot, copy.copy(getattr(info, slot)))
    zinfo.extra = _without_zip64(info.extra)  # FileHeader writes the zip64 record itself, when needed
    try:
        zinfo.FileHeader()
    except (struct.error, ValueError, TypeError, OverflowError) as e:
        raise zipfile.BadZipFile(f"entry header cannot be rewritten ({e})") from None
    return zinfo


def _without_zip64(extra: bytes) -> bytes:
    """An entry's extra fields (timestamps, Unicode path, NTFS times...) less the zip64 record; b"" when they
    are not well-formed records."""
    kept, pos = [], 0
    while pos + 4 <= len(extra):
        field_id, size = struct.unpack("<HH", extra[pos:pos + 4])
        if pos + 4 + size > len(extra):
            return b""
        if field_id != 0x0001:
            kept.append(extra[pos:pos + 4 + size])
        pos += 4 + size
    return b"".join(kept) if pos == len(extra) else b""


def _write_raw_entry(out: zipfile.ZipFile, info: zipfile.ZipInfo, raw: bytes, comment: bytes = b"") -> None:
    """Append one entry's stored bytes as they are (no decompression, no decryption); ``comment``, when
    given, replaces the entry's own (``FAILED_PAGE_COMMENT`` on a page that could not be read)."""
    zinfo = raw_entry_info(info)
    if comment:
        zinfo.comment = comment
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
