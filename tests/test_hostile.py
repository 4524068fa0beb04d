"""Hostile inputs through `mangacolor colorize`: every file is built here; each run must give a correct
result or one-line errors naming the file, write nothing outside its output, change no input, still
color the good pages, and say by its exit code whether anything failed."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mangacolor_cli.commands import app
from mangacolor_cli.pages import archives, sources
from models import files as outputs
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


@pytest.fixture
def indir(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    return d


# ---------------------------------------------------------------------- archive entries
def test_unsafe_names_and_symlink_entries_are_left_out_and_nothing_escapes(tmp_path, indir, tiny_checkpoint):
    link = zipfile.ZipInfo("link.png")
    link.external_attr = 0o120777 << 16
    cbz = make_cbz(indir / "evil.cbz", [("../escape.png", PAGE), ("../../deep.png", PAGE), ("/abs.png", PAGE),
                                        ("C:/win.png", PAGE), ("..\\back.png", PAGE), (link, b"/etc/passwd"),
                                        ("1.png", PAGE), ("2.png", PAGE)])
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and len(run.errors) == 6
    assert all(f"{cbz}:" in line for line in run.errors)
    out = entries(tmp_path / "out.cbz")
    assert [n for n, _ in out] == ["1.png", "2.png"] and all(is_colored(d) for _, d in out)


def test_entry_over_the_ratio_limit_is_left_out_and_the_rest_colored(tmp_path, indir, tiny_checkpoint):
    cbz = make_cbz(indir / "bomb.cbz", [("1.png", PAGE), ("zeros.png", bytes(4 * 2**20)), ("2.png", PAGE)], deflate=True)
    assert cbz.stat().st_size < 64 * 1024
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and len(run.errors) == 1 and "zeros.png" in run.errors[0] and "ratio" in run.errors[0]
    assert [n for n, _ in entries(tmp_path / "out.cbz")] == ["1.png", "2.png"]


def test_entry_over_the_size_limit_is_left_out(tmp_path, indir, tiny_checkpoint, monkeypatch):
    monkeypatch.setattr(sources, "MAX_ENTRY_BYTES", 2**20)
    big = np.random.default_rng(0).integers(0, 256, 2**20 + 10, dtype=np.uint8).tobytes()
    cbz = make_cbz(indir / "big.cbz", [("1.png", PAGE), ("big.bin", big)])
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and "big.bin" in run.errors[0] and "entry limit" in run.errors[0]
    assert [n for n, _ in entries(tmp_path / "out.cbz")] == ["1.png"]


def test_archive_declaring_a_huge_total_is_refused_whole(tmp_path, indir, tiny_checkpoint):
    cbz = make_cbz(indir / "huge.cbz", [("1.png", PAGE), ("2.png", PAGE), ("3.png", PAGE)])
    for name in (b"1.png", b"2.png", b"3.png"):
        patch_entry(cbz, name, file_size=0xFFFFFFF0)  # 12 GiB declared in all
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and len(run.errors) == 1 and run.errors[0].startswith(f"error: {cbz}: ")
    assert "bomb" in run.errors[0] and not run.added


def test_many_small_zero_entries_trip_the_whole_archive_ratio(tmp_path, indir, tiny_checkpoint, monkeypatch):
    monkeypatch.setattr(sources, "ARCHIVE_RATIO_MIN_BYTES", 4 * 2**20)
    cbz = make_cbz(indir / "many.cbz", [("1.png", PAGE)] + [(f"z{i}.bin", bytes(2**19)) for i in range(16)],
                   deflate=True)
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and "ratio" in run.errors[0] and not run.added


def test_entry_lying_about_its_size_fails_alone_and_is_kept_as_stored(tmp_path, indir, tiny_checkpoint):
    cbz = make_cbz(indir / "liar.cbz", [("1.png", PAGE), ("liar.png", bytes(8 * 2**20)), ("2.png", PAGE)],
                   deflate=True)
    patch_entry(cbz, b"liar.png", file_size=1000)  # inflates to 8 MiB; says 1000 bytes
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and all("liar.png" in line for line in run.errors)
    out = dict(entries_raw(tmp_path / "out.cbz"))
    assert out["liar.png"] == dict(entries_raw(cbz))["liar.png"]
    with zipfile.ZipFile(tmp_path / "out.cbz") as z:
        assert is_colored(z.read("1.png")) and is_colored(z.read("2.png"))


def entries_raw(path: Path) -> list[tuple[str, bytes]]:
    """Each entry's stored (compressed) bytes, without decompressing (or checking) it."""
    with zipfile.ZipFile(path) as z:
        return [(i.filename, archives.read_raw_entry(path, i)) for i in z.infolist()]


def test_overlapping_entries_are_left_out(tmp_path, indir, tiny_checkpoint):
    cbz = make_cbz(indir / "overlap.cbz", [("1.png", PAGE), ("2.png", PAGE)])
    with zipfile.ZipFile(cbz) as z:
        first, second = z.infolist()
    # Point the second entry's directory record at the first entry's data: the overlapping-bomb trick.
    patch_entry(cbz, b"2.png", local_offset_delta=first.header_offset - second.header_offset)
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and any("overlaps" in line for line in run.errors)
    assert [n for n, _ in entries(tmp_path / "out.cbz")] == ["1.png"]


def test_encrypted_entry_with_a_broken_header_is_left_out_not_a_crash(tmp_path, indir, tiny_checkpoint):
    cbz = make_cbz(indir / "locked.cbz", [("1.png", PAGE), ("locked.png", PAGE), ("2.png", PAGE)])
    patch_entry(cbz, b"locked.png", flags=0x01, break_local_header=True)
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and all("locked.png" in line for line in run.errors)
    out = entries(tmp_path / "out.cbz")
    assert [n for n, _ in out] == ["1.png", "2.png"] and all(is_colored(d) for _, d in out)


def test_corrupt_deflate_in_a_non_page_entry_is_reported_not_a_crash(tmp_path, indir, tiny_checkpoint):
    cbz = make_cbz(indir / "bad.cbz", [("1.png", PAGE), ("ComicInfo.xml", b"<ComicInfo>" + b"x" * 400 + b"</ComicInfo>")],
                   deflate=True)
    data = bytearray(cbz.read_bytes())
    info = zipfile.ZipFile(cbz).getinfo("ComicInfo.xml")
    start = info.header_offset + 30 + len("ComicInfo.xml")
    data[start:start + 4] = b"\xff\xff\xff\xff"  # an invalid deflate block type: zlib.error on read
    cbz.write_bytes(bytes(data))
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and len(run.errors) == 1 and "ComicInfo.xml" in run.errors[0]
    out = dict(entries_raw(tmp_path / "out.cbz"))
    assert out["ComicInfo.xml"] == dict(entries_raw(cbz))["ComicInfo.xml"]  # kept as stored


def test_archive_inside_an_archive_is_copied_as_is(tmp_path, indir, tiny_checkpoint):
    inner = make_cbz(tmp_path / "inner.cbz", [("p.png", PAGE)]).read_bytes()
    (tmp_path / "inner.cbz").unlink()
    cbz = make_cbz(indir / "outer.cbz", [("1.png", PAGE), ("extra/inner.cbz", inner)])
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 0, run.output
    out = dict(entries(tmp_path / "out.cbz"))
    assert out["extra/inner.cbz"] == inner and is_colored(out["1.png"])


# ---------------------------------------------------------------------- pages
def bad_pages() -> dict[str, bytes]:
    jpeg = encoded(draw_page().convert("RGB"), "JPEG")
    png = encoded(draw_page())
    flipped = bytearray(png)
    idat = png.find(b"IDAT")
    flipped[idat + 10:idat + 30] = bytes(20)
    return {"trunc.jpg": jpeg[: len(jpeg) // 2], "trunc.png": png[: len(png) // 2], "flipped.png": bytes(flipped),
            "empty.png": b"", "text.jpg": b"these are my notes, not a page\n"}


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny PNG whose header declares a huge image (decompression-bomb image)."""
    png = bytearray(encoded(Image.new("L", (8, 8), 255)))
    ihdr = png.find(b"IHDR")
    png[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    png[ihdr + 17:ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(png[ihdr:ihdr + 17])))
    return bytes(png)


def test_bad_pages_in_an_archive_fail_alone_and_keep_their_originals(tmp_path, indir, tiny_checkpoint):
    bad = {**bad_pages(), "bomb.png": bomb_png()}
    cbz = make_cbz(indir / "mixed.cbz", [("1.png", PAGE), *bad.items(), ("2.png", PAGE)])
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and len(run.errors) == len(bad)
    for name in bad:
        assert sum(f"{cbz}:{name}: " in line for line in run.errors) == 1, name
    assert any("bomb" in line for line in run.errors if "bomb.png" in line)
    out = dict(entries(tmp_path / "out.cbz"))
    assert list(out) == ["1.png", *bad, "2.png"]
    assert all(out[name] == data for name, data in bad.items())
    assert is_colored(out["1.png"]) and is_colored(out["2.png"])


def test_bad_pages_in_a_folder_fail_alone_and_write_nothing(tmp_path, indir, tiny_checkpoint):
    bad = {**bad_pages(), "bomb.png": bomb_png()}
    for name, data in {**bad, "1.png": PAGE, "2.png": PAGE}.items():
        (indir / name).write_bytes(data)
    run = Run(tmp_path, tiny_checkpoint, [indir], tmp_path / "out")
    assert run.exit_code == 1 and len(run.errors) == len(bad)
    assert all(any(str(indir / name) in line for line in run.errors) for name in bad)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["1.png", "2.png"]


def test_cmyk_16bit_la_and_palette_pages_are_colored_at_their_size(tmp_path, indir, tiny_checkpoint):
    gray = draw_page()
    la = gray.convert("LA")
    la.putalpha(Image.new("L", gray.size, 200))
    palette = gray.convert("P")
    palette.info["transparency"] = 0
    pages = {"cmyk.jpg": encoded(gray.convert("CMYK"), "JPEG"),
             "deep.png": encoded(Image.fromarray(np.asarray(gray).astype(np.uint16) * 257)),
             "la.png": encoded(la), "palette.png": encoded(palette, transparency=0)}
    cbz = make_cbz(indir / "modes.cbz", list(pages.items()))
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz", "--json")
    assert run.exit_code == 0, run.output
    out = dict(entries(tmp_path / "out.cbz"))
    for name, data in out.items():
        img = Image.open(io.BytesIO(data))
        assert img.size == gray.size and is_colored(data), name
    assert Image.open(io.BytesIO(out["la.png"])).mode == "RGBA"


# ---------------------------------------------------------------------- names and odd files
def test_unicode_and_255_byte_names_are_colored_and_outputs_fit_the_name_limit(tmp_path, indir, tiny_checkpoint):
    long_name = "あ" * 82 + ".png"  # 250 bytes: page.color.png would be 256
    assert len(long_name.encode()) == 250
    (indir / long_name).write_bytes(PAGE)
    (indir / "ページ 1.png").write_bytes(PAGE)
    cbz = make_cbz(indir / "章.cbz", [("ページ/1.png", PAGE), (long_name, PAGE)])
    run = Run(tmp_path, tiny_checkpoint, [indir], tmp_path / "out")
    assert run.exit_code == 0, run.output
    assert is_colored((tmp_path / "out" / long_name).read_bytes())
    assert [n for n, _ in entries(tmp_path / "out" / "章.cbz")] == ["ページ/1.png", long_name]
    single = Run(tmp_path, tiny_checkpoint, [indir / long_name], None, "--format", "webp")
    assert single.exit_code == 0, single.output
    (written,) = [p for p in single.added if not p.startswith("out/")]
    assert len(Path(written).name.encode()) <= 255 and Path(written).name.endswith(".webp")


def test_a_folder_named_like_an_archive_is_read_as_a_folder(tmp_path, indir, tiny_checkpoint):
    (indir / "x.cbz").mkdir()
    (indir / "x.cbz" / "1.png").write_bytes(PAGE)
    run = Run(tmp_path, tiny_checkpoint, [indir / "x.cbz"], tmp_path / "out")
    assert run.exit_code == 0, run.output
    assert is_colored((tmp_path / "out" / "1.png").read_bytes())
    library = Run(tmp_path, tiny_checkpoint, [indir], tmp_path / "lib")
    assert library.exit_code == 0 and (tmp_path / "lib" / "x.cbz" / "1.png").is_file()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_named_like_a_page_is_skipped_not_read_forever(tmp_path, indir, tiny_checkpoint):
    os.mkfifo(indir / "pipe.png")
    (indir / "1.png").write_bytes(PAGE)
    run = Run(tmp_path, tiny_checkpoint, [indir], tmp_path / "out")
    assert run.exit_code == 0 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["1.png"]
    direct = Run(tmp_path, tiny_checkpoint, [indir / "pipe.png"], tmp_path / "o.png")
    assert direct.exit_code == 2 and "pipe.png" in direct.errors[0]


# ---------------------------------------------------------------------- output failures
def test_unwritable_output_folder_fails_with_exit_1_and_writes_nothing(tmp_path, indir, tiny_checkpoint, monkeypatch):
    (indir / "1.png").write_bytes(PAGE)
    cbz = make_cbz(indir / "ch.cbz", [("1.png", PAGE)])
    out = tmp_path / "out"
    out.mkdir()
    if os.geteuid() != 0:
        out.chmod(0o555)
    else:  # root writes through file modes: refuse creation under ``out`` the way a read-only folder would
        real_open = os.open

        def read_only_open(path, flags, *args, **kwargs):
            if str(path).startswith(str(out) + os.sep) and flags & os.O_CREAT:
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", read_only_open)
    try:
        run = Run(tmp_path, tiny_checkpoint, [indir], out, "--json")
    finally:
        out.chmod(0o755)
    assert run.exit_code == 1 and len(run.errors) == 2 and not run.added
    assert all("cannot write output" in line and "Permission denied" in line for line in run.errors)
    assert '"done": 0' in run.output and '"failed": 2' in run.output


def test_write_error_in_the_middle_of_an_archive_leaves_no_output_and_other_jobs_finish(
        tmp_path, indir, tiny_checkpoint, monkeypatch):
    first = make_cbz(indir / "a.cbz", [(f"{i}.png", PAGE) for i in range(4)])
    second = make_cbz(indir / "b.cbz", [("1.png", PAGE)])
    real_writestr, written = zipfile.ZipFile.writestr, []

    def disk_fills_on_the_third_entry(self, zinfo, data, *args, **kwargs):
        written.append(zinfo)
        if len(written) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_writestr(self, zinfo, data, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", disk_fills_on_the_third_entry)
    run = Run(tmp_path, tiny_checkpoint, [first, second], tmp_path / "out")
    assert run.exit_code == 1 and len(run.errors) == 1
    assert str(tmp_path / "out" / "a.cbz") in run.errors[0] and "No space left" in run.errors[0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b.cbz"]
    assert is_colored(dict(entries(tmp_path / "out" / "b.cbz"))["1.png"])
