"""Issue 24.3: `mangacolor eval` scores each page as it arrives, its progress covers all the work (gray
baseline, previews, report files), each model runs once per page, and the table reads whole at 80 columns."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from mangacolor_cli.commands import app
from mangacolor_cli.engine.colorizer import Colorizer
from mangacolor_cli.evaluation import reports
from mangacolor_cli.evaluation import scoring as ev
from models.toolbox import metrics

from .test_eval import _noisy, _photo, _save, tiny_checkpoint  # noqa: F401 (a fixture)

BIN = Path(sys.executable).parent / "mangacolor"


@pytest.fixture
def pred_target(tmp_path):
    pred, target = tmp_path / "pred", tmp_path / "target"
    for i in range(4):
        _save(target / f"p{i}.png", _photo(i))
        _save(pred / f"p{i}.png", _noisy(_photo(i), i))
    return pred, target


@pytest.fixture
def events(monkeypatch):
    """Every metric computation and progress step, in order."""
    log: list[tuple] = []
    score = metrics.TargetMetrics.score

    def logged_score(self, pred):
        log.append(("score",))
        return score(self, pred)

    monkeypatch.setattr(metrics.TargetMetrics, "score", logged_score)
    return log


def test_every_page_is_scored_before_its_progress_step_and_nothing_after_the_last(pred_target, events):
    def progress(label, done, total):
        events.append(("progress", done, total))

    result = ev.evaluate_dirs(*pred_target, samples=2, device=torch.device("cpu"), progress=progress)
    steps = [e for e in events if e[0] == "progress"]
    assert steps[0] == ("progress", 0, 4) and steps[-1] == ("progress", 4, 4)
    assert events[-1] == steps[-1], "no metric is computed once the bar is full"
    # Each page scores its prediction and the gray baseline, then the bar moves on.
    assert [e[0] for e in events] == ["progress"] + ["score", "score", "progress"] * 4
    assert len(result.keys) == 4 and len(result.sample_keys) == 2 and set(result.previews) == set(result.sample_keys)


def test_a_sample_picked_in_place_of_a_failed_page_is_counted_on_the_bar(pred_target):
    pred, target = pred_target
    _save(pred / "p3.png", _photo(3)[:20])  # p3 fails: the samples become p0 and p2, p2 read again
    steps = []
    result = ev.evaluate_dirs(pred, target, samples=2, device=torch.device("cpu"),
                              progress=lambda label, done, total: steps.append((done, total)))
    assert result.sample_keys == ["p0", "p2"] and set(result.previews) == {"p0", "p2"}
    assert steps[-2:] == [(4, 4), (5, 5)]


def test_each_model_colors_each_page_once_samples_and_thumbnails_included(tmp_path, tiny_checkpoint, monkeypatch,
                                                                           events):
    for i in range(3):
        color = _photo(i)
        _save(tmp_path / "set" / "color" / f"page{i}.png", color)
        _save(tmp_path / "set" / "bw" / f"page{i}.png", ev.derive_gray(color))
    colored = []
    colorize = Colorizer.colorize

    def counted(self, pages, *args, **kwargs):
        colored.extend(pages)
        return colorize(self, pages, *args, **kwargs)

    monkeypatch.setattr(Colorizer, "colorize", counted)
    steps = []
    result = ev.evaluate_models([tiny_checkpoint], tmp_path / "set", size=32, device="cpu", batch_size=2, samples=2,
                                progress=lambda label, done, total: steps.append((done, total)))
    assert len(colored) == 3
    assert len(result.sample_keys) == 2 and len(result.thumbs) == 3
    assert steps[0] == (0, 3) and steps[-1] == (3, 3)
    assert sum(e[0] == "score" for e in events) == 3 * 2  # the model and the gray baseline, once a page


def test_pages_are_read_only_a_few_ahead_of_the_scoring():
    read, scored = [], []
    lock = threading.Lock()

    def load(i):
        with lock:
            read.append(i)
            assert len(read) - len(scored) <= 6, "the whole set read into memory ahead of the metrics"
        return i

    for i in ev._threaded(load, range(40)):
        with lock:
            scored.append(i)
    assert scored == list(range(40))


def test_cli_keeps_its_bar_up_until_the_report_files_are_written(pred_target, tmp_path, monkeypatch):
    import models.toolbox.progress

    seen = []

    class RecordingBar:
        def __init__(self, total, description="", **kwargs):
            seen.append(("open", description))

        def set_total(self, total, completed=None):
            seen.append(("step", completed, total))

        def set_status(self, text):
            seen.append(("status", text))

        def close(self):
            seen.append(("close", (tmp_path / "r.html").exists(), (tmp_path / "g.png").exists()))

    monkeypatch.setattr(models.toolbox.progress, "ProgressBar", RecordingBar)
    res = CliRunner().invoke(app, ["eval", "--pred", str(pred_target[0]), "--target", str(pred_target[1]),
                                   "--device", "cpu", "--grid", str(tmp_path / "g.png"),
                                   "--report", str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output
    assert seen[0] == ("open", "scoring pred") and ("step", 4, 4) in seen
    assert seen[-3:] == [("status", "writing g.png"), ("status", "writing r.html"), ("close", True, True)]
    assert res.output.index("gray baseline") < res.output.index("wrote")


def _result_with(systems: list[str]) -> ev.EvalResult:
    row = {"n": 12, "mse": 0.04031, "psnr": 14.09, "ssim": 0.62671, "ciede2000": 11.31, "colorfulness": 100.93,
           "colorfulness_target": 76.47}
    summary = {s: dict(row, pages_per_s=3.71) for s in systems}
    summary[ev.GRAY_BASELINE] = dict(row, colorfulness=0.0)
    return ev.EvalResult(systems=[*systems, ev.GRAY_BASELINE], keys=[], scores={}, summary=summary,
                         description="/data/pages/val_openmoji (40 pages, gray input from bw/ pages, working size 320)")


def _rendered(result: ev.EvalResult, width: int) -> str:
    console = Console(width=width, record=True, file=open(os.devnull, "w"))
    console.print(reports.results_table(result))
    return console.export_text()


@pytest.mark.parametrize("width", [80, 60])
def test_table_shows_every_header_and_number_whole_on_a_narrow_console(width):
    text = _rendered(_result_with(["default", "default (flat, vivid)"]), width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "…" not in text
    for whole in ("MSE↓", "PSNR↑", "SSIM↑", "ΔE2000↓", "colorful.", "pages/s", "0.0403", "14.09", "0.6267",
                  "11.31", "100.93", "3.71", "12 pages scored; the targets' colorfulness: 76.47"):
        assert whole in text, whole
    assert text.count("ΔE2000↓") == 1
    assert ("system" in text) and text.count("┏") == (1 if width == 80 else 2)  # 60 columns: two tables


def test_table_reads_whole_at_80_columns_in_a_fresh_process(pred_target):
    pred, target = pred_target
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["COLUMNS"] = "80"
    run = subprocess.run([str(BIN), "eval", "--pred", str(pred), "--target", str(target), "--device", "cpu"],
                         capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in run.stdout
    header = next(line for line in lines if "system" in line)
    assert re.findall(r"[^┃│ ]+", header) == ["system", "MSE↓", "PSNR↑", "SSIM↑", "ΔE2000↓", "colorful.",
                                              "pages/s"]
    expected = ev.evaluate_dirs(pred, target, samples=0, device=torch.device("cpu")).summary
    for system in ("pred", ev.GRAY_BASELINE):
        row = next(line for line in lines if line.startswith(f"│ {system} "))
        cells = [c.strip() for c in row.strip("│").split("│")]
        assert cells == [system, *(reports._fmt(expected[system][c], c) for c in reports.TABLE_METRICS),
                         "—"], row


def test_the_gpu_way_of_scoring_a_page_equals_the_cpu_way():
    target = _photo(0)
    preds = {"model": _noisy(target, 1), ev.GRAY_BASELINE: ev.derive_gray(target)}
    on_tensors = ev.tensor_scores(target, preds, torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    on_target = metrics.TargetMetrics(target)
    for system, pred in preds.items():
        exact = on_target.score(pred)
        for key in metrics.METRICS:
            # compute_all reads 8-bit values as float32 /255 before its float64 math: 1e-6 apart at most.
            assert on_tensors[system][key] == pytest.approx(exact[key], abs=1e-5), (system, key)
