"""The one atomic file write: a temporary file beside the target, renamed into place when complete.

Every file mangacolor writes (checkpoints, colored pages and archives, ONNX exports, reports, plots,
``metrics.jsonl`` rewrites) goes through ``atomic_path``, so a reader never sees half a file and a
failure leaves none. A temporary name carries the writing process's id
(``.<target>.<pid>.<random>.mangacolor-tmp``), so a later run can prove a leftover one stale (its
writer is dead: killed, power cut) and remove it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import threading
import zipfile
from pathlib import Path
from typing import Iterator

TEMP_SUFFIX = ".mangacolor-tmp"
# Most file systems cap one name at 255 bytes (ext4, APFS, NTFS in UTF-16 units: stricter for none of ours).
MAX_NAME_BYTES = 255
# A temp name may end in its target's own suffix too (``keep_suffix``), for readers that go by it.
_TEMP_NAME = re.compile(r"^\..*\.(\d+)\.[0-9a-f]{8}" + re.escape(TEMP_SUFFIX) + r"(\.[A-Za-z0-9]{1,8})?$", re.DOTALL)
_TEMP_TAIL = re.compile(re.escape(TEMP_SUFFIX) + r"(\.[A-Za-z0-9]{1,8})?$")
_cleaned_folders: set[Path] = set()
_cleaned_lock = threading.Lock()


def is_temp_name(name: str) -> bool:
    """True for a temporary file this module writes (skipped when scanning folders)."""
    return name.startswith(".") and _TEMP_TAIL.search(name) is not None


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


def _temp_name(target: Path, keep_suffix: bool = False) -> str:
    tail = f".{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}{target.suffix if keep_suffix else ''}"
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
def atomic_path(target: str | os.PathLike, *, durable: bool = False, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temp path beside ``target`` to write; when the block completes it is renamed onto
    ``target``, when it raises it is removed. ``durable``: fsync the file before the rename.
    ``keep_suffix``: the temp name ends in the target's suffix (``.onnx``), for code that reads it back
    inside the block and goes by the suffix.

    The temp file is created empty with the user's usual mode (0666 less the umask).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _clean_once(target.parent)
    tmp = target.parent / _temp_name(target, keep_suffix)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    os.close(fd)
    try:
        yield tmp
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_zip(target: str | os.PathLike, compression: int = zipfile.ZIP_STORED) -> Iterator[zipfile.ZipFile]:
    """A ``zipfile.ZipFile`` open for writing a new archive at ``target`` (through ``atomic_path``): complete
    and renamed into place when the block completes, removed when it raises. The half-written archive is
    abandoned, not closed: ``ZipFile.close`` raises "open writing handle" over an interrupt that lands while
    an entry is being opened, and that would hide the KeyboardInterrupt (a Ctrl-C must exit 130)."""
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        out = zipfile.ZipFile(fh, "w", compression)
        try:
            yield out
        except BaseException:
            out.fp = None  # nothing left for close() (or the finalizer) to write
            raise
        out.close()


def write_bytes_atomic(target: str | os.PathLike, data: bytes, *, durable: bool = False) -> Path:
    """Write ``data`` to ``target`` through a temp file and a rename; returns the path."""
    with atomic_path(target, durable=durable) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text_atomic(target: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` through a temp file and a rename; returns the path. A file name that
    is not UTF-8 (its bytes as surrogate escapes) is written as ``\\udcff``, a JSON escape, never a crash."""
    return write_bytes_atomic(target, text.encode("utf-8", "backslashreplace"))
