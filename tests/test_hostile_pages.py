"""Hostile pages and names through `mangacolor colorize`: undecodable, huge, odd-mode, multi-frame and partly
colored pages, long and non-UTF-8 names, pipes and folders named like pages (helpers and the rules every
run keeps: ``tests/hostile.py``)."""

from __future__ import annotations

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
from mangacolor_cli.pages import archive_reader
from tests.conftest import draw_page, encoded
from tests.hostile import PAGE, Run, entries, entries_raw, is_colored, make_cbz


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
