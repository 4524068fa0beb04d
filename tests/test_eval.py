"""`mangacolor eval`: pairing, skimage-equal scores, the gray baseline row and the report files (docs/ARCHITECTURE.md, "Metrics")."""

from __future__ import annotations

import csv
import functools
import json
import re

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from typer.testing import CliRunner

import models
from mangacolor_cli.commands import app
from mangacolor_cli.engine.colorizer import Colorizer
from mangacolor_cli.errors import InputError, UsageError
from mangacolor_cli.evaluation import reports
from mangacolor_cli.evaluation import scoring as ev

H, W = 40, 52


@functools.lru_cache(maxsize=None)  # skimage decodes its 512-pixel photos from disk: once, not 137 times
def _photo(i: int) -> np.ndarray:
    src = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket()][i % 4]
    return np.asarray(Image.fromarray(src).resize((W, H), Image.BILINEAR))


def _noisy(img: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img.astype(int) + rng.integers(-25, 26, img.shape), 0, 255).astype(np.uint8)


def _save(path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


def _skimage_scores(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    p = (np.repeat(pred[..., None], 3, axis=2) if pred.ndim == 2 else pred).astype(np.float64) / 255
    t = target.astype(np.float64) / 255
    return {"psnr": peak_signal_noise_ratio(t, p, data_range=1.0),
            "ssim": structural_similarity(t, p, channel_axis=-1, data_range=1.0),
            "ciede2000": float(deltaE_ciede2000(rgb2lab(t), rgb2lab(p)).mean()),
            "mse": float(((p - t) ** 2).mean())}


def _assert_scores(got: dict[str, float], expected: dict[str, float]) -> None:
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-4), key


@pytest.fixture
def pred_target(tmp_path):
    """pred/ and target/ with 3 good pairs (one nested, one .jpg against .png), one page missing on
    each side and one pair of different sizes."""
    pred, target = tmp_path / "pred", tmp_path / "target"
    for i, rel in enumerate(["p01", "p02", "ch1/p10"]):
        _save(target / f"{rel}.png", _photo(i))
        _save(pred / f"{rel}.png", _noisy(_photo(i), i))
    (pred / "p02.png").rename(pred / "p02.PNG")
    _save(target / "only_target.png", _photo(3))
    _save(pred / "ch1/only_pred.png", _photo(3))
    _save(target / "small.png", _photo(0))
    _save(pred / "small.png", _photo(0)[:30, :30])
    return pred, target


def test_pred_target_scores_equal_skimage(pred_target):
    pred, target = pred_target
    result = ev.evaluate_dirs(pred, target, device=torch.device("cpu"))
    assert result.keys == ["ch1/p10", "p01", "p02"]
    for key, stem in [("p01", "p01.png"), ("p02", "p02.PNG"), ("ch1/p10", "ch1/p10.png")]:
        expected = _skimage_scores(np.asarray(Image.open(pred / stem)), np.asarray(Image.open(target / f"{key}.png")))
        _assert_scores(result.scores["pred"][key], expected)
    means = result.summary["pred"]
    assert means["n"] == 3
    assert means["ciede2000"] == pytest.approx(np.mean([result.scores["pred"][k]["ciede2000"] for k in result.keys]))


def test_missing_pairs_are_listed_on_both_sides(pred_target):
    result = ev.evaluate_dirs(*pred_target, device=torch.device("cpu"))
    assert result.missing_predictions == ["only_target"]
    assert result.missing_targets == ["ch1/only_pred"]


def test_size_mismatch_is_an_error_for_that_pair_only(pred_target):
    result = ev.evaluate_dirs(*pred_target, device=torch.device("cpu"))
    assert [k for k, _ in result.errors] == ["small"]
    message = result.errors[0][1]
    assert "small.png" in message and "30x30" in message and f"{W}x{H}" in message
    assert "small" not in result.scores["pred"] and len(result.keys) == 3


def test_gray_baseline_equals_scores_of_the_gray_input(pred_target):
    pred, target = pred_target
    result = ev.evaluate_dirs(pred, target, device=torch.device("cpu"))
    assert result.systems == ["pred", ev.GRAY_BASELINE]
    for key in result.keys:
        color = np.asarray(Image.open(target / f"{key}.png"))
        gray = ev.derive_gray(color)
        assert gray.shape == (H, W)
        _assert_scores(result.scores[ev.GRAY_BASELINE][key], _skimage_scores(gray, color))
        assert result.scores[ev.GRAY_BASELINE][key]["colorfulness"] == pytest.approx(0.0, abs=1e-9)


def test_same_page_under_two_extensions_is_an_error(tmp_path):
    _save(tmp_path / "a" / "p1.png", _photo(0))
    _save(tmp_path / "a" / "p1.jpg", _photo(0))
    _save(tmp_path / "b" / "p1.png", _photo(0))
    with pytest.raises(InputError, match="p1"):
        ev.evaluate_dirs(tmp_path / "a", tmp_path / "b")


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "unet_tiny.pt"
    models.save_checkpoint(path, models.create("unet", preset="tiny"), meta={"working_size": 32})
    return path


@pytest.fixture
def paired_set(tmp_path):
    root = tmp_path / "evalset"
    for i in range(3):
        color = _photo(i)
        _save(root / "color" / f"page{i}.png", color)
        _save(root / "bw" / f"page{i}.png", ev.derive_gray(color))
    _save(root / "color" / "no_bw.png", _photo(3))
    return root


def test_models_on_a_paired_set_score_like_the_colorizer(paired_set, tiny_checkpoint):
    result = ev.evaluate_models([tiny_checkpoint], paired_set, size=32, device="cpu")
    assert result.systems == ["unet_tiny", ev.GRAY_BASELINE]
    assert result.keys == ["page0", "page1", "page2"]
    assert result.missing_predictions == ["no_bw"]
    colorizer = Colorizer(str(tiny_checkpoint), device="cpu", size=32, recolor=True)
    for key in result.keys:
        gray = np.asarray(Image.open(paired_set / "bw" / f"{key}.png"))
        color = np.asarray(Image.open(paired_set / "color" / f"{key}.png"))
        _assert_scores(result.scores["unet_tiny"][key], _skimage_scores(colorizer.colorize([gray])[0], color))
        _assert_scores(result.scores[ev.GRAY_BASELINE][key], _skimage_scores(gray, color))
    assert result.summary["unet_tiny"]["pages_per_s"] > 0
    assert "pages_per_s" not in result.summary[ev.GRAY_BASELINE]


def test_color_only_folder_derives_gray_by_luminance_or_a_fixed_manga_look(paired_set, tiny_checkpoint):
    color_dir = paired_set / "color"
    plain = ev.evaluate_models([tiny_checkpoint], color_dir, size=32, device="cpu")
    assert len(plain.keys) == 4 and not plain.missing_predictions
    color = np.asarray(Image.open(color_dir / "page1.png"))
    _assert_scores(plain.scores[ev.GRAY_BASELINE]["page1"], _skimage_scores(ev.derive_gray(color), color))
    look_a = ev.evaluate_models([tiny_checkpoint], color_dir, size=32, device="cpu", manga_look=True)
    look_b = ev.evaluate_models([tiny_checkpoint], color_dir, size=32, device="cpu", manga_look=True)
    assert look_a.scores == look_b.scores
    assert look_a.scores[ev.GRAY_BASELINE] != plain.scores[ev.GRAY_BASELINE]


def test_two_models_give_two_rows_plus_the_baseline(paired_set, tiny_checkpoint, tmp_path):
    from mangacolor_cli.delivery.export import export_checkpoint

    onnx_path = export_checkpoint(tiny_checkpoint, tmp_path / "unet_tiny.onnx").path
    result = ev.evaluate_models([tiny_checkpoint, onnx_path], paired_set, size=32, device="cpu")
    assert result.systems == ["unet_tiny", str(onnx_path), ev.GRAY_BASELINE]
    a, b = result.summary["unet_tiny"], result.summary[str(onnx_path)]
    assert a["ciede2000"] == pytest.approx(b["ciede2000"], abs=0.05)


def test_report_files_are_written_and_self_contained(pred_target, tmp_path):
    pred, target = pred_target
    result = ev.evaluate_dirs(pred, target, samples=2, device=torch.device("cpu"))
    run = tmp_path / "run"
    run.mkdir()
    log = [{"kind": "baseline", "step": 0, "ciede2000": 12.0}]
    log += [{"kind": "train", "step": s, "losses": {"loss_g": 1.0 / (s + 1)}} for s in range(5)]
    log += [{"kind": "val", "step": s, "ciede2000": 20.0 - s} for s in (2, 4)]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in log) + "\nnot json\n")

    rows = list(csv.DictReader(open(reports.write_csv(result, tmp_path / "per_image.csv"))))
    assert len(rows) == 3 * 2 and {r["system"] for r in rows} == {"pred", ev.GRAY_BASELINE}
    assert float(next(r for r in rows if r["page"] == "p01" and r["system"] == "pred")["psnr"]) == pytest.approx(
        result.scores["pred"]["p01"]["psnr"])

    reports.write_json(result, tmp_path / "summary.json")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["systems"]) == {"pred", ev.GRAY_BASELINE}
    assert summary["missing_predictions"] == ["only_target"] and summary["errors"][0]["page"] == "small"

    grid = Image.open(reports.write_grid(result, tmp_path / "grid.png"))
    assert grid.height > 2 * ev.PREVIEW_HEIGHT  # two sample rows

    page = reports.write_report(result, tmp_path / "report.html", run_dir=run).read_text()
    assert not re.search(r"(?:src|href)\s*=\s*['\"](?!data:)", page), "every image is embedded"
    assert "http://" not in page and "https://" not in page and "<link" not in page
    assert page.count("<tr class='page'>") == len(result.keys) == 3
    assert page.count("<polyline") == 2 and "train loss_g" in page and "val ciede2000" in page
    assert "stroke-dasharray" in page and "gray 12" in page  # the baseline drawn on the val chart
    assert "<script>" in page and "sortTable" in page
    assert "only_target" in page and "30x30" in page


def test_cli_eval_prints_the_table_and_json_to_stdout(pred_target):
    pred, target = pred_target
    res = CliRunner().invoke(app, ["eval", "--pred", str(pred), "--target", str(target), "--json",
                                   "--device", "cpu"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["systems"]["pred"]["n"] == 3
    assert summary["systems"][ev.GRAY_BASELINE]["colorfulness"] == 0.0


def test_cli_eval_lists_missing_pairs_and_bad_usage_is_one_line(pred_target):
    pred, target = pred_target
    runner = CliRunner()
    res = runner.invoke(app, ["eval", "--pred", str(pred), "--target", str(target), "--device", "cpu"])
    assert res.exit_code == 0
    assert "gray baseline" in res.output and "only_target" in res.output and "ch1/only_pred" in res.output
    bad = runner.invoke(app, ["eval", "--pred", str(pred)])
    assert bad.exit_code == 2 and "--target" in bad.output and "Traceback" not in bad.output
    missing = runner.invoke(app, ["eval", "--pred", str(pred / "nope"), "--target", str(target)])
    assert missing.exit_code == 2 and "nope" in missing.output  # a missing folder: the command could not start


def test_unknown_or_missing_metric_device_is_a_usage_error():
    with pytest.raises(UsageError, match="--device"):
        ev.metric_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA GPU"):
            ev.metric_device("cuda")


def test_transparent_pages_are_scored_on_white_paper(tmp_path):
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[10:30, 10:30] = (200, 30, 30, 255)  # an opaque red square; the rest transparent black
    _save(tmp_path / "pred" / "p.png", rgba)
    on_white = np.full((H, W, 3), 255, np.uint8)
    on_white[10:30, 10:30] = (200, 30, 30)
    _save(tmp_path / "target" / "p.png", on_white)
    result = ev.evaluate_dirs(tmp_path / "pred", tmp_path / "target", device=torch.device("cpu"))
    assert result.scores["pred"]["p"]["mse"] == 0


def test_several_eval_sets_are_scored_each_as_its_own_row_group(paired_set, tiny_checkpoint, tmp_path):
    other = tmp_path / "val_other"
    for i in range(2):
        color = _photo(i + 4)
        _save(other / "color" / f"p{i}.png", color)
        _save(other / "bw" / f"p{i}.png", ev.derive_gray(color))
    out = tmp_path / "sets.json"
    res = CliRunner().invoke(app, ["eval", "-m", str(tiny_checkpoint), "--data", str(paired_set), "--data", str(other),
                                   "--size", "32", "--device", "cpu", "--json-out", str(out),
                                   "--grid", str(tmp_path / "grid.png")])
    assert res.exit_code == 0, res.output
    assert "set evalset" in res.output and "set val_other" in res.output
    sets = json.loads(out.read_text())["sets"]
    assert list(sets) == ["evalset", "val_other"]
    assert (tmp_path / "grid_evalset.png").exists() and (tmp_path / "grid_val_other.png").exists()
