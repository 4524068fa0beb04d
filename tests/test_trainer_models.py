"""Every registered model trains through the one trainer (its tiny preset, two steps)."""

from __future__ import annotations

import math

import pytest

import models
from trainer import TrainConfig, train

from .test_trainer import make_color_pages


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    make_color_pages(root / "color", 4, size=40)
    make_color_pages(root / "unpaired" / "trainA", 3, size=40, seed=1)
    make_color_pages(root / "unpaired" / "trainB", 4, size=40, seed=2)
    return root


@pytest.mark.parametrize("name", models.available())
def test_every_registered_model_trains_two_steps_through_the_trainer(name, data, tmp_path):
    stride = models.create(name, preset="tiny").stride
    size = stride * math.ceil(32 / stride)
    # CycleGAN learns from unpaired gray and color pages; the others from color pages.
    source = data / "unpaired" if name == "cyclegan" else data / "color"
    summary = train(TrainConfig(model=name, preset="tiny", data=str(source), out=str(tmp_path / name), size=size,
                                batch_size=2, steps=2, workers=0, val_every=2, log_every=1, progress=False,
                                val_fraction=0.25, stats_batches=1))
    assert summary.step == 2 and summary.last_losses
    assert all(math.isfinite(v) for v in summary.last_losses.values())
    assert summary.last_val is not None and math.isfinite(summary.last_val["l1_ab"])
    rebuilt = models.load_model(tmp_path / name / "last.pt")
    assert rebuilt.name == name


def test_a_resumed_gan_run_matches_the_uninterrupted_one(data, tmp_path):
    # Two optimizers, an image pool drawing from python's RNG, discriminators in the checkpoint.
    def config(out, steps, resume=None):
        return TrainConfig(model="cyclegan", preset="tiny", data=str(data / "unpaired"), out=str(out), size=32,
                           batch_size=2, steps=steps, workers=0, val_every=2, log_every=1, progress=False,
                           val_fraction=0.25, seed=3, resume=resume)

    def losses(run):
        import json
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [r["losses"] for r in map(json.loads, lines) if r["kind"] == "train"]

    train(config(tmp_path / "straight", 4))
    train(config(tmp_path / "split", 2))
    train(config(tmp_path / "split", 4, resume=str(tmp_path / "split")))
    assert losses(tmp_path / "split") == losses(tmp_path / "straight")
