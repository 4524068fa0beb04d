"""Interrupting a real `python -m mangacolor_cli colorize` run (SIGINT, SIGKILL) in the middle of writing a
CBZ, alone or inside a folder run: no partial output under a final name, SIGINT exits 130 promptly with
a message, and the next run removes the killed run's temp files and finishes the job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mangacolor_cli.commands import app
from models.toolbox import files as outputs
from tests.conftest import draw_page, encoded

PAGES = 4
# Recompressing this much incompressible data takes a few tenths of a second: the window to interrupt in.
SCANS_BYTES = 16 * 2**20


def make_chapter(path: Path) -> Path:
    """A CBZ with a few pages and a large deflated non-page entry, so writing its output takes a while."""
    scans = np.random.default_rng(0).integers(0, 256, SCANS_BYTES, dtype=np.uint8).tobytes()
    with zipfile.ZipFile(path, "w") as z:
        for i in range(PAGES):
            z.writestr(f"{i + 1:02d}.png", encoded(draw_page(seed=i)))
        z.writestr("scans.bin", scans, compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
    return path


def temp_files(folder: Path) -> list[Path]:
    return [folder / n for n in os.listdir(folder) if outputs.is_temp_name(n)] if folder.is_dir() else []


def start_and_interrupt(args: list[str], target: Path, sig: int) -> tuple[subprocess.Popen, str, float]:
    """Start the CLI, wait until it is writing ``target``'s temp file, send ``sig``; returns the process,
    its stderr and the seconds it took to exit after the signal."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    # A suite run in the background (``cmd &`` in a script) ignores SIGINT, and a child inherits that:
    # the CLI must start with the default handler, as it does from a terminal.
    proc = subprocess.Popen([sys.executable, "-m", "mangacolor_cli", "colorize", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    try:
        while not (writing := [p for p in temp_files(target.parent) if p.name.startswith(f".{target.name}.")]):
            assert proc.poll() is None, f"finished before it could be interrupted: {proc.communicate()}"
            assert time.monotonic() < deadline, "no temp file appeared"
            time.sleep(0.002)
        (tmp,) = writing
        assert f".{proc.pid}." in tmp.name  # the temp name carries its writer's pid
        proc.send_signal(sig)
        sent = time.monotonic()
        _, stderr = proc.communicate(timeout=30)
        return proc, stderr, time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def assert_interrupted(proc: subprocess.Popen, stderr: str, seconds: float, sig: int) -> None:
    if sig == signal.SIGINT:
        assert proc.returncode == 130, stderr
        assert "interrupted" in stderr and "Traceback" not in stderr
        assert seconds < 10
    else:
        assert proc.returncode == -signal.SIGKILL


def assert_complete_or_absent(path: Path) -> bool:
    """No partial file under a final name: the output is either missing or a whole, valid archive."""
    if not path.exists():
        return False
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None and len(z.namelist()) == PAGES + 1
    return True


def rerun(args: list[str]):
    result = CliRunner().invoke(app, ["colorize", *args])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    return result


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_interrupted_cbz_run_leaves_no_partial_output_and_the_next_run_finishes(tmp_path, tiny_onnx, sig):
    chapter = make_chapter(tmp_path / "chapter.cbz")
    out_dir = tmp_path / "out"
    args = [str(chapter), "-o", str(out_dir / "chapter.cbz"), "--model", str(tiny_onnx), "--size", "32"]
    proc, stderr, seconds = start_and_interrupt(args, out_dir / "chapter.cbz", sig)
    assert_interrupted(proc, stderr, seconds, sig)
    finished = assert_complete_or_absent(out_dir / "chapter.cbz")
    if sig == signal.SIGINT:
        assert not temp_files(out_dir)  # removed on the way out
    elif not finished:
        assert temp_files(out_dir)  # SIGKILL cannot clean up: the stale temp file is the next run's job
    rerun(args)
    assert not temp_files(out_dir)
    assert assert_complete_or_absent(out_dir / "chapter.cbz")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_interrupted_folder_run_keeps_finished_pages_whole_and_the_next_run_finishes(tmp_path, tiny_onnx, sig):
    library = tmp_path / "library"
    library.mkdir()
    for i in range(6):
        draw_page(seed=i).save(library / f"p{i + 1}.png")
    make_chapter(library / "z.cbz")  # natural order: the pages first, then the chapter
    out_dir = tmp_path / "out"
    args = [str(library), "-o", str(out_dir), "--model", str(tiny_onnx), "--size", "32"]
    proc, stderr, seconds = start_and_interrupt(args, out_dir / "z.cbz", sig)
    assert_interrupted(proc, stderr, seconds, sig)
    pages = sorted(p.name for p in out_dir.glob("*.png"))
    assert pages == [f"p{i + 1}.png" for i in range(6)]  # done before the chapter, and whole
    for name in pages:
        assert (out_dir / name).read_bytes().startswith(b"\x89PNG") and (out_dir / name).stat().st_size > 100
    assert_complete_or_absent(out_dir / "z.cbz")
    result = rerun(args + ["--json"])
    assert '"skipped": 6' in result.stdout
    assert not temp_files(out_dir) and assert_complete_or_absent(out_dir / "z.cbz")


def test_stale_temp_files_are_removed_only_when_their_writer_is_dead(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".chapter.cbz.{dead.pid}.0123abcd{outputs.TEMP_SUFFIX}"
    live = tmp_path / f".chapter.cbz.{os.getppid()}.0123abcd{outputs.TEMP_SUFFIX}"
    foreign = tmp_path / f".notes.{dead.pid}.tmp"
    for path in (stale, live, foreign):
        path.write_bytes(b"partial")
    assert outputs.clean_stale_temps(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and foreign.exists()


def test_an_interrupt_inside_an_entrys_write_propagates_and_leaves_no_file(tmp_path, monkeypatch):
    """A Ctrl-C landing inside zipfile's writestr (an entry's handle open) reaches the caller as the
    KeyboardInterrupt, not as zipfile's "open writing handle" ValueError from closing the archive, and
    neither the target nor a temp file is left (the exit-130 path above depends on it)."""
    from mangacolor_cli.pages.archives import OutputEntry, write_cbz_atomic

    calls = {"n": 0}
    real_init = zipfile._ZipWriteFile.__init__

    def interrupted(self, *args, **kwargs):  # where CI's SIGINT once landed: the archive marks a handle open
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_init(self, *args, **kwargs)

    monkeypatch.setattr(zipfile._ZipWriteFile, "__init__", interrupted)
    target = tmp_path / "ch.cbz"
    entries = [OutputEntry(name=f"{i}.png", data=b"x" * 1000) for i in range(3)]
    with pytest.raises(KeyboardInterrupt):
        write_cbz_atomic(target, entries)
    assert calls["n"] == 2
    assert os.listdir(tmp_path) == []
