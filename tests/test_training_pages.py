"""Corpus v2: synthesized line art, pages composed on the fly, validation sets, the composed layout."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from trainer.pages import ComposedPages, DrawingCache, compose_pair, drawings_from_index, page_rng, synthesize_line_art
from trainer.pages.corpus import add_synthesized_line_art, build_validation_sets, contact_sheet


def _flat_drawing(rgb=(230, 120, 40), size=64) -> np.ndarray:
    """A flat-colored disc with a second colored patch inside, no outlines, on transparency."""
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.ellipse((4, 4, size - 5, size - 5), fill=(*rgb, 255))
    d.rectangle((size // 3, size // 3, size // 2, size // 2), fill=(40, 90, 200, 255))
    return np.asarray(img)


def test_line_art_inks_the_boundaries_of_color_regions_and_leaves_flat_fills_white():
    rgba = _flat_drawing()
    ink = synthesize_line_art(rgba)[..., 3].astype(float) / 255
    # the disc's outline (against transparent paper) and the inner patch's border are inked
    assert ink[32, 4:7].max() > 0.5
    assert ink[21, 21:33].max() > 0.5
    # inside the flat orange fill, away from any boundary: white paper
    assert ink[45:50, 40:45].max() == 0.0
    # outside the drawing: nothing
    assert ink[0:3, 0:3].max() == 0.0


def test_line_art_keeps_the_drawings_own_thin_dark_strokes_but_not_large_dark_fills():
    img = Image.new("RGBA", (80, 80), (255, 255, 255, 255))
    d = ImageDraw.Draw(img)
    d.line((10, 70, 70, 70), fill=(0, 0, 0, 255), width=2)  # a stroke on white
    d.rectangle((20, 10, 60, 50), fill=(10, 10, 10, 255))  # a solid dark area
    ink = synthesize_line_art(np.asarray(img))[..., 3].astype(float) / 255
    assert ink[70, 30:50].min() > 0.5
    assert ink[25:35, 35:45].max() < 0.2  # the composer decides: solid black or tone


def _index(tmp_path: Path, n: int = 6) -> Path:
    root = tmp_path / "drawings"
    records = []
    colors = [(220, 40, 40), (40, 160, 60), (40, 80, 220), (240, 200, 30), (160, 60, 200), (250, 140, 40)]
    for i in range(n):
        path = root / "clip" / "color" / f"d{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_flat_drawing(colors[i % len(colors)])).save(path)
        records.append({"source": "openclipart", "key": f"d{i}", "color": str(path),
                        "split": "val" if i >= n - 2 else "train"})
    index = root / "index.json"
    index.write_text(json.dumps({"size": 64, "seed": 0, "records": records}))
    return index


def test_synthesized_line_art_is_recorded_for_drawings_without_a_twin(tmp_path):
    index = _index(tmp_path)
    assert add_synthesized_line_art(index, jobs=1, log=lambda m: None) == 6
    records = json.loads(index.read_text())["records"]
    assert all(Path(r["line_synth"]).exists() for r in records)
    drawings = drawings_from_index(index, "train")
    assert len(drawings) == 4 and all(d.line for d in drawings)


def test_page_composition_is_deterministic_per_seed(tmp_path):
    index = _index(tmp_path)
    add_synthesized_line_art(index, jobs=1, log=lambda m: None)
    drawings = drawings_from_index(index, "train")
    a = compose_pair(drawings, page_rng(3, "t", 0), DrawingCache(), 96, 136)
    b = compose_pair(drawings, page_rng(3, "t", 0), DrawingCache(), 96, 136)
    c = compose_pair(drawings, page_rng(4, "t", 0), DrawingCache(), 96, 136)
    assert np.array_equal(np.asarray(a[0]), np.asarray(b[0])) and np.array_equal(np.asarray(a[1]), np.asarray(b[1]))
    assert not np.array_equal(np.asarray(a[1]), np.asarray(c[1]))


def test_the_loader_composes_fresh_pages_every_epoch_and_repeats_validation(tmp_path):
    index = _index(tmp_path)
    add_synthesized_line_art(index, jobs=1, log=lambda m: None)
    ds = ComposedPages(drawings_from_index(index, "train"), 64, seed=0, length=4, working_long_side=96)
    e0, e1 = ds[(0, 0, 0)], ds[(0, 1, 0)]
    assert e0["gray"].shape == (1, 64, 64) and e0["rgb"].shape == (3, 64, 64)
    assert not torch.equal(e0["rgb"], e1["rgb"])
    assert torch.equal(ds[(0, 0, 0)]["rgb"], e0["rgb"])  # the same key is the same page
    assert torch.equal(ds[1]["gray"], ds[1]["gray"])


def test_composed_color_targets_keep_gutters_and_margins_pure_white(tmp_path):
    index = _index(tmp_path)
    add_synthesized_line_art(index, jobs=1, log=lambda m: None)
    drawings = drawings_from_index(index, "train")
    for i in range(3):
        _, color = compose_pair(drawings, page_rng(0, "white", i), DrawingCache(), 200, 283, artefacts=False)
        c = np.asarray(color)
        # the outer margin of every composed page is paper
        assert (c[:3] == 255).all() and (c[-3:] == 255).all() and (c[:, :3] == 255).all()


def test_validation_sets_are_written_one_per_source_from_validation_drawings(tmp_path):
    index = _index(tmp_path)
    add_synthesized_line_art(index, jobs=1, log=lambda m: None)
    counts = build_validation_sets(index, tmp_path / "pages", pages=2, log=lambda m: None, size=(96, 136))
    assert counts == {"clipart": 2, "gray": 2}
    for name in counts:
        assert len(list((tmp_path / "pages" / f"val_{name}" / "bw").glob("*.png"))) == 2
        assert len(list((tmp_path / "pages" / f"val_{name}" / "color").glob("*.png"))) == 2
    sheet = contact_sheet(drawings_from_index(index, "train"), tmp_path / "sheet.png", pairs=2, size=(96, 136), thumb=48)
    assert Image.open(sheet).size[0] > 0


def test_mangacolor_train_runs_on_composed_pages_with_ema_and_a_cosine_schedule(tmp_path):
    from trainer import TrainConfig, train

    index = _index(tmp_path)
    add_synthesized_line_art(index, jobs=1, log=lambda m: None)
    summary = train(TrainConfig(model="effunet", preset="tiny", data=str(index.parent), out=str(tmp_path / "run"),
                                size=64, batch_size=2, steps=3, workers=0, val_limit=2, val_every=3, progress=False,
                                stats_batches=2, ema=0.9, schedule="cosine", warmup=1, cpu_bf16=True,
                                channels_last=True, best_metric="ciede2000"))
    assert summary.step == 3 and summary.best_checkpoint is not None
    import models
    best = models.read_checkpoint(summary.best_checkpoint)
    assert "train" not in best  # weights (the EMA) only
    last = models.read_checkpoint(summary.last_checkpoint)
    assert "ema" in last["train"]


def test_a_fresh_run_can_start_from_the_weights_of_a_checkpoint(tmp_path):
    import models
    from trainer import TrainConfig, train

    index = _index(tmp_path)
    add_synthesized_line_art(index, jobs=1, log=lambda m: None)
    common = dict(data=str(index.parent), size=64, batch_size=2, workers=0, val_limit=2, progress=False,
                  stats_batches=2)  # each stats batch composes its pages: 8 of them were most of the test's time
    first = train(TrainConfig(model="effunet", preset="tiny", out=str(tmp_path / "a"), steps=2, **common))
    weights = models.read_checkpoint(first.best_checkpoint)["state_dict"]
    second = train(TrainConfig(model="", init=str(first.best_checkpoint), out=str(tmp_path / "b"), steps=1,
                               lr=1e-12, **common))
    after = models.read_checkpoint(second.last_checkpoint)
    assert after["model"] == "effunet" and after["options"]["decoder"] == [16, 8, 8]
    for k, v in weights.items():
        if v.is_floating_point() and "running" not in k:
            assert torch.allclose(after["state_dict"][k], v, atol=1e-6), k
