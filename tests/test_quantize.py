"""int8 behind the quality gate (delivery.quantize, `mangacolor quantize`): written only when it passes.

A tiny random model on tiny pages: the gate's arithmetic and the files, not quality (that is measured
on the validation sets, docs/PERFORMANCE.md).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import models
from mangacolor_cli.commands import app
from mangacolor_cli.delivery import quantize as q
from mangacolor_cli.engine.backends import export_onnx, read_onnx_meta
from mangacolor_cli.engine.colorizer import Colorizer
from mangacolor_cli.errors import UsageError
from tests.conftest import draw_page


@pytest.fixture(scope="module")
def fp32_model(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("q") / "tiny.onnx"
    return export_onnx(models.create("unet", preset="tiny").eval(), path, working_size=32)


@pytest.fixture(scope="module")
def val_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("val")
    (root / "bw").mkdir()
    (root / "color").mkdir()
    for i in range(3):
        gray = draw_page(48, 64, i)
        gray.save(root / "bw" / f"{i}.png")
        color = np.asarray(gray.convert("RGB")).copy()
        color[..., 0] = np.minimum(255, color[..., 0].astype(int) + 30)
        Image.fromarray(color).save(root / "color" / f"{i}.png")
    return root


def test_a_passing_model_is_written_with_its_measurement(fp32_model, val_set, tmp_path):
    out = tmp_path / "int8.onnx"
    result = q.quantize_int8(fp32_model, out, [val_set], val_set, tolerance=100.0, pages=2)
    assert result.passed and result.path == out and result.calibration_pages == 2
    meta = read_onnx_meta(out)
    assert meta["precision"] == "int8" and meta["quantized_from"] == "tiny.onnx"
    gate = json.loads(meta["quality_gate"])
    assert gate["passed"] and set(gate["sets"]) == {val_set.name}
    assert set(gate["sets"][val_set.name]) == {"fp32", "int8"}
    run = Colorizer(out)
    assert run.precision == "int8" and "int8" in run.describe()
    assert run.colorize(np.asarray(draw_page(48, 64))).shape == (64, 48, 3)


def test_a_failing_model_is_not_written(fp32_model, val_set, tmp_path):
    out = tmp_path / "int8.onnx"
    result = q.quantize_int8(fp32_model, out, [val_set], val_set, tolerance=-100.0, pages=2)
    assert not result.passed and result.path is None and not out.exists()
    assert "tolerance" in result.describe()
    assert not list(tmp_path.iterdir())  # no temp file left beside it


def test_bad_arguments(fp32_model, val_set, tmp_path):
    with pytest.raises(UsageError, match="float32 source"):
        q.quantize_int8(fp32_model, fp32_model, [val_set], val_set)
    with pytest.raises(UsageError, match="--data"):
        q.quantize_int8(fp32_model, tmp_path / "x.onnx", [], val_set)
    with pytest.raises(UsageError, match=r"\.onnx model"):
        q.quantize_int8(tmp_path / "m.pt", tmp_path / "x.onnx", [val_set], val_set)


def test_cli_refuses_in_one_line_and_writes_nothing(fp32_model, val_set, tmp_path):
    runner = CliRunner()
    args = ["quantize", str(fp32_model), "-o", str(tmp_path / "i8.onnx"), "--data", str(val_set),
            "--calibrate", str(val_set), "--pages", "2"]
    refused = runner.invoke(app, args + ["--tolerance", "0", "--json"])
    if refused.exit_code == 0:  # int8 scored at most fp32's on these pages: the gate passed honestly
        assert json.loads(refused.stdout)["passed"]
    else:
        assert refused.exit_code == 1 and "int8 refused, nothing written" in refused.output
        assert "Traceback" not in refused.output and not (tmp_path / "i8.onnx").exists()
    passed = runner.invoke(app, args + ["--tolerance", "100"])
    assert passed.exit_code == 0, passed.output
    assert "wrote" in passed.output and (tmp_path / "i8.onnx").exists()
    missing = runner.invoke(app, ["quantize", str(fp32_model), "-o", str(tmp_path / "j.onnx"), "--data",
                                  str(val_set), "--calibrate", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "nowhere" in missing.output and "Traceback" not in missing.output


def test_calibration_pages_spread_over_the_source(val_set, tmp_path):
    import zipfile
    pages = q.calibration_pages(val_set, limit=16)  # its bw/: all three, gray
    assert len(pages) == 3 and all(p.pixels.dtype == np.uint8 and p.pixels.ndim == 2 for p in pages)
    from mangacolor_cli.evaluation.scoring import derive_gray
    color = q.calibration_pages(val_set / "color", limit=1)[0].pixels  # a color page: eval's gray of it
    assert np.array_equal(color, derive_gray(np.asarray(Image.open(val_set / "color" / "0.png").convert("RGB"))))
    cbz = tmp_path / "ch.cbz"
    with zipfile.ZipFile(cbz, "w") as z:
        for i in range(10):
            z.writestr(f"{i:03d}.png", (val_set / "color" / f"{i % 3}.png").read_bytes())
    assert len(q.calibration_pages(cbz, limit=16)) == 10  # every page when there are fewer than asked
    assert len(q.calibration_pages(cbz, limit=4)) == 4
