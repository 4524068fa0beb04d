"""`colorize` end to end: folders and CBZ round trips, failures, reruns, atomic outputs, the CLI."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from PIL import Image
from typer.testing import CliRunner

from mangacolor_cli.commands import app
from mangacolor_cli.engine.colorizer import Colorizer
from mangacolor_cli.engine.pipeline import colorize
from tests.conftest import color_page, draw_page, encoded

COMIC_INFO = b'<?xml version="1.0"?>\n<ComicInfo><Title>Chapter 1</Title></ComicInfo>\n'


@pytest.fixture
def chapter(tmp_path):
    """A CBZ whose entry order is not natural order, with ComicInfo.xml and one color page."""
    path = tmp_path / "chapter.cbz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("10.png", encoded(draw_page(seed=10)))
        z.writestr("ComicInfo.xml", COMIC_INFO, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("2.png", encoded(draw_page(40, 56, seed=2)))
        z.writestr("color.png", encoded(color_page()))
        z.writestr("1.jpg", encoded(draw_page(seed=1).convert("RGB"), "JPEG"))
    return path


def _entries(path):
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def _size(data: bytes):
    return Image.open(io.BytesIO(data)).size


def test_cbz_round_trip_keeps_names_order_metadata_and_color_pages(chapter, tiny_checkpoint):
    summary = colorize([chapter], model=tiny_checkpoint, size=32, progress=False)
    out = chapter.with_name("chapter.color.cbz")
    assert summary.exit_code == 0 and (summary.done, summary.kept) == (3, 1)
    src, dst = _entries(chapter), _entries(out)
    assert [n for n, _ in dst] == [n for n, _ in src]
    for (name, a), (_, b) in zip(src, dst):
        if name in ("ComicInfo.xml", "color.png"):
            assert a == b, f"{name} must be copied byte-identical"
        else:
            assert a != b and _size(a) == _size(b)
            assert Image.open(io.BytesIO(b)).format == Image.open(io.BytesIO(a)).format


def test_folder_round_trip_mirrors_tree_in_natural_order(tmp_path, tiny_checkpoint):
    pages = tmp_path / "pages"
    (pages / "vol1").mkdir(parents=True)
    for name in ("10.png", "2.png", "vol1/1.png"):
        draw_page(seed=len(name)).save(pages / name)
    (pages / "notes.txt").write_text("not a page")
    summary = colorize([pages], model=tiny_checkpoint, size=32, progress=False)
    out = tmp_path / "pages_color"
    assert summary.outputs == [str(out / "2.png"), str(out / "10.png"), str(out / "vol1" / "1.png")]
    for name in ("10.png", "2.png", "vol1/1.png"):
        assert Image.open(out / name).size == Image.open(pages / name).size
        assert Image.open(out / name).mode == "RGB"


def test_corrupt_page_fails_alone_and_the_archive_keeps_its_original(chapter, tiny_checkpoint, tmp_path):
    broken = tmp_path / "broken.cbz"
    with zipfile.ZipFile(chapter) as src, zipfile.ZipFile(broken, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data[:50] if info.filename == "2.png" else data)
    errors = []
    summary = colorize([broken], model=tiny_checkpoint, size=32, progress=False, on_error=errors.append)
    assert summary.exit_code == 1 and summary.failed == 1 and summary.done == 2
    assert len(errors) == 1 and errors[0].startswith(f"{broken}:2.png: ") and "\n" not in errors[0]
    src, dst = dict(_entries(broken)), dict(_entries(tmp_path / "broken.color.cbz"))
    assert dst["2.png"] == src["2.png"]
    assert dst["10.png"] != src["10.png"]


def test_rerun_skips_finished_outputs_unless_overwrite(chapter, tiny_checkpoint):
    colorize([chapter], model=tiny_checkpoint, size=32, progress=False)
    out = chapter.with_name("chapter.color.cbz")
    stamp = out.stat().st_mtime_ns
    again = colorize([chapter], model=tiny_checkpoint, size=32, progress=False)
    assert (again.done, again.skipped) == (0, 4) and out.stat().st_mtime_ns == stamp
    redo = colorize([chapter], model=tiny_checkpoint, size=32, progress=False, overwrite=True)
    assert redo.done == 3


def test_model_failure_midway_leaves_no_output_and_no_temp_file(chapter, tiny_checkpoint):
    colorizer = Colorizer(tiny_checkpoint, size=32, batch_size=1)
    real, calls = colorizer.predict, []

    def fail_on_second_batch(pages):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return real(pages)

    colorizer.predict = fail_on_second_batch  # the model call of the pipeline's batches
    with pytest.raises(RuntimeError):
        colorize([chapter], colorizer=colorizer, progress=False)
    assert sorted(p.name for p in chapter.parent.iterdir()) == ["chapter.cbz"]


def test_output_never_overwrites_an_input(tmp_path, tiny_checkpoint):
    page = tmp_path / "page.png"
    draw_page().save(page)
    result = CliRunner().invoke(app, ["colorize", str(page), "-o", str(page), "--model", str(tiny_checkpoint)])
    assert result.exit_code == 2 and "overwrite an input" in result.output


def test_cli_colors_an_image_and_prints_json(tmp_path, tiny_checkpoint):
    page = tmp_path / "page.png"
    draw_page().save(page)
    result = CliRunner().invoke(app, ["colorize", str(page), "--model", str(tiny_checkpoint), "--size", "32",
                                      "--format", "webp", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["colored"] == 1 and summary["failed"] == 0
    assert Image.open(tmp_path / "page.color.webp").size == (48, 64)


def test_cli_exit_codes_for_bad_usage(tmp_path, tiny_checkpoint):
    runner = CliRunner()
    assert runner.invoke(app, ["colorize", str(tmp_path / "missing.cbz"), "--model", str(tiny_checkpoint)]).exit_code == 2
    assert runner.invoke(app, ["colorize", str(tmp_path), "--device", "gpu"]).exit_code == 2
    not_a_page = tmp_path / "notes.txt"
    not_a_page.write_text("x")
    result = runner.invoke(app, ["colorize", str(not_a_page), "--model", str(tiny_checkpoint)])
    assert result.exit_code == 2 and "notes.txt" in result.output


def test_cli_exit_code_1_when_a_page_fails(tmp_path, tiny_checkpoint):
    (tmp_path / "in").mkdir()
    draw_page().save(tmp_path / "in" / "good.png")
    (tmp_path / "in" / "bad.png").write_bytes(b"\x89PNG broken")
    result = CliRunner().invoke(app, ["colorize", str(tmp_path / "in"), "--model", str(tiny_checkpoint), "--size", "32"])
    assert result.exit_code == 1
    assert "bad.png" in result.output and "Traceback" not in result.output
    assert (tmp_path / "in_color" / "good.png").exists()
    # As in an archive run, the failed page is kept as the original (issue 15), marked for a rerun.
    assert (tmp_path / "in_color" / "bad.png").read_bytes() == b"\x89PNG broken"
    assert (tmp_path / "in_color" / ".bad.png.mangacolor-failed").exists()


def test_hostile_archive_entries_are_refused_and_nothing_escapes(tmp_path, tiny_checkpoint):
    path = tmp_path / "evil.cbz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("../escape.png", encoded(draw_page()))
        z.writestr("/abs.png", encoded(draw_page()))
        link = zipfile.ZipInfo("link.png")
        link.external_attr = (0o120777 << 16)
        z.writestr(link, "/etc/passwd")
        z.writestr("ok.png", encoded(draw_page()))
    errors = []
    summary = colorize([path], model=tiny_checkpoint, size=32, progress=False, on_error=errors.append)
    assert summary.done == 1 and summary.failed == 3 and len(errors) == 3
    assert [n for n, _ in _entries(tmp_path / "evil.color.cbz")] == ["ok.png"]
    assert not (tmp_path.parent / "escape.png").exists()


def test_cbr_without_unar_or_unrar_says_what_to_install(tmp_path, tiny_checkpoint, monkeypatch):
    import shutil
    monkeypatch.setattr(shutil, "which", lambda name: None)
    cbr = tmp_path / "chapter.cbr"
    cbr.write_bytes(b"Rar!\x1a\x07\x00")
    errors = []
    summary = colorize([cbr], model=tiny_checkpoint, progress=False, on_error=errors.append)
    assert summary.exit_code == 1 and "unar" in errors[0] and "unrar" in errors[0]


def _mark_encrypted(path, name: bytes) -> None:
    # zipfile cannot write encryption; set the 'encrypted' flag bit in both headers of one entry.
    data = bytearray(path.read_bytes())
    for signature, flag_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        pos = data.find(signature)
        while pos >= 0:
            if data[pos + name_at:pos + name_at + len(name)] == name:
                data[pos + flag_at] |= 0x01
            pos = data.find(signature, pos + 4)
    path.write_bytes(bytes(data))


def test_encrypted_and_duplicate_entries_are_kept_as_stored(tmp_path, tiny_checkpoint):
    path = tmp_path / "odd.cbz"
    page = encoded(draw_page())
    with zipfile.ZipFile(path, "w") as z, pytest.warns(UserWarning):
        z.writestr("locked.png", page)
        z.writestr("1.png", page)
        z.writestr("1.png", encoded(draw_page(seed=5)))
    _mark_encrypted(path, b"locked.png")
    errors = []
    summary = colorize([path], model=tiny_checkpoint, size=32, progress=False, on_error=errors.append)
    assert summary.failed == 2 and any("encrypted" in e for e in errors) and any("duplicate" in e for e in errors)
    out = tmp_path / "odd.color.cbz"
    with zipfile.ZipFile(out) as z:
        infos = z.infolist()
        assert [i.filename for i in infos] == ["locked.png", "1.png", "1.png"]
        assert infos[0].flag_bits & 0x01 and infos[0].CRC == zipfile.ZipFile(path).infolist()[0].CRC
        assert z.read(infos[2]) == encoded(draw_page(seed=5))
        assert z.read(infos[1]) != page
