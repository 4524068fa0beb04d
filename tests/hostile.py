"""Helpers of the hostile-input tests (``tests/test_hostile_*.py``): every file is built in the test; each
run must give a correct result or one-line errors naming the file, write nothing outside its output,
change no input, still color the good pages, and say by its exit code whether anything failed
(:class:`Run` checks the rules every run keeps)."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from mangacolor_cli.commands import app
from mangacolor_cli.pages import archives
from models.toolbox import files as outputs
from tests.conftest import draw_page, encoded

PAGE = encoded(draw_page())


def tree(root: Path) -> dict[str, str]:
    """Every file (hidden ones included) under ``root``: relative path -> sha256."""
    out = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                digest = "special"  # a link or pipe: never read (a pipe would block)
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            out[path.relative_to(root).as_posix()] = digest
    return out


class Run:
    """A CLI run over ``inputs`` into ``out``, checked for the rules every hostile run must keep."""

    def __init__(self, tmp_path: Path, model: Path, inputs: list[Path], out: Path | None, *extra: str):
        before = tree(tmp_path)
        args = ["colorize", *map(str, inputs), "--model", str(model), "--size", "32", *extra]
        if out is not None:
            args += ["-o", str(out)]
        self.result = CliRunner().invoke(app, args)
        after = tree(tmp_path)
        self.output = self.result.output
        self.exit_code = self.result.exit_code
        self.errors = [line for line in self.output.splitlines() if line.startswith("error:")]
        assert self.result.exception is None or isinstance(self.result.exception, SystemExit), self.output
        assert "Traceback" not in self.output
        changed = {p for p in before if after.get(p) != before[p]}
        assert not changed, f"inputs changed or removed: {changed}"
        added = set(after) - set(before)
        if out is not None:
            prefix = out.relative_to(tmp_path).as_posix()
            escaped = {p for p in added if p != prefix and not p.startswith(prefix + "/")}
            assert not escaped, f"written outside the output: {escaped}"
        self.added = added
        assert not any(outputs.is_temp_name(Path(p).name) for p in added), "a temp file was left behind"


def entries(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def is_colored(data: bytes) -> bool:
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
    return bool(np.abs(rgb[..., 0] - rgb[..., 1]).max() > 0 or np.abs(rgb[..., 1] - rgb[..., 2]).max() > 0)


def make_cbz(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]], deflate: bool = False) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as z:
        for name, data in members:
            z.writestr(name, data)
    return path


def patch_entry(path: Path, name: bytes, *, flags: int = 0, file_size: int | None = None,
                local_offset_delta: int = 0, break_local_header: bool = False) -> None:
    """Edit one entry's headers in place (zipfile cannot write these lies itself)."""
    data = bytearray(path.read_bytes())
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        name_len = struct.unpack("<H", data[pos + 28:pos + 30])[0]
        if data[pos + 46:pos + 46 + name_len] == name:
            data[pos + 8] |= flags
            if file_size is not None:
                data[pos + 24:pos + 28] = struct.pack("<I", file_size)
            offset = struct.unpack("<I", data[pos + 42:pos + 46])[0]
            data[pos + 42:pos + 46] = struct.pack("<I", offset + local_offset_delta)
            local = offset
            data[local + 6] |= flags
            if file_size is not None:
                data[local + 22:local + 26] = struct.pack("<I", file_size)
            if break_local_header:
                data[local:local + 4] = b"JUNK"
        pos = data.find(b"PK\x01\x02", pos + 4)
    path.write_bytes(bytes(data))


def entries_raw(path: Path) -> list[tuple[str, bytes]]:
    """Each entry's stored (compressed) bytes, without decompressing (or checking) it."""
    with zipfile.ZipFile(path) as z:
        return [(i.filename, archives.read_raw_entry(path, i)) for i in z.infolist()]
