"""The training loop: learning, determinism, exact resume, run-folder contents, divergence, DDP."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import models
from models.unet import UNet
from trainer import ConfigError, TrainConfig, TrainingDiverged, train


def make_color_pages(folder: Path, n: int, size: int = 48, seed: int = 0) -> Path:
    """``n`` color pages: white paper, black-outlined flat color shapes (what clipart looks like)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        arr = np.full((size, size + 8, 3), 245, np.uint8)
        for _ in range(3):
            y, x = rng.integers(0, size - 16, 2)
            arr[y:y + 16, x:x + 16] = 0
            arr[y + 2:y + 14, x + 2:x + 14] = rng.integers(0, 255, 3)
        Image.fromarray(arr).save(folder / f"page{i:02d}.png")
    return folder


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> Path:
    return make_color_pages(tmp_path_factory.mktemp("pages"), 5)


def tiny(pages: Path, out: Path, **kw) -> TrainConfig:
    base = dict(model="unet", preset="tiny", data=str(pages), out=str(out), size=32, batch_size=2, steps=6,
                lr=3e-3, workers=0, val_every=3, log_every=1, progress=False, val_fraction=0.2, seed=7)
    base.update(kw)
    return TrainConfig(**base)


def records(run: Path, kind: str) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def train_losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["losses"]["l1"] for r in records(run, "train")}


# ---------------------------------------------------------------------------- learning
def test_unet_tiny_loss_goes_down_on_four_images(tmp_path):
    pages = make_color_pages(tmp_path / "four", 4)
    summary = train(tiny(pages, tmp_path / "run", steps=40, batch_size=4, val_fraction=0, val_every=40,
                         manga_look=False, lr=1e-2))
    losses = [v for _, v in sorted(train_losses(tmp_path / "run").items())]
    assert summary.step == 40 and len(losses) == 40
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])


# ---------------------------------------------------------------------------- run folder
def test_run_folder_holds_metrics_baseline_previews_curve_and_checkpoints(pages, tmp_path):
    run = tmp_path / "run"
    summary = train(tiny(pages, run))
    for name in ("metrics.jsonl", "loss_curve.png", "preview.png", "last.pt", "best.pt"):
        assert (run / name).is_file(), name
    assert len(list((run / "previews").glob("*.png"))) == 2  # validations at steps 3 and 6
    baseline, vals = records(run, "baseline"), records(run, "val")
    assert len(baseline) == 1 and [v["step"] for v in vals] == [3, 6]
    for rec in baseline + vals:
        assert {"l1_ab", "psnr", "ssim"} <= rec.keys() and all(math.isfinite(rec[k]) for k in ("l1_ab", "psnr", "ssim"))
    assert baseline[0]["colorfulness"] < 1.0  # the gray baseline has no chroma
    payload = models.read_checkpoint(run / "last.pt")
    assert payload["train"]["step"] == 6 and payload["meta"]["working_size"] == 64
    best = models.read_checkpoint(run / "best.pt")
    assert "train" not in best  # weights only: what inference loads
    assert best["meta"]["best_step"] == min(vals, key=lambda r: r["l1_ab"])["step"]
    assert summary.baseline["l1_ab"] == pytest.approx(baseline[0]["l1_ab"])
    with Image.open(run / "preview.png") as im:
        assert im.width >= 3 * 32
    assert isinstance(models.load_model(run / "best.pt"), UNet)


def test_the_gray_baseline_is_the_gray_input_page_scored_as_eval_scores_it(tmp_path):
    from trainer.data import build_datasets
    from models.toolbox.metrics import TargetMetrics, gray_baseline

    # Paired pages of the training size: the bw page (black outlines, white fills) is the gray input, far
    # from the color target's luminance, which the baseline must not use.
    color = make_color_pages(tmp_path / "set" / "color", 5, size=32)
    (tmp_path / "set" / "bw").mkdir()
    for page in color.iterdir():
        arr = np.asarray(Image.open(page).convert("L")).copy()
        arr[arr > 10] = 255
        Image.fromarray(arr[:, :32]).save(tmp_path / "set" / "bw" / page.name)
        Image.open(page).crop((0, 0, 32, 32)).save(page)
    summary = train(tiny(tmp_path / "set", tmp_path / "run", steps=1, val_every=1))
    (val_page,) = build_datasets(tmp_path / "set", size=32, seed=7, val_fraction=0.2).val.pages
    gray, target = np.asarray(Image.open(val_page.gray)), np.asarray(Image.open(val_page.color).convert("RGB"))
    expected = TargetMetrics(target).score(gray_baseline(gray))  # what mangacolor eval scores on the CPU
    for metric in ("psnr", "ssim", "ciede2000", "colorfulness"):
        assert summary.baseline[metric] == pytest.approx(expected[metric], rel=1e-3, abs=1e-6), metric


def test_an_existing_run_is_not_overwritten_without_resume(pages, tmp_path):
    train(tiny(pages, tmp_path / "run", steps=1, val_every=1))
    with pytest.raises(ConfigError, match="--resume"):
        train(tiny(pages, tmp_path / "run", steps=1))


# ---------------------------------------------------------------------------- determinism and resume
def test_the_same_seed_gives_the_same_run(pages, tmp_path):
    train(tiny(pages, tmp_path / "a", steps=4))
    train(tiny(pages, tmp_path / "b", steps=4))
    assert train_losses(tmp_path / "a") == train_losses(tmp_path / "b")
    wa = models.read_checkpoint(tmp_path / "a" / "last.pt")["state_dict"]
    wb = models.read_checkpoint(tmp_path / "b" / "last.pt")["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    train(tiny(pages, tmp_path / "c", steps=4, seed=8))
    assert train_losses(tmp_path / "c") != train_losses(tmp_path / "a")


def test_ctrl_c_saves_a_checkpoint_and_resume_continues_like_an_uninterrupted_run(pages, tmp_path, monkeypatch):
    # Dropout on, so the resumed run must also restore torch's RNG to match.
    opts = {"options": {"dropout": 0.3}}
    train(tiny(pages, tmp_path / "straight", steps=7, **opts))
    straight = train_losses(tmp_path / "straight")

    original = UNet.train_step
    calls = {"n": 0}

    def interrupt_at_step_3(self, batch, ctx):
        out = original(self, batch, ctx)
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does
        return out

    monkeypatch.setattr(UNet, "train_step", interrupt_at_step_3)
    # 4 training pages, batch 2: step 3 is in the middle of the second epoch.
    summary = train(tiny(pages, tmp_path / "cut", steps=7, val_every=100, **opts))
    monkeypatch.setattr(UNet, "train_step", original)
    assert summary.interrupted and summary.step == 3
    assert models.read_checkpoint(tmp_path / "cut" / "last.pt")["train"]["step"] == 3

    resumed = train(tiny(pages, tmp_path / "cut", steps=7, resume=str(tmp_path / "cut" / "last.pt"), **opts))
    assert resumed.step == 7 and not resumed.interrupted
    assert train_losses(tmp_path / "cut") == straight
    wa = models.read_checkpoint(tmp_path / "straight" / "last.pt")["state_dict"]
    wb = models.read_checkpoint(tmp_path / "cut" / "last.pt")["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


# ---------------------------------------------------------------------------- divergence
def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(pages, tmp_path, monkeypatch):
    original = UNet.train_step
    calls = {"n": 0}

    class PoisonAtStep5:
        def __init__(self, ctx):
            self.ctx = ctx

        def autocast(self):
            return self.ctx.autocast()

        def backward_step(self, loss, optimizer, params=None):
            self.ctx.backward_step(loss * float("nan") if calls["n"] == 5 else loss, optimizer, params)

    def step(self, batch, ctx):
        if batch["gray"].is_meta:  # the size check's shape-only trace before training (ColorModel.size_problem)
            return original(self, batch, ctx)
        calls["n"] += 1
        return original(self, batch, PoisonAtStep5(ctx))

    monkeypatch.setattr(UNet, "train_step", step)
    with pytest.raises(TrainingDiverged, match="step 5") as err:
        train(tiny(pages, tmp_path / "run", steps=8, val_every=2))
    assert "\n" not in str(err.value)
    payload = models.read_checkpoint(tmp_path / "run" / "last.pt")
    assert payload["train"]["step"] == 4
    assert all(torch.isfinite(v).all() for v in payload["state_dict"].values() if v.is_floating_point())


# ---------------------------------------------------------------------------- distributed
@pytest.mark.slow  # torchrun starts two ranks that each import torch: ~10 s; test_trainer_distributed covers the step
def test_ddp_with_two_gloo_processes_trains_and_rank_0_alone_writes(pages, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "mangacolor_cli", "train", "--model", "unet", "--preset", "tiny", "--data", str(pages),
           "--out", str(run), "--size", "32", "--batch-size", "1", "--steps", "3", "--val-every", "3",
           "--workers", "0", "--device", "cpu", "--log-every", "1", "--val-fraction", "0.2"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in run.iterdir() if p.suffix == ".pt") == ["best.pt", "last.pt"]
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    assert len(records(run, "baseline")) == 1 and [r["step"] for r in records(run, "train")] == [1, 2, 3]
    payload = models.read_checkpoint(run / "last.pt")
    assert payload["train"]["world"] == 2 and len(payload["train"]["rng"]) == 2 and payload["train"]["step"] == 3


def test_batches_are_the_same_with_worker_processes(pages, tmp_path):
    train(tiny(pages, tmp_path / "w0", steps=3, workers=0))
    train(tiny(pages, tmp_path / "w2", steps=3, workers=2))
    assert train_losses(tmp_path / "w0") == train_losses(tmp_path / "w2")
