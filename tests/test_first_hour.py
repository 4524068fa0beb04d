"""Issue 24, friction a new user hits in the first hour: where ``-o`` puts an output, ``-o page.png`` for a
JPEG page, the Python API on paths and PIL images, and a rerun with other settings. The CLI runs with the
packaged default model, in-process (about 0.3 s a run instead of 0.8 s; test_cli_fresh_process runs the
installed ``mangacolor`` in fresh processes, where start-up faults show)."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mangacolor_cli.commands import app
from mangacolor_cli.errors import PageError
from tests.test_cli_fresh_process import BIN, color_page, line_art, mangacolor, save


def errors_of(run) -> list[str]:
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("error:")]


def colorize(*args: str, cwd: Path, code: int = 0):
    """``mangacolor colorize ARGS --json`` from ``cwd``: its JSON summary, or the run when ``code`` is not 0."""
    here = os.getcwd()
    os.chdir(cwd)
    try:
        run = CliRunner().invoke(app, ["colorize", *args, "--json"])
    finally:
        os.chdir(here)
    assert run.exception is None or isinstance(run.exception, SystemExit), run.output
    assert "Traceback" not in run.output
    assert run.exit_code == code, run.stdout + run.stderr
    return json.loads(run.stdout) if code == 0 else run


def statuses(report) -> list[str]:
    return [page["status"] for page in report["pages"]]


@pytest.fixture
def pages(tmp_path) -> Path:
    folder = tmp_path / "pages"
    folder.mkdir()
    save(folder / "001.png", line_art(1, 120, 160))
    save(folder / "002.png", line_art(2, 120, 160))
    return folder


@pytest.fixture
def chapter(tmp_path, pages) -> Path:
    path = tmp_path / "ch.cbz"
    with zipfile.ZipFile(path, "w") as z:
        for page in sorted(pages.iterdir()):
            z.write(page, page.name)
    return path


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------------- item 4: where -o puts the output
needs_cli = pytest.mark.skipif(not BIN.exists(), reason="the mangacolor script is not installed beside this python")


@pytest.mark.parametrize("slash", ["", "/"])
def test_a_folder_input_is_mirrored_into_o_itself_with_or_without_a_trailing_slash(tmp_path, pages, slash):
    colorize(str(pages), "-o", str(tmp_path / "colored") + slash, cwd=tmp_path)
    assert files_under(tmp_path / "colored") == ["001.png", "002.png"]  # never colored/pages/001.png


@pytest.mark.parametrize("slash", ["", "/"])
def test_an_archive_input_goes_into_o_under_its_own_name_with_or_without_a_trailing_slash(tmp_path, chapter,
                                                                                             slash):
    colorize(str(chapter), "-o", str(tmp_path / "colored") + slash, cwd=tmp_path)
    assert files_under(tmp_path / "colored") == ["ch.cbz"]


@pytest.mark.parametrize("slash", ["", "/"])
def test_an_image_input_goes_into_o_under_its_own_name_with_or_without_a_trailing_slash(tmp_path, pages, slash):
    colorize(str(pages / "001.png"), "-o", str(tmp_path / "colored") + slash, cwd=tmp_path)
    assert files_under(tmp_path / "colored") == ["001.png"]


@needs_cli
def test_the_output_rule_is_in_the_help_and_the_readme():
    run = mangacolor("colorize", "--help", cwd=Path.cwd())
    assert "with or without a trailing /" in " ".join(run.stdout.split())
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    colorize_section = readme[readme.index("## Colorize"):readme.index("## Train")]
    assert "with or without a trailing `/`" in " ".join(colorize_section.split())


# ---------------------------------------------------------------------- item 5: -o's extension picks the format
@pytest.mark.parametrize("name, fmt", [("out.png", "PNG"), ("out.webp", "WEBP")])
def test_the_output_extension_picks_the_format_of_a_page(tmp_path, name, fmt):
    page = save(tmp_path / "005.jpg", np.dstack([line_art(5, 120, 160)] * 3), quality=90)
    colorize(str(page), "-o", str(tmp_path / name), cwd=tmp_path)
    assert Image.open(tmp_path / name).format == fmt


@pytest.mark.parametrize("extra", [[], ["--format", "jpg"]])
def test_an_output_extension_that_cannot_hold_the_page_is_refused_in_one_line(tmp_path, extra):
    page = save(tmp_path / "005.jpg", line_art(5, 120, 160))
    target = tmp_path / ("out.txt" if not extra else "out.png")
    run = colorize(str(page), "-o", str(target), *extra, cwd=tmp_path, code=2)
    assert len(errors_of(run)) == 1 and str(target.name) in errors_of(run)[0]
    assert not target.exists()


# ---------------------------------------------------------------------- item 7: the Python API takes paths and PIL
@pytest.fixture(scope="module")
def colorizer():
    from mangacolor_cli import Colorizer
    return Colorizer(device="cpu")


def test_colorizer_colors_a_path_given_as_str_or_pathlib_into_an_array(tmp_path, colorizer):
    page = save(tmp_path / "page.png", line_art(1, 120, 160))
    for given in (str(page), page):
        out = colorizer.colorize(given)
        assert isinstance(out, np.ndarray) and out.shape == (160, 120, 3) and out.dtype == np.uint8


def test_colorizer_gives_a_pil_image_back_for_a_pil_image(tmp_path, colorizer):
    out = colorizer.colorize(Image.fromarray(line_art(1, 120, 160)))
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (120, 160)


def test_colorizer_takes_a_list_mixing_paths_pil_images_and_arrays(tmp_path, colorizer):
    page = save(tmp_path / "page.png", line_art(1, 120, 160))
    out = colorizer.colorize([str(page), Image.open(page), line_art(2, 120, 160), color_page(120, 160)])
    assert [isinstance(o, Image.Image) for o in out] == [False, True, False, False]
    assert all(np.asarray(o).shape == (160, 120, 3) for o in out)
    assert np.array_equal(out[3], color_page(120, 160))  # a page in color comes back unchanged


def test_a_path_that_cannot_be_read_is_a_one_line_error_naming_it(tmp_path, colorizer):
    (tmp_path / "empty.png").write_bytes(b"")
    for bad in (tmp_path / "missing.png", tmp_path / "empty.png"):
        with pytest.raises(PageError) as e:
            colorizer.colorize(bad)
        assert str(bad) in str(e.value) and "\n" not in str(e.value)


# ---------------------------------------------------------------------- item 1: a rerun with other settings
def test_a_rerun_with_another_fill_colors_the_chapter_again_and_the_same_settings_skip_it(tmp_path, chapter):
    assert statuses(colorize(str(chapter), cwd=tmp_path)) == ["colored", "colored"]
    first = (tmp_path / "ch.color.cbz").read_bytes()
    assert statuses(colorize(str(chapter), cwd=tmp_path)) == ["skipped", "skipped"]
    assert statuses(colorize(str(chapter), "--fill", "soft", cwd=tmp_path)) == ["colored", "colored"]
    assert (tmp_path / "ch.color.cbz").read_bytes() != first
    assert statuses(colorize(str(chapter), "--fill", "soft", cwd=tmp_path)) == ["skipped", "skipped"]


def test_a_rerun_checks_its_options_before_skipping_anything(tmp_path, chapter):
    colorize(str(chapter), cwd=tmp_path)
    run = colorize(str(chapter), "--model", "nomodel.onnx", cwd=tmp_path, code=2)
    assert len(errors_of(run)) == 1 and "nomodel.onnx" in errors_of(run)[0]
    run = colorize(str(chapter), "--hints", "nohints/", cwd=tmp_path, code=2)
    assert len(errors_of(run)) == 1 and "nohints" in errors_of(run)[0]


def test_a_rerun_of_a_folder_with_another_size_or_saturation_colors_its_pages_again(tmp_path, pages):
    out = str(tmp_path / "colored")
    colorize(str(pages), "-o", out, cwd=tmp_path)
    assert statuses(colorize(str(pages), "-o", out, "--size", "256", cwd=tmp_path)) == ["colored", "colored"]
    assert statuses(colorize(str(pages), "-o", out, "--size", "256", cwd=tmp_path)) == ["skipped", "skipped"]
    assert statuses(colorize(str(pages), "-o", out, "--size", "256", "--saturation", "0.5",
                             cwd=tmp_path)) == ["colored", "colored"]


def test_a_rerun_with_an_edited_hint_file_colors_the_page_again(tmp_path, pages):
    hint = np.zeros((160, 120, 4), np.uint8)
    hint[70:74, 50:54] = (220, 30, 30, 255)
    save(tmp_path / "hint.png", hint)
    page = str(pages / "001.png")
    assert statuses(colorize(page, "--hints", str(tmp_path / "hint.png"), cwd=tmp_path)) == ["colored"]
    assert statuses(colorize(page, "--hints", str(tmp_path / "hint.png"), cwd=tmp_path)) == ["skipped"]
    hint[70:74, 50:54] = (30, 30, 220, 255)
    save(tmp_path / "hint.png", hint)
    assert statuses(colorize(page, "--hints", str(tmp_path / "hint.png"), cwd=tmp_path)) == ["colored"]
    assert statuses(colorize(page, cwd=tmp_path)) == ["colored"]  # the hints left out: colored without


def test_a_rerun_with_recolor_colors_a_page_that_was_kept_as_it_was(tmp_path):
    page = save(tmp_path / "cover.png", color_page(120, 160))
    assert statuses(colorize(str(page), cwd=tmp_path)) == ["already in color"]
    assert (tmp_path / "cover.color.png").read_bytes() == page.read_bytes()
    assert statuses(colorize(str(page), cwd=tmp_path)) == ["skipped"]
    assert statuses(colorize(str(page), "--recolor", cwd=tmp_path)) == ["colored"]
    assert statuses(colorize(str(page), cwd=tmp_path)) == ["already in color"]
