"""The benchmark scripts run (a smoke test on a tiny model: no speed is asserted, only that every
section produces its rows; an e2e section once broke unnoticed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import models
from mangacolor_cli.engine.backends import export_onnx
from tests.conftest import draw_page

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench_onnx(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("bench") / "tiny.onnx"
    return export_onnx(models.create("unet", preset="tiny").eval(), path, working_size=64)


@pytest.mark.slow  # runs every benchmark section in a subprocess: ~10 s
def test_bench_colorize_every_section_gives_rows(bench_onnx, tmp_path):
    out = tmp_path / "results.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_colorize.py"), "--model", str(bench_onnx),
                          "--pages", "2", "--repeats", "1", "--sections", "io,model,e2e,compose,whole",
                          "--backends", "onnx", "--precisions", "fp32", "--batch-sizes", "1",
                          "--e2e-batch-sizes", "1", "--whole-models", str(bench_onnx), "--whole-pages", "1",
                          "--workdir", str(tmp_path / "work"), "--out", str(out)],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["args"]["size"] == 64  # the model's own working size
    assert all("pages_per_s" in row for row in report["io"] + report["model_alone"] + report["e2e"]), report["e2e"]
    assert {row["fill"] for row in report["compose"]} == {"soft", "flat"}
    (whole,) = report["whole"]
    assert "error" not in whole and 0 < whole["startup_s"] < whole["seconds"]


@pytest.mark.slow  # runs a benchmark script (the timeline tracer) in a subprocess, beside an ONNX export: ~1.3 s
def test_trace_colorize_prints_the_timeline(bench_onnx, tmp_path):
    (tmp_path / "in").mkdir()
    draw_page(96, 128).save(tmp_path / "in" / "001.png")
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "trace_colorize.py"), "colorize",
                          str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(bench_onnx)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    for stage in ("load_session", "_ColorizeRun._decode", "Colorizer.predict", "Colorizer.compose", "command done"):
        assert stage in run.stderr, run.stderr
    assert (tmp_path / "out" / "001.png").exists()


def test_bench_model_lightness_prints_each_way_beside_the_gray_page(tmp_path):
    """The model-lightness bound runs on a paired set with the default model and prints its four ways."""
    for sub in ("bw", "color"):
        (tmp_path / "set" / sub).mkdir(parents=True)
    gray = np.asarray(draw_page(seed=3).convert("L"), np.float32) / 255.0
    Image.fromarray(np.uint8(gray * 255)).save(tmp_path / "set" / "bw" / "001.png")
    tint = np.dstack([gray, gray * 0.8, gray * 0.5])  # an orange page as the target
    Image.fromarray(np.uint8(tint * 255)).save(tmp_path / "set" / "color" / "001.png")
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_model_lightness.py"), "--pages", "1",
                          str(tmp_path / "set")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    line = run.stdout.strip().splitlines()[-1]
    assert line.startswith("set (safe, 1 pages): gray page ")
    for way in ("| model ", "| target L ", "| white at L<=70 "):
        assert way in line


def test_bench_hint_cap_bounds_the_auc_by_the_trapezoid_of_the_gray_page_then_the_perfect_matcher():
    """The least Hint-AUC: the gray page's score at a = 0, the perfect matcher's at every a > 0."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_hint_cap
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert bench_hint_cap.bound(10.0, 4.0) == pytest.approx(0.005 * (10.0 + 4.0) + 0.99 * 4.0)
    assert bench_hint_cap.bound(5.0, 5.0) == pytest.approx(5.0)
