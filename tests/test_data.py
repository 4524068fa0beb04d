"""Training data: layouts, the manga-look transform, splits by source file, the seeded sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.color import rgb_to_gray
from trainer.data import (DataError, EpochSampler, PageDataset, build_datasets, image_to_tensor, load_rgb,
                          make_batch, manga_look, split_by_source)


def _page(path: Path, size=(40, 48), seed=0, color=True) -> Path:
    rng = np.random.default_rng(seed)
    h, w = size[1], size[0]
    arr = np.full((h, w, 3), 240, np.uint8)
    for _ in range(4):
        y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
        arr[y:y + 8, x:x + 8] = rng.integers(0, 255, 3) if color else rng.integers(0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _flat_page(size=64) -> torch.Tensor:
    rgb = torch.ones(3, size, size)
    rgb[:, 8:56, 8:56] = torch.tensor([0.3, 0.6, 0.8])[:, None, None]  # a flat mid-tone panel
    rgb[:, 30:34, :] = 0.0  # an ink line
    return rgb


# ---------------------------------------------------------------------------- manga look
def test_manga_look_is_one_channel_in_range_with_the_same_size():
    rgb = _flat_page()
    gray = manga_look(rgb, np.random.default_rng(3))
    assert gray.shape == (1, 64, 64)
    assert gray.min() >= 0 and gray.max() <= 1
    batched = manga_look(torch.stack([rgb, rgb]), np.random.default_rng(3))
    assert batched.shape == (2, 1, 64, 64)


def test_manga_look_is_deterministic_for_a_seed_and_varies_across_seeds():
    rgb = _flat_page()
    a = manga_look(rgb, np.random.default_rng(11))
    b = manga_look(rgb, np.random.default_rng(11))
    assert torch.equal(a, b)
    outs = [manga_look(rgb, np.random.default_rng(s)) for s in range(6)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


def test_manga_look_stays_close_to_the_luminance():
    rgb = _flat_page()
    base = rgb_to_gray(rgb[None])[0]
    for s in range(8):
        # Screentone keeps the mean tone of a region; every effect keeps the page recognisable.
        assert (manga_look(rgb, np.random.default_rng(s)) - base).abs().mean() < 0.2


def test_manga_look_puts_screentone_dots_in_flat_mid_tones():
    rgb = _flat_page()
    base = rgb_to_gray(rgb[None])[0]
    seen_dots = False
    for s in range(12):
        panel = manga_look(rgb, np.random.default_rng(s))[0, 14:26, 14:26]
        if panel.std() > 0.2:  # a binary-ish dot screen, where the flat panel had one value
            seen_dots = True
            assert abs(panel.mean() - base[0, 14:26, 14:26].mean()) < 0.25
    assert seen_dots


def test_batch_input_is_the_transformed_gray_and_target_chroma_is_the_color_page():
    rgb = _flat_page()[None]
    gray = manga_look(rgb, np.random.default_rng(0))
    batch = make_batch(gray, rgb)
    assert set(batch) == {"L", "gray", "ab", "rgb"}
    assert torch.equal(batch["gray"], gray) and torch.equal(batch["rgb"], rgb)
    assert batch["L"].min() >= -1 - 1e-5 and batch["L"].max() <= 1 + 1e-5
    # ab of the mid-tone panel is its color, not the gray's zero chroma.
    assert batch["ab"][0, :, 20, 32].abs().max() > 0.05


# ---------------------------------------------------------------------------- decoding
def test_load_rgb_honors_exif_orientation_and_puts_transparency_on_white(tmp_path):
    arr = np.zeros((10, 20, 3), np.uint8)
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    img.save(tmp_path / "rot.jpg", exif=exif)
    assert load_rgb(tmp_path / "rot.jpg").size == (10, 20)
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    rgba.save(tmp_path / "clear.png")
    assert np.asarray(load_rgb(tmp_path / "clear.png")).min() == 255


def test_unreadable_image_is_a_one_line_error_naming_the_file(tmp_path):
    _page(tmp_path / "a.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError) as err:
        build_datasets(tmp_path, size=16)
    assert "broken.png" in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------------------- layouts
def test_paired_layout_matches_nested_pages_by_relative_path(tmp_path):
    for rel in ("ch1/001", "ch1/002", "ch2/001", "ch2/003"):
        _page(tmp_path / "color" / f"{rel}.png", seed=hash(rel) % 100)
    for rel in ("ch1/001", "ch1/002", "ch2/001", "ch2/004"):  # ch2/004 has no color page
        _page(tmp_path / "bw" / f"{rel}.jpg", color=False)
    split = build_datasets(tmp_path, size=16, val_fraction=0)
    assert split.layout == "paired"
    pages = split.train.pages
    assert [p.key for p in pages] == ["ch1/001", "ch1/002", "ch2/001"]
    for p in pages:
        assert p.gray.relative_to(tmp_path / "bw").with_suffix("") == p.color.relative_to(tmp_path / "color").with_suffix("")


def test_paired_item_takes_input_from_the_bw_page_and_target_from_the_color_page(tmp_path):
    _page(tmp_path / "color" / "p.png", size=(32, 32), seed=1)
    bw = np.zeros((32, 32), np.uint8)
    bw[:, 16:] = 255
    (tmp_path / "bw").mkdir()
    Image.fromarray(bw).save(tmp_path / "bw" / "p.png")
    split = build_datasets(tmp_path, size=32, val_fraction=0)
    item = split.train[0]
    assert item["gray"][0, :, :14].max() < 0.05 and item["gray"][0, :, 18:].min() > 0.95
    assert torch.allclose(item["rgb"], image_to_tensor(load_rgb(tmp_path / "color" / "p.png")))


@pytest.mark.parametrize("input_side", ["left", "right"])
def test_aligned_layout_splits_each_image_into_input_and_target_halves(tmp_path, input_side):
    gray_half = np.full((32, 32, 3), 90, np.uint8)
    color_half = np.zeros((32, 32, 3), np.uint8)
    color_half[..., 0] = 200
    halves = [gray_half, color_half] if input_side == "left" else [color_half, gray_half]
    Image.fromarray(np.concatenate(halves, axis=1)).save(tmp_path / "ab.png")
    split = build_datasets(tmp_path, layout="aligned", aligned_input=input_side, size=32, val_fraction=0)
    item = split.train[0]
    assert item["gray"].shape == (1, 32, 32) and item["rgb"].shape == (3, 32, 32)
    assert torch.allclose(item["gray"], torch.full((1, 32, 32), 90 / 255), atol=2 / 255)
    assert torch.allclose(item["rgb"][0], torch.full((32, 32), 200 / 255), atol=1e-6)


def test_unpaired_layout_reads_trainA_trainB_or_two_folders(tmp_path):
    for i in range(3):
        _page(tmp_path / "trainA" / f"g{i}.png", color=False, seed=i)
    for i in range(5):
        _page(tmp_path / "trainB" / f"c{i}.png", seed=10 + i)
    split = build_datasets(tmp_path, size=16, val_fraction=0.2)
    assert split.layout == "unpaired"
    assert split.n_val_files == 1 and len(split.train) == 4  # max(3 gray, 4 color kept for training)
    item = split.train[(0, 0, 0)]
    assert item["gray"].shape == (1, 16, 16) and item["rgb"].shape == (3, 16, 16)
    two = build_datasets(tmp_path / "trainA", tmp_path / "trainB", size=16, val_fraction=0)
    assert two.layout == "unpaired" and len(two.train) == 5


def test_color_layout_is_recursive_and_uses_a_val_folder_when_present(tmp_path):
    for rel in ("a/1.png", "a/b/2.png", "3.png"):
        _page(tmp_path / rel)
    _page(tmp_path / "val" / "v.png")
    split = build_datasets(tmp_path, size=16)
    assert split.layout == "color" and split.val_source == "folder"
    assert sorted(p.key for p in split.train.pages) == ["3", "a/1", "a/b/2"]
    assert [p.key for p in split.val.pages] == ["v"]


# ---------------------------------------------------------------------------- splits
def test_validation_split_holds_out_whole_source_files_and_depends_only_on_the_seed(tmp_path):
    for i in range(10):
        _page(tmp_path / f"p{i}.png", seed=i)
    a = build_datasets(tmp_path, size=16, seed=5, val_fraction=0.3)
    b = build_datasets(tmp_path, size=16, seed=5, val_fraction=0.3)
    train_files = {p.color for p in a.train.pages}
    val_files = {p.color for p in a.val.pages}
    assert len(val_files) == 3 and not train_files & val_files and len(train_files | val_files) == 10
    assert val_files == {p.color for p in b.val.pages}
    other_seeds = [{p.color for p in build_datasets(tmp_path, size=16, seed=s, val_fraction=0.3).val.pages}
                   for s in range(6, 10)]
    assert any(v != val_files for v in other_seeds)


def test_split_keeps_at_least_one_file_on_each_side():
    train, val = split_by_source(["a", "b"], 0.01, seed=0)
    assert len(train) == 1 and len(val) == 1
    assert split_by_source(["only"], 0.5, seed=0) == ([0], [])


def test_validation_items_are_fixed_and_training_items_vary_with_the_epoch(tmp_path):
    _page(tmp_path / "p.png", size=(60, 80))
    ds = PageDataset([build_datasets(tmp_path, size=32, val_fraction=0).train.pages[0]], 32, seed=0)
    assert torch.equal(ds[0]["gray"], ds[0]["gray"])
    assert torch.equal(ds[(0, 1, 0)]["rgb"], ds[(0, 1, 0)]["rgb"])
    assert any(not torch.equal(ds[(0, 1, 0)]["rgb"], ds[(0, e, 0)]["rgb"]) for e in range(2, 6))


def test_pages_smaller_than_the_crop_are_scaled_up_to_it(tmp_path):
    _page(tmp_path / "small.png", size=(12, 20))
    split = build_datasets(tmp_path, size=32, val_fraction=0)
    item = split.train[(0, 0, 0)]
    assert item["rgb"].shape == (3, 32, 32) and item["gray"].shape == (1, 32, 32)


# ---------------------------------------------------------------------------- sampler
def test_epoch_order_is_a_function_of_seed_and_epoch():
    def order(seed, epoch):
        s = EpochSampler(10, 3, seed)
        s.set_epoch(epoch)
        return [k[0] for k in s]

    assert order(1, 2) == order(1, 2)
    assert order(1, 2) != order(1, 3) and order(1, 2) != order(2, 2)
    assert len(order(1, 0)) == 12 and set(order(1, 0)) == set(range(10))  # cycled to whole batches


def test_ranks_get_disjoint_shards_that_together_cover_the_epoch():
    shards = []
    for rank in range(2):
        s = EpochSampler(8, 2, seed=0, rank=rank, world=2)
        s.set_epoch(4)
        shards.append([k[2] for k in s])
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(8))


def test_sampler_resumes_mid_epoch_with_the_remaining_batches():
    full = EpochSampler(9, 2, seed=3)
    full.set_epoch(1)
    resumed = EpochSampler(9, 2, seed=3)
    resumed.set_epoch(1, start_batch=2)
    assert list(resumed) == list(full)[4:] and len(resumed) == len(list(resumed))


def test_one_sampler_walks_on_through_epochs_exactly_as_epoch_by_epoch_sampling():
    def epoch(e, start=0):
        s = EpochSampler(5, 2, seed=1)
        s.set_epoch(e, start)
        return list(s)

    run = EpochSampler(5, 2, seed=1)
    run.set_epoch(1, start_batch=2, num_batches=5)
    assert list(run) == epoch(1, 2) + epoch(2) + epoch(3)[:2]
    assert len(run) == 10


def test_a_separate_paired_validation_folder_gives_real_gray_inputs(tmp_path):
    for i in range(3):
        _page(tmp_path / "train" / "color" / f"{i}.png", seed=i)
    for i in range(6):
        _page(tmp_path / "paired_val" / "color" / f"{i}.png", seed=10 + i)
        _page(tmp_path / "paired_val" / "bw" / f"{i}.png", seed=10 + i, color=False)
    split = build_datasets(tmp_path / "train" / "color", size=16, val_data=tmp_path / "paired_val", val_limit=3)
    assert split.layout == "color" and split.val_layout == "paired"
    assert len(split.train.pages) == 3  # nothing held out of the training folder
    assert [p.key for p in split.val.pages] == ["0", "2", "4"]  # spread over the folder, not its first pages
    assert all(p.gray is not None for p in split.val.pages)
