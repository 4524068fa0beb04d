"""Issue 15, colorize and discoverability: --json page records, --compare, folder runs like archive runs,
--format jpeg, --device cuda:N, `mangacolor models`, the progress bar on stderr and in notebooks, the API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

import mangacolor_cli
from mangacolor_cli.commands import app

from .conftest import color_page, draw_page, encoded

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def make_chapter(path: Path, broken: bool = True) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("001.png", encoded(draw_page(seed=1)))
        z.writestr("002.png", encoded(draw_page(seed=2)))
        z.writestr("003.png", encoded(color_page()))
        if broken:
            z.writestr("004.png", b"not a png")
        z.writestr("ComicInfo.xml", "<ComicInfo/>")
    return path


def json_of(output: str) -> dict:
    return json.loads(output[output.index("{"):])


# ---------------------------------------------------------------------------- --json
def test_json_gives_a_record_per_page_with_the_words_the_text_uses(tmp_path, tiny_checkpoint):
    chapter = make_chapter(tmp_path / "ch.cbz")
    result = runner.invoke(app, ["colorize", str(chapter), "-m", str(tiny_checkpoint), "--json"])
    assert result.exit_code == 1  # one page failed
    summary = json_of(result.stdout)
    by_page = {Path(r["input"].split(":")[-1]).name: r for r in summary["pages"]}
    assert {k: r["status"] for k, r in by_page.items()} == {
        "001.png": "colored", "002.png": "colored", "003.png": "already in color", "004.png": "failed"}
    assert set(by_page["001.png"]) - {"colored_area"} == {"input", "output", "status", "seconds", "error"}
    assert by_page["001.png"]["output"] == f"{tmp_path / 'ch.color.cbz'}:001.png"
    assert by_page["001.png"]["error"] is None and by_page["001.png"]["seconds"] >= 0
    assert "004.png" in by_page["004.png"]["error"] and by_page["004.png"]["output"].endswith(":004.png")
    assert (summary["colored"], summary["already_in_color"], summary["failed"]) == (2, 1, 1)

    again = runner.invoke(app, ["colorize", str(tmp_path / "one.png"), "-m", str(tiny_checkpoint), "--json"])
    assert again.exit_code == 2  # no such input: bad usage, no records to give


def test_json_records_skipped_pages_of_a_finished_output(tmp_path, tiny_checkpoint):
    chapter = make_chapter(tmp_path / "ch.cbz", broken=False)
    runner.invoke(app, ["colorize", str(chapter), "-m", str(tiny_checkpoint)])
    result = runner.invoke(app, ["colorize", str(chapter), "-m", str(tiny_checkpoint), "--json"])
    assert result.exit_code == 0
    assert [r["status"] for r in json_of(result.stdout)["pages"]] == ["skipped"] * 3


# ---------------------------------------------------------------------------- --compare
def test_compare_writes_a_contact_sheet_per_archive_and_a_side_by_side_per_page(tmp_path, tiny_checkpoint):
    chapter = make_chapter(tmp_path / "ch.cbz", broken=False)
    page = tmp_path / "page.png"
    draw_page(48, 64).save(page)
    result = runner.invoke(app, ["colorize", str(chapter), str(page), "-o", str(tmp_path / "out"), "-m",
                                 str(tiny_checkpoint), "--compare", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "cmp" / "ch.compare.jpg") as sheet:
        assert sheet.width > 3 * 2 * 48  # three before | after pairs in a row
    with Image.open(tmp_path / "cmp" / "page.compare.jpg") as pair:
        assert pair.size[1] == 64 and pair.size[0] >= 2 * 48  # before | after, the page's own height


# ---------------------------------------------------------------------------- folder runs
def test_folder_runs_behave_like_archive_runs(tmp_path, tiny_checkpoint):
    pages = tmp_path / "pages"
    (pages / "sub").mkdir(parents=True)
    draw_page(seed=1).save(pages / "001.png")
    draw_page(seed=2).save(pages / "sub" / "002.png")
    (pages / "003.png").write_bytes(b"not a png")
    (pages / "ComicInfo.xml").write_text("<ComicInfo/>")
    draw_page(seed=3).save(pages / "001.color.png")  # an earlier run's output beside its input
    result = runner.invoke(app, ["colorize", str(pages), "-m", str(tiny_checkpoint), "--json"])
    assert result.exit_code == 1
    out = tmp_path / "pages_color"
    assert (out / "ComicInfo.xml").read_text() == "<ComicInfo/>"                  # non-image files copied
    assert (out / "003.png").read_bytes() == b"not a png"                         # failed page kept as the original
    assert not (out / "001.color.png").exists() and not (out / "001.color.color.png").exists()
    assert {Path(r["input"]).name for r in json_of(result.stdout)["pages"]} == {"001.png", "002.png", "003.png"}
    # A rerun skips the finished pages and tries the failed one again.
    (pages / "003.png").write_bytes(encoded(draw_page(seed=4)))
    again = runner.invoke(app, ["colorize", str(pages), "-m", str(tiny_checkpoint), "--json"])
    assert again.exit_code == 0, again.output
    statuses = {Path(r["input"]).name: r["status"] for r in json_of(again.stdout)["pages"]}
    assert statuses == {"001.png": "skipped", "002.png": "skipped", "003.png": "colored"}
    with Image.open(out / "003.png") as img:
        assert img.size == (48, 64)
    assert not list(out.glob(".*mangacolor-failed"))


# ---------------------------------------------------------------------------- options
def test_format_jpeg_is_accepted_as_the_api_accepts_it(tmp_path, tiny_checkpoint):
    page = tmp_path / "page.png"
    draw_page().save(page)
    result = runner.invoke(app, ["colorize", str(page), "-m", str(tiny_checkpoint), "--format", "JPEG"])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "page.color.jpg") as img:
        assert img.format == "JPEG"


def test_device_takes_cuda_with_an_index(tmp_path, tiny_checkpoint):
    page = tmp_path / "page.png"
    draw_page().save(page)
    result = runner.invoke(app, ["colorize", str(page), "-m", str(tiny_checkpoint), "--device", "cuda:1"])
    assert "Invalid value" not in result.output
    import torch
    if not torch.cuda.is_available():
        assert result.exit_code == 2 and "no CUDA GPU" in result.output
    bad = runner.invoke(app, ["colorize", str(page), "--device", "gpu"])
    assert bad.exit_code == 2 and "cuda:N" in bad.output


# ---------------------------------------------------------------------------- progress
def test_colorize_from_a_notebook_shows_a_tqdm_bar(tmp_path, tiny_checkpoint, monkeypatch, capsys):
    import models.toolbox.progress
    from mangacolor_cli.engine import pipeline

    monkeypatch.setattr(models.toolbox.progress, "in_notebook", lambda: True)
    monkeypatch.setattr(pipeline, "in_notebook", lambda: True)
    page = tmp_path / "page.png"
    draw_page().save(page)
    summary = mangacolor_cli.colorize(page, model=str(tiny_checkpoint))
    assert summary.done == 1
    err = capsys.readouterr().err
    assert "coloring:" in err and "0/1" in err and "pages/s" in err  # tqdm.auto's bar (its text form outside Jupyter)


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals")
def test_the_cli_bar_and_the_loading_line_go_to_stderr_when_it_is_a_terminal(tmp_path, tiny_checkpoint):
    import pty

    for i in range(3):
        draw_page(seed=i).save(tmp_path / f"{i:03d}.png")
    primary, secondary = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "mangacolor_cli", "colorize", str(tmp_path), "-m",
                             str(tiny_checkpoint), "-o", str(tmp_path / "out")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=secondary, stdin=subprocess.DEVNULL)
    os.close(secondary)
    stdout, _ = proc.communicate(timeout=120)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(primary)
    terminal = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, terminal
    assert "loading the model" in terminal and "coloring" in terminal and "eta" in terminal
    assert b"3 colored" in stdout and b"coloring" not in stdout  # the summary on stdout, the bar never there


def test_a_nearly_gray_pages_advice_leaves_out_what_the_run_already_did():
    from mangacolor_cli.engine.pipeline import gray_advice

    plain = gray_advice("safe", hinted=False, referenced=False)
    assert "--palette vivid" in plain and "--hints colors" in plain and "--reference takes" in plain
    done = gray_advice("vivid", hinted=True, referenced=True)
    assert "--palette vivid" not in done and "--reference takes" not in done
    assert "more --hints" in done and "reference pages matched few" in done
