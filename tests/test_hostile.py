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
from mangacolor_cli.pages import archive_reader, archives
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


def test_entry_over_the_ratio_limit_is_kept_as_stored_and_the_rest_colored(tmp_path, indir, tiny_checkpoint):
    cbz = make_cbz(indir / "bomb.cbz", [("1.png", PAGE), ("zeros.png", bytes(4 * 2**20)), ("2.png", PAGE)], deflate=True)
    assert cbz.stat().st_size < 64 * 1024
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and len(run.errors) == 1 and "zeros.png" in run.errors[0] and "ratio" in run.errors[0]
    assert [n for n, _ in entries_raw(tmp_path / "out.cbz")] == ["1.png", "zeros.png", "2.png"]
    assert dict(entries_raw(tmp_path / "out.cbz"))["zeros.png"] == dict(entries_raw(cbz))["zeros.png"]


def test_entry_over_the_size_limit_is_kept_as_stored_not_decompressed(tmp_path, indir, tiny_checkpoint, monkeypatch):
    monkeypatch.setattr(archive_reader, "MAX_ENTRY_BYTES", 2**20)
    big = np.random.default_rng(0).integers(0, 256, 2**20 + 10, dtype=np.uint8).tobytes()
    cbz = make_cbz(indir / "big.cbz", [("1.png", PAGE), ("big.bin", big)])
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and "big.bin" in run.errors[0] and "entry limit" in run.errors[0]
    assert entries(tmp_path / "out.cbz") == [("1.png", entries(tmp_path / "out.cbz")[0][1]), ("big.bin", big)]


def test_archive_declaring_a_huge_total_is_refused_whole(tmp_path, indir, tiny_checkpoint, monkeypatch):
    monkeypatch.setattr(archive_reader, "MAX_ARCHIVE_BYTES", 2 * 2**20)
    cbz = make_cbz(indir / "huge.cbz", [("1.png", PAGE), ("2.png", PAGE), ("3.png", PAGE)])
    for name in (b"1.png", b"2.png", b"3.png"):
        patch_entry(cbz, name, file_size=2**20)  # 3 MiB declared in all, each under the entry limits
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and len(run.errors) == 1 and run.errors[0].startswith(f"error: {cbz}: ")
    assert "bomb" in run.errors[0] and not run.added


def test_entries_declaring_huge_sizes_are_kept_as_stored_one_by_one(tmp_path, indir, tiny_checkpoint):
    cbz = make_cbz(indir / "huge.cbz", [("1.png", PAGE), ("2.png", PAGE), ("3.png", PAGE), ("4.png", PAGE)])
    for name in (b"1.png", b"2.png", b"3.png"):
        patch_entry(cbz, name, file_size=0xFFFFFFF0)  # 12 GiB declared in all
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and len(run.errors) == 3 and all("entry limit" in line for line in run.errors)
    out, stored = dict(entries_raw(tmp_path / "out.cbz")), dict(entries_raw(cbz))
    assert list(out) == ["1.png", "2.png", "3.png", "4.png"]
    assert all(out[name] == stored[name] for name in ("1.png", "2.png", "3.png"))
    with zipfile.ZipFile(tmp_path / "out.cbz") as z:
        assert is_colored(z.read("4.png"))


def test_many_small_zero_entries_trip_the_whole_archive_ratio(tmp_path, indir, tiny_checkpoint, monkeypatch):
    monkeypatch.setattr(archive_reader, "ARCHIVE_RATIO_MIN_BYTES", 4 * 2**20)
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
    # Colored pages written; each failed page kept as the original, as in an archive run (issue 15).
    written = {p.name for p in (tmp_path / "out").iterdir() if not p.name.endswith(".mangacolor-failed")}
    assert {"1.png", "2.png"} <= written <= {"1.png", "2.png", *bad}
    for name in written - {"1.png", "2.png"}:
        assert (tmp_path / "out" / name).read_bytes() == bad[name]


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
    assert '"colored": 0' in run.output and '"failed": 2' in run.output


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


# ---------------------------------------------------------------------- issue 13: pages lost or hidden
def line_art_with_block(share: float, color=(220, 30, 30)) -> Image.Image:
    """A black-and-white line-art page with one flat color block over ``share`` of it."""
    rgb = np.asarray(draw_page(120, 160).convert("RGB")).copy()
    rgb[10:10 + int(160 * share), :] = color
    return Image.fromarray(rgb)


def test_names_with_brackets_are_printed_verbatim_never_read_as_markup(tmp_path, indir, tiny_checkpoint):
    cbz = make_cbz(indir / "[Group] Title - c01 [v2] [digital].cbz",
                   [("001.png", PAGE), ("002.png", b"junk"), ("[/]002.png", b"junk"), ("[/]003.png", PAGE)])
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz", "--verbose")
    assert run.exit_code == 1 and len(run.errors) == 2, run.output
    assert f"{cbz}:002.png: " in run.errors[0] and f"{cbz}:[/]002.png: " in run.errors[1]
    out = dict(entries(tmp_path / "out.cbz"))
    assert is_colored(out["001.png"]) and is_colored(out["[/]003.png"])
    # eval's table title and progress bar name the folders: "[/]" there crashed rich.
    for side in ("pred", "target"):
        (tmp_path / "[" / f"]{side}").mkdir(parents=True)
        color_page_png = encoded(line_art_with_block(0.5))
        (tmp_path / "[" / f"]{side}" / "1.png").write_bytes(color_page_png)
    result = CliRunner().invoke(app, ["eval", "--pred", str(tmp_path / "[" / "]pred"),
                                      "--target", str(tmp_path / "[" / "]target")])
    # the table's title wraps long paths (pytest-xdist's are longer): read it without the line breaks
    assert result.exit_code == 0 and "[/]pred" in "".join(result.output.split()), result.output
    assert "Traceback" not in result.output, result.output


@pytest.mark.parametrize("share", [0.03, 0.08, 0.2])
def test_a_page_partly_in_color_is_kept_not_recolored_gray(tmp_path, indir, tiny_checkpoint, share):
    from mangacolor_cli.engine.colorizer import looks_colored
    page = line_art_with_block(share)
    assert looks_colored(np.asarray(page))
    data = encoded(page)
    cbz = make_cbz(indir / "ch.cbz", [("1.png", data), ("2.png", PAGE)])
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz", "--json")
    assert run.exit_code == 0 and '"already_in_color": 1' in run.output, run.output
    assert dict(entries(tmp_path / "out.cbz"))["1.png"] == data


def test_a_gray_scan_with_chroma_noise_is_still_colored():
    from mangacolor_cli.engine.colorizer import looks_colored
    gray = np.asarray(draw_page(120, 160).convert("RGB")).astype(int)
    noisy = np.clip(gray + np.random.default_rng(0).integers(-6, 7, gray.shape), 0, 255).astype(np.uint8)
    assert not looks_colored(noisy)


def animated(fmt: str, frames: int = 3) -> bytes:
    imgs = [draw_page(seed=i).convert("RGB") for i in range(frames)]
    buf = io.BytesIO()
    imgs[0].save(buf, fmt, save_all=True, append_images=imgs[1:])
    return buf.getvalue()


def test_multi_frame_pages_are_reported_and_kept_whole(tmp_path, indir, tiny_checkpoint):
    pages = {"anim.png": animated("PNG"), "anim.webp": animated("WEBP"), "pages.tif": animated("TIFF"),
             "anim.gif": animated("GIF")}
    cbz = make_cbz(indir / "frames.cbz", [("1.png", PAGE), *pages.items()])
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and len(run.errors) == len(pages), run.output
    assert all("3 frames" in line for line in run.errors)
    out = dict(entries(tmp_path / "out.cbz"))
    assert all(out[name] == data for name, data in pages.items()) and is_colored(out["1.png"])


def test_gif_jfif_and_avif_pages_are_colored_not_copied_silently(tmp_path, indir, tiny_checkpoint):
    gray = draw_page()
    pages = {"a.gif": encoded(gray, "GIF"), "b.jfif": encoded(gray.convert("RGB"), "JPEG")}
    if ".avif" in Image.registered_extensions():
        pages["c.avif"] = encoded(gray.convert("RGB"), "AVIF")
    cbz = make_cbz(indir / "odd.cbz", list(pages.items()))
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz", "--json")
    assert run.exit_code == 0 and f'"colored": {len(pages)}' in run.output, run.output
    out = dict(entries(tmp_path / "out.cbz"))
    for name in pages:
        img = Image.open(io.BytesIO(out[name]))
        assert img.format.lower() in name.replace("jfif", "jpeg") and is_colored(out[name]), name
    only_gif = make_cbz(indir / "gif.cbz", [("a.gif", pages["a.gif"])])
    run = Run(tmp_path, tiny_checkpoint, [only_gif], tmp_path / "gif_out.cbz")
    assert run.exit_code == 0 and run.output.startswith("1 colored"), run.output


def test_image_entries_that_cannot_be_colored_are_reported_and_kept(tmp_path, indir, tiny_checkpoint):
    cbz = make_cbz(indir / "heic.cbz", [("1.png", PAGE), ("2.heic", b"\x00\x00\x00\x18ftypheic")])
    (indir / "scan.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and len(run.errors) == 1 and "2.heic" in run.errors[0], run.output
    assert dict(entries(tmp_path / "out.cbz"))["2.heic"] == b"\x00\x00\x00\x18ftypheic"
    folder = Run(tmp_path, tiny_checkpoint, [indir], tmp_path / "lib")
    assert folder.exit_code == 1 and any("scan.heic" in line for line in folder.errors), folder.output


def test_format_that_would_give_two_entries_one_name_is_refused_before_work(tmp_path, indir, tiny_checkpoint):
    cbz = make_cbz(indir / "ch.cbz", [("001.png", PAGE), ("001.jpg", encoded(draw_page().convert("RGB"), "JPEG"))])
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz", "--format", "jpg")
    assert run.exit_code == 2 and len(run.errors) == 1 and "001.jpg" in run.errors[0] and not run.added
    ok = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert ok.exit_code == 0 and [n for n, _ in entries(tmp_path / "out.cbz")] == ["001.png", "001.jpg"]


def test_rerun_after_a_failed_page_tries_it_again_and_still_reports_it(tmp_path, indir, tiny_checkpoint):
    cbz = make_cbz(indir / "ch.cbz", [("1.png", PAGE), ("2.png", b"not a page")])
    first = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert first.exit_code == 1 and len(first.errors) == 1
    again = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert again.exit_code == 1 and again.errors == first.errors and "0 skipped" in again.output, again.output
    good = make_cbz(indir / "good.cbz", [("1.png", PAGE)])
    Run(tmp_path, tiny_checkpoint, [good], tmp_path / "good_out.cbz")
    done = Run(tmp_path, tiny_checkpoint, [good], tmp_path / "good_out.cbz")
    assert done.exit_code == 0 and "1 skipped" in done.output


def test_one_bomb_entry_keeps_the_chapter_and_is_stored_as_it_is(tmp_path, indir, tiny_checkpoint, monkeypatch):
    monkeypatch.setattr(archive_reader, "ARCHIVE_RATIO_MIN_BYTES", 2 * 2**20)  # the bomb alone trips the archive's ratio
    cbz = make_cbz(indir / "ch.cbz", [("1.png", PAGE), ("bomb.png", bytes(8 * 2**20)), ("2.png", PAGE)],
                   deflate=True)
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and len(run.errors) == 1 and "bomb.png" in run.errors[0], run.output
    out, stored = dict(entries_raw(tmp_path / "out.cbz")), dict(entries_raw(cbz))
    assert list(out) == ["1.png", "bomb.png", "2.png"] and out["bomb.png"] == stored["bomb.png"]
    with zipfile.ZipFile(tmp_path / "out.cbz") as z:
        assert is_colored(z.read("1.png")) and is_colored(z.read("2.png"))


def test_output_with_a_trailing_slash_is_a_folder(tmp_path, indir, tiny_checkpoint):
    (indir / "1.png").write_bytes(PAGE)
    run = Run(tmp_path, tiny_checkpoint, [indir / "1.png"], None, "-o", str(tmp_path / "dir") + "/")
    assert run.exit_code == 0 and (tmp_path / "dir" / "1.png").is_file(), run.output


def test_an_unrelated_existing_output_file_is_neither_done_nor_replaced(tmp_path, indir, tiny_checkpoint):
    cbz = make_cbz(indir / "ch.cbz", [("1.png", PAGE)])
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    run = Run(tmp_path, tiny_checkpoint, [cbz], notes)
    assert run.exit_code == 2 and ".cbz" in run.errors[0] and notes.read_text() == "mine"
    fake = tmp_path / "fake.cbz"
    fake.write_text("not an archive")
    run = Run(tmp_path, tiny_checkpoint, [cbz], fake)
    assert run.exit_code == 1 and "--overwrite" in run.errors[0] and fake.read_text() == "not an archive"
    assert "skipped" in run.output and "0 skipped" in run.output


def test_output_extension_that_disagrees_with_what_is_written_is_refused(tmp_path, indir, tiny_checkpoint):
    (indir / "1.png").write_bytes(PAGE)
    cbz = make_cbz(indir / "ch.cbz", [("1.png", PAGE)])
    for src, out, extra in ((indir / "1.png", "out.txt", ()), (indir / "1.png", "out.jpg", ("--format", "png")),
                            (cbz, "ch.png", ())):
        run = Run(tmp_path, tiny_checkpoint, [src], tmp_path / out, *extra)
        assert run.exit_code == 2 and len(run.errors) == 1 and not run.added, run.output
    # An image extension the page can be written in is honored: it picks the format (issue 24).
    for out, extra in (("out.jpg", ("--format", "jpg")), ("plain.jpg", ())):
        honored = Run(tmp_path, tiny_checkpoint, [indir / "1.png"], tmp_path / out, *extra)
        assert honored.exit_code == 0 and Image.open(tmp_path / out).format == "JPEG"


def test_paths_over_the_system_limit_are_reported_not_skipped(tmp_path, indir, tiny_checkpoint, monkeypatch):
    (indir / "1.png").write_bytes(PAGE)
    monkeypatch.chdir(indir)
    for _ in range(18):  # 18 x 251 bytes: past PATH_MAX (4096) from the input folder
        os.mkdir("d" * 250)
        os.chdir("d" * 250)
    Path("deep.png").write_bytes(PAGE)
    monkeypatch.chdir(tmp_path)
    run = Run(tmp_path, tiny_checkpoint, [indir], tmp_path / "out")
    assert run.exit_code == 1 and len(run.errors) == 1 and "too long" in run.errors[0], run.output
    assert (tmp_path / "out" / "1.png").is_file()


def test_a_transparent_page_written_as_jpeg_is_on_white_paper(tmp_path, indir, tiny_checkpoint):
    la = Image.new("LA", (48, 64), (0, 0))  # black under alpha 0: invisible ink
    la.paste((0, 255), (4, 4, 20, 20))
    (indir / "t.png").write_bytes(encoded(la))
    run = Run(tmp_path, tiny_checkpoint, [indir / "t.png"], tmp_path / "t.jpg", "--format", "jpg")
    assert run.exit_code == 0, run.output
    rgb = np.asarray(Image.open(tmp_path / "t.jpg").convert("RGB")).astype(int)
    assert rgb[30:, 24:].min() > 230 and rgb[6:18, 6:18].mean() < 80


class _LegacyName(zipfile.ZipInfo):
    """Writes its name as given bytes without the UTF-8 flag (a Japanese Windows archiver's way)."""

    __slots__ = ("raw",)

    def _encodeFilenameFlags(self):  # noqa: N802
        return self.raw, self.flag_bits & ~0x800


def test_shift_jis_entry_names_are_kept_byte_for_byte(tmp_path, indir, tiny_checkpoint):
    raw = "第1話/01.png".encode("shift_jis")
    info = _LegacyName(raw.decode("cp437"))
    info.raw = raw
    cbz = make_cbz(indir / "sjis.cbz", [(info, PAGE), ("ComicInfo.xml", b"<ComicInfo/>")])
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 0, run.output
    with zipfile.ZipFile(tmp_path / "out.cbz") as z:
        first = z.infolist()[0]
        assert not first.flag_bits & 0x800 and first.orig_filename.encode("cp437") == raw
        assert is_colored(z.read(first))
    assert zipfile.ZipFile(tmp_path / "out.cbz").read("ComicInfo.xml") == b"<ComicInfo/>"


def test_macos_resource_forks_pass_through_silently(tmp_path, indir, tiny_checkpoint):
    fork = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "
    cbz = make_cbz(indir / "mac.cbz", [("1.png", PAGE), ("__MACOSX/._1.png", fork), ("._2.png", fork)])
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 0 and not run.errors, run.output
    out = dict(entries(tmp_path / "out.cbz"))
    assert out["__MACOSX/._1.png"] == fork and out["._2.png"] == fork and is_colored(out["1.png"])


# ---------------------------------------------------------------------- issue 13: errors users see
def test_an_allocation_failure_fails_its_pages_in_one_line_and_the_run_goes_on(tmp_path, indir, tiny_checkpoint,
                                                                                monkeypatch):
    from mangacolor_cli.engine.colorizer import Colorizer
    real_predict, calls = Colorizer.predict, []

    def first_batch_runs_out_of_memory(self, pages):
        calls.append(len(pages))
        if len(calls) == 1:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate "
                               "memory: you tried to allocate 4800000000 bytes.\nError code 12")
        return real_predict(self, pages)

    monkeypatch.setattr(Colorizer, "predict", first_batch_runs_out_of_memory)
    first = make_cbz(indir / "a.cbz", [("1.png", PAGE)])
    second = make_cbz(indir / "b.cbz", [("1.png", PAGE)])
    run = Run(tmp_path, tiny_checkpoint, [first, second], tmp_path / "out", "--batch-size", "1")
    assert run.exit_code == 1 and len(run.errors) == 1 and "out of memory" in run.errors[0], run.output
    assert len(run.output.strip().splitlines()) == 2
    assert is_colored(dict(entries(tmp_path / "out" / "b.cbz"))["1.png"])


def test_train_at_a_size_too_small_for_the_model_says_so_in_one_line(tmp_path):
    import torch

    import models
    with torch.device("meta"):
        full = models.create("pix2pixhd", preset="full")  # shapes only: the full preset allocates nothing here
    assert "--size 64 is too small" in full.size_problem(64) and full.size_problem(256) is None
    (tmp_path / "data").mkdir()
    for i in range(4):
        draw_page(seed=i).convert("RGB").save(tmp_path / "data" / f"{i}.png")
    result = CliRunner().invoke(app, ["train", "--model", "pix2pixhd", "--preset", "tiny", "--size", "16",
                                      "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
                                      "--steps", "1", "--workers", "0", "--device", "cpu"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--size 16 is too small for pix2pixhd" in lines[0]


def test_folder_output_onto_an_existing_file_inside_it_is_refused_before_work(tmp_path, indir, tiny_checkpoint):
    for name in ("001.png", "002.png"):
        (indir / name).write_bytes(PAGE)
    run = Run(tmp_path, tiny_checkpoint, [indir], indir / "001.png")
    assert run.exit_code == 2 and len(run.errors) == 1 and "existing file" in run.errors[0] and not run.added


def test_checkpoint_and_eval_errors_are_one_clean_line(tmp_path, indir, tiny_checkpoint):
    import torch
    (indir / "1.png").write_bytes(PAGE)
    legacy = tmp_path / "legacy.pt"
    torch.save({"weights": torch.zeros(2)}, legacy, _use_new_zipfile_serialization=False)
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"\x08\x07\x12\x07pytorch")
    cases = [(["colorize", str(indir / "1.png"), "--model", str(legacy), "-o", str(tmp_path / "o.png")], "legacy.pt"),
             (["eval", "--pred", str(indir / "1.png"), "--target", str(indir)], "not a folder"),
             (["export", str(onnx), "-o", str(tmp_path / "x.onnx")], "ONNX model, not a PyTorch checkpoint")]
    for args, expected in cases:
        result = CliRunner().invoke(app, args)
        lines = result.output.splitlines()
        assert result.exit_code in (1, 2) and len(lines) == 1 and lines[0].startswith("error: "), result.output
        assert expected in lines[0] and "holds pickled objects" not in lines[0]


def test_a_newline_in_an_entry_name_stays_on_one_error_line(tmp_path, indir, tiny_checkpoint):
    cbz = make_cbz(indir / "nl.cbz", [("1.png", PAGE), ("bad\npage\x1b[2J.png", b"junk")])
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and len(run.errors) == 1, run.output
    assert "bad\\npage\\x1b[2J.png" in run.errors[0]
    assert all(line.startswith("error: ") or "colored" in line for line in run.output.splitlines())


def test_a_checkpoint_asking_for_an_absurd_model_is_refused_before_allocating(tmp_path, indir, tiny_checkpoint):
    import torch

    import models
    from models.checkpoint import CheckpointError
    absurd = tmp_path / "absurd.pt"
    torch.save({"format": 1, "model": "unet", "options": {"base": 4096}, "state_dict": {"w": torch.zeros(4)}}, absurd)
    assert absurd.stat().st_size < 4096
    with pytest.raises(CheckpointError, match="refused before allocating"):
        models.load_model(absurd)
    (indir / "1.png").write_bytes(PAGE)
    result = CliRunner().invoke(app, ["colorize", str(indir / "1.png"), "--model", str(absurd),
                                      "-o", str(tmp_path / "o.png")])
    assert result.exit_code == 2 and len(result.output.splitlines()) == 1, result.output
    assert models.load_model(tiny_checkpoint) is not None  # a real checkpoint still loads
