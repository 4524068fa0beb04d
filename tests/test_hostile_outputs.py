"""Output failures and the errors users see through `mangacolor colorize`, `train` and `eval`: unwritable
folders, write errors mid-archive, allocation failures, bad checkpoints, one clean line each (helpers and
the rules every run keeps: ``tests/hostile.py``)."""

from __future__ import annotations

import errno
import os
import zipfile

import pytest
from typer.testing import CliRunner

from mangacolor_cli.commands import app
from tests.conftest import draw_page
from tests.hostile import PAGE, Run, entries, is_colored, make_cbz


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
