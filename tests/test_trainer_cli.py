"""`mangacolor train`: options reach the trainer, bad input is one line, never a traceback."""

from __future__ import annotations

import json
import shutil

import pytest
import typer
from typer.testing import CliRunner

import models
from mangacolor_cli.commands import app
from mangacolor_cli.commands.train import parse_model_options

from .test_hostile_fresh_process import TRAIN_REFUSALS
from .test_trainer import make_color_pages

runner = CliRunner()


def test_model_options_are_read_as_json_with_plain_strings_allowed():
    assert parse_model_options(["base=4", "dropout=0.25", "norm=instance", "flags=[1, 2]", "on=true"]) == {
        "base": 4, "dropout": 0.25, "norm": "instance", "flags": [1, 2], "on": True}
    with pytest.raises(typer.BadParameter):
        parse_model_options(["no-equals-sign"])


def test_train_command_trains_with_model_options_and_writes_the_run(tmp_path):
    pages = make_color_pages(tmp_path / "pages", 4)
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--model", "unet", "--preset", "tiny", "--opt", "base=4", "--data",
                                 str(pages), "--out", str(out), "--size", "32", "--batch-size", "2", "--steps", "2",
                                 "--workers", "0", "--seed", "1"])
    assert result.exit_code == 0, result.output
    payload = models.read_checkpoint(out / "last.pt")
    assert payload["options"]["base"] == 4 and payload["train"]["step"] == 2
    assert payload["meta"]["config"]["seed"] == 1
    assert any(json.loads(line)["kind"] == "val" for line in (out / "metrics.jsonl").read_text().splitlines())


@pytest.mark.parametrize("args, expected", [
    (["--model", "unet", "--data", "{tmp}/missing"], "missing: data folder not found"),
    (["--model", "nosuchmodel", "--data", "{tmp}"], "unknown model 'nosuchmodel'"),
    (["--model", "unet", "--data", "{tmp}", "--opt", "nosuchoption=1"], "bad option"),
    (["--data", "{tmp}"], "--model"),
])
def test_bad_input_is_a_one_line_error_without_traceback(tmp_path, args, expected):
    make_color_pages(tmp_path, 2)
    argv = ["train", *[a.format(tmp=tmp_path) for a in args], "--out", str(tmp_path / "run"), "--size", "32",
            "--steps", "1", "--workers", "0"]
    result = runner.invoke(app, argv)
    assert result.exit_code != 0
    assert expected in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, (ValueError, RuntimeError))


@pytest.mark.parametrize("extra,expected", TRAIN_REFUSALS, ids=[" ".join(a) for a, _ in TRAIN_REFUSALS])
def test_train_options_that_cannot_work_are_one_line_errors_before_any_work(tmp_path, monkeypatch, extra, expected):
    monkeypatch.chdir(tmp_path)
    make_color_pages(tmp_path / "data", 4)
    shutil.copy(tmp_path / "data" / "page00.png", tmp_path / "data" / "0.png")
    result = runner.invoke(app, ["train", "--model", "unet", "--preset", "tiny", "--size", "32", "--data", "data",
                                 "--steps", "1", "--workers", "0", "--device", "cpu", "--out", "run", *extra])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert expected in lines[0], lines[0]
    assert not (tmp_path / "run").exists()


def test_a_model_worse_than_the_gray_page_is_said_so_at_the_end_of_training():
    from mangacolor_cli.commands.train import against_gray

    worse = against_gray({"ciede2000": 12.0}, {"ciede2000": 10.0})
    assert worse and "worse than the gray page" in worse and "+20%" in worse
    assert against_gray({"ciede2000": 9.0}, {"ciede2000": 10.0}) is None
    assert against_gray(None, {"ciede2000": 10.0}) is None


def test_a_two_step_run_prints_its_validation_beside_the_gray_page(tmp_path):
    pages = make_color_pages(tmp_path / "pages", 4)
    result = runner.invoke(app, ["train", "--model", "unet", "--preset", "tiny", "--data", str(pages), "--out",
                                 str(tmp_path / "run"), "--size", "32", "--batch-size", "2", "--steps", "2",
                                 "--workers", "0", "--seed", "1"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.strip().startswith("│ gray") or "│ best" in line]
    assert rows, result.output
    # a 2-step model paints worse than gray, and the run says so in plain words
    assert "worse than the gray page" in " ".join(result.output.split())


def test_a_time_budget_stops_the_run_validates_and_saves_in_a_fresh_process(tmp_path):
    from .test_cli_fresh_process import mangacolor

    pages = make_color_pages(tmp_path / "pages", 4)
    run = mangacolor("train", "--model", "unet", "--preset", "tiny", "--data", str(pages), "--out", "run",
                     "--size", "32", "--batch-size", "2", "--steps", "100000", "--max-minutes", "0.01",
                     "--val-every", "100000", "--workers", "0", "--device", "cpu", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "time budget of 0.01 min reached at step" in " ".join((run.stdout + run.stderr).split())
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    step = models.read_checkpoint(tmp_path / "run" / "last.pt")["train"]["step"]
    assert 0 < step < 100000
    # the last step was validated, so best.pt holds weights a user can colorize with
    assert any(r["kind"] == "val" and r["step"] == step for r in records)
    assert (tmp_path / "run" / "best.pt").is_file()
