"""Hints under the Hint-AUC protocol (mangacolor_cli/evaluation/hint_protocol.py) and the classic baseline they
are judged against, Levin et al. 2004 (mangacolor_cli/evaluation/levin.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mangacolor_cli.errors import UsageError
from mangacolor_cli.evaluation import hint_protocol as hp
from mangacolor_cli.evaluation.levin import levin_colorize

ROOT = Path(__file__).resolve().parent.parent


def two_areas(h: int = 120, w: int = 160) -> np.ndarray:
    """White paper split by a black vertical line into a left and a right area."""
    gray = np.full((h, w), 255, np.uint8)
    gray[:, w // 2 - 2:w // 2 + 2] = 0
    return gray


def test_levin_spreads_each_scribble_over_its_area_up_to_the_line():
    gray = two_areas()
    hint = np.zeros(gray.shape + (3,), np.uint8)
    mask = np.zeros(gray.shape, bool)
    mask[50:60, 20:40] = mask[50:60, 120:140] = True
    hint[50:60, 20:40] = (200, 40, 40)
    hint[50:60, 120:140] = (40, 40, 200)
    out = levin_colorize(gray, hint, mask).astype(int)
    assert out.shape == gray.shape + (3,)
    left, right = out[:, 5:70].mean(axis=(0, 1)), out[:, 90:155].mean(axis=(0, 1))
    assert left[0] > left[2] + 10 and right[2] > right[0] + 10   # red left of the line, blue right of it
    assert out[:, 79:81].mean(axis=-1).max() < 40                # Levin keeps the page's Y: ink stays dark


def test_levin_without_scribbles_gives_the_gray_page():
    gray = two_areas()
    out = levin_colorize(gray, np.zeros(gray.shape + (3,), np.uint8), np.zeros(gray.shape, bool))
    assert (out == gray[..., None]).all()


def fake_hints(target: np.ndarray):
    """Scribbles of the target's own colors: at ratio a, the first a of the page's columns in blocks."""
    def at(alpha: float):
        mask = np.zeros(target.shape[:2], bool)
        mask[::7, : int(round(alpha * target.shape[1]))] = True
        return target, mask
    return at


def mean_abs(pred: np.ndarray, target: np.ndarray) -> float:
    return float(np.abs(pred.astype(float) - target.astype(float)).mean())


def test_protocol_scores_every_system_at_every_ratio_beside_the_gray_page():
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(2):
        target = np.zeros((40, 50, 3), np.uint8)
        target[:] = rng.integers(0, 255, 3)
        gray = np.full((40, 50), 128, np.uint8)
        pairs.append((f"{i}", gray, target))
    systems = {"oracle": lambda gray, color, mask: np.broadcast_to(color[0, 0] if mask.any() else 128,
                                                                    gray.shape + (3,)).astype(np.uint8),
               "never": lambda gray, color, mask: np.repeat(gray[..., None], 3, axis=2)}
    result = hp.evaluate_hint_protocol(pairs, systems, fake_hints, mean_abs, alphas=hp.ALPHAS, name="set")
    assert set(result.curves) == {"oracle", "never", hp.GRAY}
    assert list(result.curves["oracle"]) == list(hp.ALPHAS)
    # the gray row and a system that ignores the hints score the same at every ratio
    assert result.curves["never"] == result.curves[hp.GRAY]
    assert len(set(result.curves[hp.GRAY].values())) == 1
    # with a hint the oracle is exact: its curve drops to 0 from the first ratio that draws one
    assert result.curves["oracle"][1.0] == 0.0 and result.curves["oracle"][0.0] > 0
    auc = result.auc
    assert auc[hp.GRAY] == pytest.approx(result.curves[hp.GRAY][0.0])
    assert 0 < auc["oracle"] < auc[hp.GRAY]
    assert result.to_dict()["hint_auc"] == auc


def test_trapezoid_auc_is_the_area_under_the_curve():
    assert hp.trapezoid_auc({0.0: 1.0, 0.5: 1.0, 1.0: 1.0}) == pytest.approx(1.0)
    assert hp.trapezoid_auc({0.0: 0.0, 1.0: 2.0}) == pytest.approx(1.0)


def test_hint_ratios_must_rise_from_0_to_1():
    with pytest.raises(UsageError):
        hp.evaluate_hint_protocol([], {}, fake_hints, mean_abs, alphas=(0.5, 1.0))


def test_eval_hint_protocol_without_hintauc_says_how_to_install_it(tmp_path):
    """In a fresh process whose ``hintauc`` cannot be imported: one line naming the install command, exit 2."""
    for side in ("bw", "color"):
        (tmp_path / "set" / side).mkdir(parents=True)
        Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(tmp_path / "set" / side / "1.png")
    blocker = tmp_path / "blocker" / "hintauc"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('hintauc is not installed')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "blocker"))
    run = subprocess.run([str(Path(sys.executable).parent / "mangacolor"), "eval", "-m", "default", "--data",
                          str(tmp_path / "set"), "--hint-protocol", "dht"], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=120)
    assert run.returncode == 2, run.stdout + run.stderr
    text = run.stdout + run.stderr
    assert "Traceback" not in text and "pip install --no-deps hintauc" in text


def test_eval_hint_protocol_on_a_small_set_with_hintauc(tmp_path):
    pytest.importorskip("hintauc")
    pytest.importorskip("cv2")
    rng = np.random.default_rng(1)
    for side in ("bw", "color"):
        (tmp_path / "set" / side).mkdir(parents=True)
    for i in range(2):
        target = np.full((96, 80, 3), 255, np.uint8)
        target[10:50, 10:70] = rng.integers(0, 255, 3)
        target[55:90, 10:70] = rng.integers(0, 255, 3)
        gray = np.full((96, 80), 255, np.uint8)
        gray[8:10, 8:72] = gray[50:55, 8:72] = gray[90:92, 8:72] = 0
        Image.fromarray(target).save(tmp_path / "set" / "color" / f"{i}.png")
        Image.fromarray(gray).save(tmp_path / "set" / "bw" / f"{i}.png")
    # --size 64: the protocol's bookkeeping is under test, not the model's colors (at its 320: 10 s)
    result = hp.evaluate_models_with_hints(["default"], tmp_path / "set", size=64, cache_dir=tmp_path / "cache")
    assert result.pages == 2 and {"default", hp.LEVIN, hp.GRAY} <= set(result.curves)
    assert list((tmp_path / "cache").glob("*.npz"))
    again = hp.evaluate_models_with_hints(["default"], tmp_path / "set", size=64, cache_dir=tmp_path / "cache")
    assert again.curves == result.curves


def test_hint_files_that_match_no_page_are_named_in_a_warning(tmp_path):
    pages = tmp_path / "pages"
    pages.mkdir()
    page = np.full((120, 90), 255, np.uint8)
    page[10:110, 10:14] = page[10:110, 76:80] = page[10:14, 10:80] = page[106:110, 10:80] = 0
    for name in ("001.png", "002.png"):
        Image.fromarray(page).save(pages / name)
    hints = tmp_path / "hints"
    hints.mkdir()
    dot = np.zeros((120, 90, 4), np.uint8)
    dot[50:60, 40:50] = (200, 40, 40, 255)
    Image.fromarray(dot).save(hints / "001.png")
    Image.fromarray(dot).save(hints / "01.png")       # a misspelled page name: colors nothing
    run = subprocess.run([str(Path(sys.executable).parent / "mangacolor"), "colorize", str(pages), "-o",
                          str(tmp_path / "out"), "--hints", str(hints)], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning:") and "hint file" in line]
    assert len(warnings) == 1 and "01.png" in warnings[0] and "001.png" not in warnings[0], run.stderr
    out = np.asarray(Image.open(tmp_path / "out" / "001.png").convert("RGB")).astype(int)
    assert out[55, 45, 0] > out[55, 45, 2] + 50                  # the matched hint colored its page
