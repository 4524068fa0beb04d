"""Issue 15, training: resume with the run's own settings, weights-only best.pt, bounded checkpoint cadence,
presets in the help, a progress line when piped, normal file permissions."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console
from typer.testing import CliRunner

import models
from mangacolor_cli.commands import app
from trainer import TrainConfig, train
from trainer.choices import PRESETS
from models.toolbox import progress
from models.toolbox.progress import ProgressBar

from .test_trainer import make_color_pages, records
from .test_trainer import tiny as trainer_tiny

runner = CliRunner()


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> Path:
    return make_color_pages(tmp_path_factory.mktemp("pages"), 5)


def tiny(pages: Path, out: Path, **kw) -> TrainConfig:
    """test_trainer's tiny run, shorter: 4 steps, validated every 2."""
    return trainer_tiny(pages, out, **{"steps": 4, "val_every": 2, **kw})


# ---------------------------------------------------------------------------- resume
def test_resume_restores_the_runs_settings_and_warns_once_about_options_that_differ(pages, tmp_path):
    run = tmp_path / "run"
    first = runner.invoke(app, ["train", "--model", "unet", "--preset", "tiny", "--data", str(pages), "--out", str(run),
                                "--size", "32", "--batch-size", "2", "--steps", "2", "--lr", "0.001", "--seed", "3",
                                "--workers", "0", "--val-every", "2"])
    assert first.exit_code == 0, first.output
    # No --data, no --out, no --model: they come from the checkpoint; --size differs and may not change.
    result = runner.invoke(app, ["train", "--resume", str(run), "--steps", "4", "--lr", "0.0005", "--size", "64",
                                 "--workers", "0"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.output
    assert "ignored --size 64 (the run's: 32)" in warnings[0]
    assert "--steps 2 -> 4" in warnings[0] and "--lr 0.001 -> 0.0005" in warnings[0]
    payload = models.read_checkpoint(run / "last.pt")
    config = payload["meta"]["config"]
    assert payload["train"]["step"] == 4
    assert (config["size"], config["batch_size"], config["seed"], config["preset"]) == (32, 2, 3, "tiny")
    assert (config["steps"], config["lr"], config["val_every"]) == (4, 0.0005, 2)
    assert [r["step"] for r in records(run, "val")] == [2, 4]


def test_resume_that_changes_nothing_prints_no_warning(pages, tmp_path):
    run = tmp_path / "run"
    train(tiny(pages, run, steps=2))
    resumed = runner.invoke(app, ["train", "--resume", str(run / "last.pt"), "--steps", "3", "--workers", "0"])
    assert resumed.exit_code == 0, resumed.output
    assert [ln for ln in resumed.output.splitlines() if ln.startswith("warning:")] == [
        f"warning: resuming {run / 'last.pt'}: changed --steps 2 -> 3"]


def test_resume_through_the_python_api_keeps_the_runs_settings(pages, tmp_path):
    run = tmp_path / "run"
    train(tiny(pages, run, steps=2, batch_size=1))
    summary = train(TrainConfig(model="", data="", out="", resume=str(run), steps=3, workers=0, progress=False))
    assert summary.step == 3
    assert models.read_checkpoint(run / "last.pt")["meta"]["config"]["batch_size"] == 1


def test_train_without_data_or_out_and_without_resume_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["train", "--model", "unet", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--data" in result.output


# ---------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("ema", [None, 0.9])
def test_best_pt_holds_weights_only_with_or_without_ema(pages, tmp_path, ema):
    run = tmp_path / "run"
    train(tiny(pages, run, ema=ema))
    best, last = models.read_checkpoint(run / "best.pt"), models.read_checkpoint(run / "last.pt")
    assert "train" not in best and "train" in last
    assert best["meta"]["best_step"] in (2, 4) and best["meta"]["working_size"] == 64
    assert (run / "best.pt").stat().st_size < 0.6 * (run / "last.pt").stat().st_size
    models.load_model(run / "best.pt")


@pytest.mark.parametrize("how", ["resume", "init"])
def test_resume_and_init_refuse_a_checkpoint_asking_for_an_absurd_model_before_allocating(pages, tmp_path, how):
    import torch
    absurd = tmp_path / "absurd.pt"
    torch.save({"format": 1, "model": "unet", "options": {"base": 4096}, "state_dict": {"w": torch.zeros(4)},
                "train": {"step": 0, "seed": 7}}, absurd)
    assert absurd.stat().st_size < 4096
    with pytest.raises(models.CheckpointError, match="refused before allocating"):
        train(tiny(pages, tmp_path / "run", **{how: str(absurd)}))


@pytest.fixture
def min_val_steps_5(monkeypatch):
    """The README's 50 steps apart, scaled down to 5 so a run shows the rule in a few steps."""
    import trainer.loop
    assert trainer.loop.MIN_VAL_STEPS == 50
    monkeypatch.setattr(trainer.loop, "MIN_VAL_STEPS", 5)


def test_default_cadence_validates_at_whole_epochs_at_least_min_val_steps_apart(pages, tmp_path, min_val_steps_5):
    run = tmp_path / "run"
    # 4 training pages, batch 2: 2 steps an epoch; at least 5 steps apart -> every 3 epochs (and the last step).
    train(tiny(pages, run, steps=8, val_every=None, val_min_seconds=0, log_every=4))
    assert [r["step"] for r in records(run, "val")] == [6, 8]


def test_default_cadence_is_also_bounded_by_wall_time(pages, tmp_path, min_val_steps_5):
    run = tmp_path / "run"
    train(tiny(pages, run, steps=7, val_every=None, val_min_seconds=3600, log_every=7))
    assert [r["step"] for r in records(run, "val")] == [7]  # step 6 came too soon after the start


def test_a_checkpoint_is_written_when_checkpoint_minutes_have_passed(pages, tmp_path):
    run = tmp_path / "run"
    train(tiny(pages, run, steps=3, val_every=1000, checkpoint_minutes=1e-9))
    assert [r["step"] for r in records(run, "val")] == [1, 2, 3]


# ---------------------------------------------------------------------------- files and output
def test_run_files_are_written_with_the_users_normal_permissions(pages, tmp_path):
    old = os.umask(0o022)
    try:
        run = tmp_path / "run"
        train(tiny(pages, run, steps=2))
    finally:
        os.umask(old)
    files = [p for p in run.rglob("*") if p.is_file()]
    assert {"last.pt", "best.pt", "metrics.jsonl", "preview.png", "loss_curve.png"} <= {p.name for p in files}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_piped_training_logs_a_progress_line_at_a_steady_interval(pages, tmp_path, capsys):
    train(tiny(pages, tmp_path / "run", steps=4, progress=True, progress_seconds=0))
    lines = [ln for ln in capsys.readouterr().out.splitlines()
             if ln.startswith("unet ") and ("steps/s" in ln or "s/step" in ln)]  # s/step under one a second
    assert len(lines) >= 4, lines
    assert lines[-1].startswith("unet 4/4 (100%)") and "eta 0:00:00" in lines[-1] and "l1 " in lines[-1]


def test_progress_bar_without_a_terminal_prints_plain_lines_and_an_eta_from_the_measured_rate(monkeypatch):
    now = [100.0]  # the bar's clock, moved by hand: a page every 2 s, no wall-clock race under load
    monkeypatch.setattr(progress, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    buf = io.StringIO()
    bar = ProgressBar(10, 2, "pages", console=Console(file=buf, force_terminal=False), unit="pages", plain_every=0)
    for _ in range(4):
        now[0] += 2
        bar.update(1)
    eta = bar.eta()  # 4 pages in 8 s, 4 left: 8 s
    bar.close()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 5 and lines[-1].startswith("pages 6/10 (60%)")
    assert eta == pytest.approx(8.0) and "eta 0:00:08" in lines[-2]


def test_train_help_lists_presets_and_the_cpu_speed():
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "unet: full, small, tiny" in text and "images/s" in text
    assert "mangacolor train --resume runs/u --steps 4000" in result.output


def test_the_help_presets_are_the_models_presets():
    assert set(PRESETS) == set(models.available())
    for name, presets in PRESETS.items():
        assert set(presets) == set(type(models.create(name, preset="tiny")).presets()), name


def test_a_large_model_on_the_cpu_gets_a_one_line_note_about_presets(pages, tmp_path, capsys, monkeypatch):
    import trainer.loop
    monkeypatch.setattr(trainer.loop, "CPU_NOTE_PARAMETERS", 1000)  # the tiny U-Net counts as large here
    train(tiny(pages, tmp_path / "run", steps=1, val_every=1, device="cpu"))
    notes = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("note: a model this size")]
    assert len(notes) == 1 and "unet tiny ~16 images/s" in notes[0] and "--preset" in notes[0]
