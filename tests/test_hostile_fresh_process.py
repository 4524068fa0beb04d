"""Hostile cases of issue 20 through the installed ``mangacolor``, each in a fresh process as a user runs it
(in-process runs share imports and state): one line naming the file for bad input, never a traceback, the
right exit code, and nothing written where it should not be."""

from __future__ import annotations

import io
import json
import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.test_cli_fresh_process import BIN, assert_clean, line_art, mangacolor, mangacolor_together, save
from tests.hostile import make_cbz, patch_entry

pytestmark = pytest.mark.skipif(not BIN.exists(), reason="the mangacolor script is not installed beside this python")


def page_bytes(seed: int = 1) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(line_art(seed, 120, 160)).save(buf, "PNG")
    return buf.getvalue()


def error_lines(run: subprocess.CompletedProcess) -> list[str]:
    """stderr's lines, less the warnings (a nearly gray page's suggestion is not what these tests judge)."""
    return [line for line in run.stderr.splitlines() if line.strip() and not line.startswith("warning:")]


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


# ---------------------------------------------------------------------- item 3: nothing in the user's home
def test_onnxruntime_writes_no_telemetry_or_device_id_into_the_users_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    save(tmp_path / "page.png", line_art(1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST") and k != "ORT_DISABLE_TELEMETRY"}
    run = subprocess.run([str(BIN), "colorize", "page.png"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env={**env, "HOME": str(home)}, stdin=subprocess.DEVNULL)
    assert_clean(run)
    assert run.returncode == 0 and (tmp_path / "page.color.png").is_file(), run.stdout + run.stderr
    assert files_under(home) == set()  # was .cache/Microsoft/DeveloperTools/.onnxruntime/{deviceid,onnxruntime.db}


# ---------------------------------------------------------------------- item 5: stderr closed
def test_colorize_with_stderr_closed_colors_the_page_and_exits_0(tmp_path):
    save(tmp_path / "p.png", line_art(2))
    # ``2>&-``: the process starts with descriptor 2 closed (Python's sys.stderr is then None).
    run = subprocess.run(["/bin/sh", "-c", 'exec "$0" "$@" 2>&-', str(BIN), "colorize", "p.png"], cwd=tmp_path,
                         stdout=subprocess.PIPE, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stdout
    assert run.stdout.startswith("1 colored, 0 already in color, 0 skipped, 0 failed"), run.stdout
    assert Image.open(tmp_path / "p.color.png").size == (360, 500)


# ---------------------------------------------------------------------- item 16: inputs with no pages
def test_inputs_with_no_pages_say_so_in_one_line_and_exit_1(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "text_only").mkdir()
    (tmp_path / "text_only" / "ComicInfo.xml").write_text("<ComicInfo/>")
    make_cbz(tmp_path / "dirs_only.cbz", [("chapter/", b""), ("chapter/sub/", b"")])
    zipfile.ZipFile(tmp_path / "nothing.zip", "w").close()
    names = ("empty", "text_only", "dirs_only.cbz", "nothing.zip")
    for attempt in ("first run", "rerun"):  # never "skipped" either; the inputs' runs share no files
        for name, run in zip(names, mangacolor_together(*[(("colorize", name), tmp_path) for name in names])):
            assert_clean(run)
            lines = error_lines(run)
            assert run.returncode == 1, (name, attempt, run.stdout, run.stderr)
            assert len(lines) == 1 and lines[0].startswith(f"error: {name}: no pages to color"), (attempt, lines)
    # A folder with nothing to color writes nothing; an archive's output keeps its entries, as every archive's does.
    assert not (tmp_path / "empty_color").exists() and not (tmp_path / "text_only_color").exists()
    with zipfile.ZipFile(tmp_path / "dirs_only.color.cbz") as z:
        assert z.namelist() == ["chapter/", "chapter/sub/"]


def test_an_archive_with_no_pages_fails_alone_and_the_folders_pages_are_colored(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    zipfile.ZipFile(lib / "empty.cbz", "w").close()
    (lib / "001.png").write_bytes(page_bytes())
    run = mangacolor("colorize", "lib", cwd=tmp_path)
    assert_clean(run)
    assert run.returncode == 1 and error_lines(run) == [f"error: {Path('lib', 'empty.cbz')}: no pages to color "
                                                        "in this archive (no image entry)"], run.stderr
    assert run.stdout.startswith("1 colored, 0 already in color, 0 skipped, 1 failed"), run.stdout
    assert files_under(tmp_path / "lib_color") == {"001.png", "empty.cbz"}  # the archive kept as it is


def test_a_hint_folder_inside_the_input_folder_is_never_read_as_pages(tmp_path):
    pages = tmp_path / "pages"
    (pages / "hints").mkdir(parents=True)
    (pages / "001.png").write_bytes(page_bytes())
    hint = np.zeros((160, 120, 4), np.uint8)
    hint[70:80, 50:60] = (220, 30, 30, 255)
    Image.fromarray(hint, "RGBA").save(pages / "hints" / "001.png")
    run = mangacolor("colorize", "pages", "--hints", "pages/hints", "--json", cwd=tmp_path)
    assert_clean(run)
    assert run.returncode == 0, run.stdout + run.stderr
    assert [p["input"] for p in json.loads(run.stdout)["pages"]] == [str(Path("pages", "001.png"))]
    assert files_under(tmp_path / "pages_color") == {"001.png"}


def test_a_hint_file_that_is_a_fifo_is_refused_in_one_line_never_read(tmp_path):
    (tmp_path / "001.png").write_bytes(page_bytes())
    os.mkfifo(tmp_path / "hint.png")
    run = mangacolor("colorize", "001.png", "--hints", "hint.png", cwd=tmp_path)  # a read would block: timeout
    assert_clean(run)
    assert run.returncode == 2 and error_lines(run) == ["error: --hints hint.png: not a regular file or folder"]
    assert not (tmp_path / "001.color.png").exists()


# ---------------------------------------------------------------------- item 14: train's numbers
TRAIN_REFUSALS = [
    (["--grad-clip", "-1"], "--grad-clip must be a positive number"),
    (["--grad-clip", "nan"], "--grad-clip must be a positive number"),
    (["--lr", "nan"], "--lr must be a positive number, got nan"),
    (["--lr", "inf"], "--lr must be a positive number, got inf"),
    (["--seed", "-1"], "--seed must be between 0"),
    (["--checkpoint-minutes", "nan"], "--checkpoint-minutes must be positive, got nan"),
    (["--workers", "100000"], "--workers must be between 0 and"),
    (["--opt", "base=200000"], "refused before allocating"),
    (["--batch-size", "1000000000"], "--batch-size 1000000000 at --size 32 needs over"),
    (["--out", "data/0.png"], "data/0.png: is an existing file; --out is the run's folder"),
]
# Each run imports torch (~2 s). One of each kind runs by default: a number, the model counted on the meta device,
# a path; test_trainer_cli checks every refusal's line in-process, and ``-m slow`` runs the rest here too.
FRESH_BY_DEFAULT = {"--lr nan", "--opt base=200000", "--out data/0.png"}


@pytest.mark.parametrize("extra,expected", [
    pytest.param(a, e, id=" ".join(a), marks=() if " ".join(a) in FRESH_BY_DEFAULT else pytest.mark.slow)
    for a, e in TRAIN_REFUSALS])
def test_train_options_that_cannot_work_are_one_line_usage_errors_before_any_work(tmp_path, extra, expected):
    (tmp_path / "data").mkdir()
    for i in range(4):
        (tmp_path / "data" / f"{i}.png").write_bytes(page_bytes(i))
    args = ["train", "--model", "unet", "--preset", "tiny", "--size", "32", "--data", "data", "--steps", "1",
            "--workers", "0", "--device", "cpu", "--out", "run", *extra]
    run = mangacolor(*args, cwd=tmp_path)
    assert_clean(run)
    lines = error_lines(run)
    assert run.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), run.stdout + run.stderr
    assert expected in lines[0], lines[0]
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------- item 17: colorize's sizes
@pytest.mark.parametrize("args,expected", [
    (["colorize", "p.png", "--size", "3000"], "--size must be between 16 and 2048"),
    (["colorize", "p.png", "--batch-size", "1000000"], "--batch-size must be between 1 and 64"),
    (["eval", "-m", "default", "--data", "set", "--size", "3000"], "--size must be between 16 and 2048"),
], ids=["colorize --size", "colorize --batch-size", "eval --size"])
def test_a_working_size_or_batch_that_would_exhaust_memory_is_refused_in_one_line(tmp_path, args, expected):
    save(tmp_path / "p.png", line_art(3, 600, 800))
    (tmp_path / "set").mkdir()
    save(tmp_path / "set" / "1.png", np.dstack([line_art(3)] * 3))
    run = mangacolor(*args, cwd=tmp_path)
    assert_clean(run)
    lines = error_lines(run)
    assert run.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {expected}"), run.stderr
    assert not (tmp_path / "p.color.png").exists()


# ---------------------------------------------------------------------- item 7: a rerun keeps a failure
def test_a_rerun_after_an_encrypted_page_still_reports_it_not_skipped(tmp_path):
    chapter = make_cbz(tmp_path / "ch.cbz", [("1.png", page_bytes(1)), ("2.png", page_bytes(2)),
                                            ("3.png", page_bytes(3))])
    patch_entry(chapter, b"2.png", flags=0x1)  # encrypted: kept as stored, reported
    first = mangacolor("colorize", "ch.cbz", cwd=tmp_path)
    again = mangacolor("colorize", "ch.cbz", cwd=tmp_path)
    for run in (first, again):
        assert_clean(run)
        assert run.returncode == 1 and error_lines(run) == ["error: ch.cbz:2.png: encrypted entry, kept as it is"], \
            run.stdout + run.stderr
    assert "0 skipped" in again.stdout and "1 failed" in again.stdout, again.stdout


def test_a_rerun_after_an_unreadable_page_still_reports_it_not_skipped(tmp_path):
    chapter = make_cbz(tmp_path / "ch.cbz", [("1.png", page_bytes(1)), ("liar.png", page_bytes(2))], deflate=True)
    patch_entry(chapter, b"liar.png", file_size=100)  # inflates past its declared size: cannot be read
    first = mangacolor("colorize", "ch.cbz", cwd=tmp_path)
    assert_clean(first)
    assert first.returncode == 1 and any("liar.png" in line for line in error_lines(first)), first.stderr
    again = mangacolor("colorize", "ch.cbz", cwd=tmp_path)
    assert_clean(again)
    assert again.returncode == 1 and error_lines(again) == error_lines(first), again.stderr
    assert "0 skipped" in again.stdout, again.stdout
