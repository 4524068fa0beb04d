"""Issue 24, items 8, 9 and 11: what a script relies on. ``--json`` is a flag in every command that has it,
printing one JSON document on stdout (eval writes a file with ``--json-out FILE``), each count once; every
command's exit code follows one rule (``mangacolor_cli.commands.app.exit_code``): 2 when it could not start,
1 when the work failed once under way; and a slow rate reads as seconds per step, not "0.00 steps/s". The CLI
runs as a user runs it: the installed ``mangacolor`` in a fresh process."""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from tests.test_cli_fresh_process import (BIN, ROOT, assert_clean, color_page, line_art, mangacolor,
                                          mangacolor_together, save)

needs_cli = pytest.mark.skipif(not BIN.exists(), reason="the mangacolor script is not installed beside this python")
DEFAULT_ONNX = ROOT / "mangacolor_cli" / "weights" / "default.onnx"


def error_lines(run) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.startswith("error:")]


def make_pred_target(folder: Path) -> Path:
    """``pred/`` and ``target/`` of two pages each, and ``set/``: the targets as an eval set."""
    for sub, shift in (("pred", 0), ("target", 20), ("set", 20)):
        (folder / sub).mkdir()
        for i in range(2):
            save(folder / sub / f"{i}.png", np.clip(color_page(64, 80).astype(int) - shift, 0, 255).astype(np.uint8))
    return folder


@pytest.fixture
def pred_target(tmp_path) -> Path:
    return make_pred_target(tmp_path)


# ---------------------------------------------------------------------- item 8: one JSON convention
@needs_cli
def test_colorize_json_counts_each_page_once_under_the_words_of_its_summary(tmp_path):
    pages = tmp_path / "pages"
    pages.mkdir()
    save(pages / "001.png", line_art(1, 120, 160))
    save(pages / "002.png", line_art(2, 120, 160))
    save(pages / "003.png", color_page(120, 160))
    run = mangacolor("colorize", str(pages), "-o", str(tmp_path / "out"), "--json", cwd=tmp_path)
    assert_clean(run)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)  # stdout is the JSON document and nothing else
    counts = {k: report[k] for k in ("colored", "already_in_color", "skipped", "failed")}
    assert counts == {"colored": 2, "already_in_color": 1, "skipped": 0, "failed": 0}
    assert "done" not in report and "kept" not in report  # the same counts under a second name, gone
    assert sum(counts.values()) == len(report["pages"])


@needs_cli
def test_eval_json_is_a_flag_that_prints_the_summary_on_stdout_as_colorize_json_does(pred_target):
    run = mangacolor("eval", "--pred", "pred", "--target", "target", "--json", cwd=pred_target)
    assert_clean(run)
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads(run.stdout)
    assert summary["systems"]["pred"]["n"] == 2
    assert "gray baseline" in run.stderr  # the table is on stderr, out of the JSON's way
    assert not list(pred_target.glob("*.json"))


@needs_cli
def test_eval_json_out_writes_the_summary_to_a_file_and_json_prints_the_same(pred_target):
    run, both = mangacolor_together(
        (("eval", "--pred", "pred", "--target", "target", "--json-out", "r.json"), pred_target),
        (("eval", "--pred", "pred", "--target", "target", "--json", "--json-out", "s.json"), pred_target))
    assert_clean(run)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "gray baseline" in run.stdout and "wrote r.json" in run.stdout  # the table stays on stdout
    written = json.loads((pred_target / "r.json").read_text())
    assert both.returncode == 0, both.stderr
    assert json.loads(both.stdout)["systems"] == json.loads((pred_target / "s.json").read_text())["systems"]
    assert json.loads(both.stdout)["systems"] == written["systems"]


@needs_cli
def test_eval_json_with_a_path_the_old_spelling_still_writes_it_and_says_the_new_one(pred_target):
    run, dash, stray = mangacolor_together(
        (("eval", "--pred", "pred", "--target", "target", "--json", "r.json"), pred_target),
        (("eval", "--pred", "pred", "--target", "target", "--json", "-"), pred_target),
        (("eval", "--pred", "pred", "--target", "target", "r.json"), pred_target))
    assert_clean(run)
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads((pred_target / "r.json").read_text())["systems"]["pred"]["n"] == 2
    assert "--json-out" in run.stderr and "gray baseline" in run.stdout
    assert dash.returncode == 0 and json.loads(dash.stdout)["systems"]["pred"]["n"] == 2, dash.stderr
    assert stray.returncode == 2 and error_lines(stray) == [
        "error: unexpected argument 'r.json' (eval takes options only; see --help)"], stray.stderr


@needs_cli
def test_models_json_is_one_document_on_stdout(tmp_path):
    run = mangacolor("models", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert {"packaged", "architectures"} <= set(json.loads(run.stdout))


def test_the_json_convention_is_in_the_readme_and_eval_help():
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "`--json` is a flag" in readme and "`--json-out FILE`" in readme
    assert "--json summary.json" not in readme


# ---------------------------------------------------------------------- item 9: one exit-code rule
def corrupt(path: Path) -> Path:
    path.write_bytes(b"not a checkpoint")
    return path


# (arguments, what the one error line says); paths are relative to the test's folder.
BAD_PATHS = {
    "colorize: a missing input": (["colorize", "missing.cbz"], "missing.cbz: no such file or folder"),
    "colorize: a missing model": (["colorize", "set/0.png", "--model", "missing.onnx"], "missing.onnx"),
    "train: a missing data folder": (["train", "--model", "unet", "--data", "missing", "--out", "run"],
                                     "missing: data folder not found"),
    "train: a missing run to resume": (["train", "--resume", "missing"], "missing: no such checkpoint file"),
    "export: a missing checkpoint": (["export", "missing.pt", "-o", "x.onnx"], "missing.pt: no such checkpoint"),
    "export: a checkpoint that does not load": (["export", "corrupt.pt", "-o", "x.onnx"], "corrupt.pt: "),
    "quantize: missing calibration pages": (["quantize", str(DEFAULT_ONNX), "-o", "i8.onnx", "--data", "set",
                                             "--calibrate", "missing"], "missing: no such file or folder"),
    "quantize: a missing validation set": (["quantize", str(DEFAULT_ONNX), "-o", "i8.onnx", "--data", "missing",
                                            "--calibrate", "set"], "missing: no such folder"),
    "eval: a missing prediction folder": (["eval", "--pred", "missing", "--target", "target"],
                                          "missing: no such folder"),
    "eval: a missing model": (["eval", "-m", "missing.onnx", "--data", "set"], "missing.onnx: no such model file"),
}


@pytest.fixture(scope="module")
def bad_path_runs(tmp_path_factory) -> dict[str, tuple[object, Path]]:
    """Every case of ``BAD_PATHS`` run in a folder of its own (``pred_target``'s files and a corrupt checkpoint),
    the runs started together: ``{case: (run, folder)}``."""
    folders = {case: make_pred_target(tmp_path_factory.mktemp("bad_path")) for case in BAD_PATHS}
    for folder in folders.values():
        corrupt(folder / "corrupt.pt")
    runs = mangacolor_together(*[(tuple(BAD_PATHS[case][0]), folders[case]) for case in BAD_PATHS])
    return {case: (run, folders[case]) for case, run in zip(BAD_PATHS, runs)}


@needs_cli
@pytest.mark.parametrize("case", list(BAD_PATHS))
def test_a_bad_path_exits_2_in_every_command_with_one_line_naming_it(bad_path_runs, case):
    args, expected = BAD_PATHS[case]
    run, pred_target = bad_path_runs[case]
    assert_clean(run)
    assert run.returncode == 2, run.stdout + run.stderr
    assert len(error_lines(run)) == 1 and expected in error_lines(run)[0], run.stderr
    assert not {"x.onnx", "i8.onnx", "run"} & {p.name for p in pred_target.iterdir()}  # nothing was done


# The bad paths a command checks before importing torch (and train's options): a typo is answered at once,
# not after ~1.5 s.
BEFORE_TORCH = ("colorize: a missing input", "colorize: a missing model", "train: a missing data folder",
                "train: a missing run to resume", "export: a missing checkpoint",
                "quantize: missing calibration pages", "quantize: a missing validation set",
                "eval: a missing prediction folder", "eval: a missing model")


@needs_cli
def test_a_missing_path_is_refused_before_torch_is_imported(tmp_path):
    """Run where ``import torch`` fails: each case still gives its one line and exit 2, so it never got there."""
    (tmp_path / "no_torch" / "torch").mkdir(parents=True)
    (tmp_path / "no_torch" / "torch" / "__init__.py").write_text("raise ImportError('torch imported')\n")
    (tmp_path / "work").mkdir()
    folder = make_pred_target(tmp_path / "work")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "no_torch")}
    options = [(["train", "--model", "unet", "--data", "set", "--out", "run", "--lr", "nan"], "--lr must be"),
               (["train", "--model", "unet", "--data", "set", "--out", "set/0.png"], "is an existing file")]
    for case, (args, expected) in [*((case, BAD_PATHS[case]) for case in BEFORE_TORCH), *enumerate(options)]:
        run = subprocess.run([str(BIN), *args], cwd=folder, capture_output=True, text=True, timeout=120, env=env,
                             stdin=subprocess.DEVNULL)
        assert run.returncode == 2 and error_lines(run) and expected in error_lines(run)[0], (case, run.stderr)
        assert "torch imported" not in run.stderr, (case, run.stderr)


@needs_cli
def test_eval_of_prediction_folders_runs_without_torch(pred_target):
    """Scoring --pred against --target on the CPU is numpy through and through: it runs where torch cannot be
    imported, with every file it writes, and gives the numbers of the torch metrics."""
    (pred_target / "no_torch" / "torch").mkdir(parents=True)
    (pred_target / "no_torch" / "torch" / "__init__.py").write_text("raise ImportError('torch imported')\n")
    args = ["eval", "--pred", "pred", "--target", "target", "--json", "--csv", "s.csv", "--grid", "g.png",
            "--report", "r.html"]
    env = {**os.environ, "PYTHONPATH": str(pred_target / "no_torch")}
    run = subprocess.run([str(BIN), *args], cwd=pred_target, capture_output=True, text=True, timeout=120, env=env,
                         stdin=subprocess.DEVNULL)
    assert run.returncode == 0 and "torch imported" not in run.stderr, run.stderr
    assert all((pred_target / name).stat().st_size > 0 for name in ("s.csv", "g.png", "r.html"))
    import torch
    from PIL import Image

    from models.toolbox.metrics import compute_all

    def batch(side: str):
        pages = [np.asarray(Image.open(pred_target / side / f"{i}.png").convert("RGB")) for i in range(2)]
        return torch.from_numpy(np.stack(pages)).permute(0, 3, 1, 2).double() / 255
    expected = {k: float(v.mean()) for k, v in compute_all(batch("pred"), batch("target")).items()}
    got = json.loads(run.stdout)["systems"]["pred"]
    assert all(abs(got[k] - expected[k]) < 1e-4 for k in ("mse", "psnr", "ssim", "ciede2000", "colorfulness"))


@needs_cli
def test_work_that_fails_once_under_way_exits_1(pred_target):
    """A page that cannot be read (colorize goes on with the others), nothing that could be scored (eval)."""
    (pred_target / "broken.png").write_bytes(b"not an image")
    (pred_target / "other").mkdir()
    save(pred_target / "other" / "x.png", color_page(64, 80))
    run, scored = mangacolor_together((("colorize", "broken.png", "set/0.png", "-o", "out"), pred_target),
                                      (("eval", "--pred", "pred", "--target", "other"), pred_target))
    assert_clean(run)
    assert run.returncode == 1 and (pred_target / "out" / "0.png").is_file(), run.stdout + run.stderr
    assert error_lines(run) == ["error: broken.png: not an image PIL can read"]
    run = scored
    assert_clean(run)
    assert run.returncode == 1, run.stdout + run.stderr


@needs_cli
def test_a_usage_error_of_typer_itself_exits_2_in_every_command(tmp_path):
    for command in ("colorize", "train", "export", "quantize", "eval", "models"):
        run = mangacolor(command, "--no-such-option", cwd=tmp_path)
        assert run.returncode == 2 and "Traceback" not in run.stderr, (command, run.stderr)


def test_the_exit_code_follows_the_kind_of_error_in_one_place():
    from models import CheckpointError
    from mangacolor_cli.commands.app import FAILED, USAGE, exit_code
    from mangacolor_cli.delivery.export import ExportCheckError
    from mangacolor_cli.errors import InputError, JobError, ModelError, OutputError, PageError, UsageError
    from trainer.data import DataError
    from trainer.loop import ConfigError, TrainingDataError, TrainingDiverged

    could_not_start = [UsageError, InputError, ModelError, OutputError, ConfigError, DataError, CheckpointError]
    failed_under_way = [PageError, JobError, ExportCheckError, TrainingDataError, TrainingDiverged, OSError]
    assert [exit_code(kind("x")) for kind in could_not_start] == [USAGE] * len(could_not_start)
    assert [exit_code(kind("x")) for kind in failed_under_way] == [FAILED] * len(failed_under_way)


def test_every_command_help_and_the_readme_state_the_one_exit_code_rule():
    import typer.main

    from mangacolor_cli.commands import app
    from mangacolor_cli.commands.app import EXIT_CODES

    commands = typer.main.get_command(app).commands
    assert set(commands) == {"colorize", "train", "export", "quantize", "eval", "models"}
    assert all(EXIT_CODES in (command.epilog or "") for command in commands.values())
    readme = " ".join((ROOT / "README.md").read_text().split())
    rules = readme[readme.index("## Scripts: JSON and exit codes"):]
    assert "`2`" in rules and "could not start" in rules and "`1`" in rules


# ---------------------------------------------------------------------- item 11: readable slow rates
def test_a_rate_under_one_a_second_reads_as_seconds_per_one():
    from models.toolbox.progress import format_rate

    assert format_rate(1 / 12.3, "steps") == "12.3 s/step"
    assert format_rate(0.5, "pages") == "2.0 s/page"
    assert format_rate(0.25) == "4.0 s/it"
    assert format_rate(2.5, "steps") == "2.50 steps/s"
    assert format_rate(1.0, "steps") == "1.00 steps/s"
    assert format_rate(0.0, "steps") == "- steps/s"  # nothing done yet: no rate, never "0.00"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("seconds_per_step, shown", [(12.3, "12.3 s/step"), (0.25, "4.00 steps/s")])
def test_a_slow_training_progress_line_shows_seconds_per_step(monkeypatch, seconds_per_step, shown):
    import models.toolbox.progress as progress

    clock = FakeClock()
    monkeypatch.setattr(progress.time, "perf_counter", clock)
    buf = io.StringIO()
    bar = progress.ProgressBar(10, description="unet", unit="steps", plain_every=0,
                               console=Console(file=buf, force_terminal=False))
    for _ in range(3):
        clock.now += seconds_per_step
        bar.update(1, {"l1": 0.5})
    bar.close()
    lines = buf.getvalue().splitlines()
    assert lines and all(shown in line for line in lines), lines
    assert not any("0.00 steps/s" in line for line in lines)


def test_a_slow_rate_beside_the_terminal_bar_is_seconds_per_page(monkeypatch):
    import models.toolbox.progress as progress

    clock = FakeClock()
    monkeypatch.setattr(progress.time, "perf_counter", clock)
    bar = progress.ProgressBar(4, description="coloring", unit="pages", transient=True,
                               console=Console(file=io.StringIO(), force_terminal=True, width=100))
    clock.now += 30.0
    bar.update(1)
    assert bar._rich.tasks[0].fields["status"] == "30.0 s/page"
    bar.close()
