"""The region model: region tokens, decoding a palette, the head and its ONNX file, its training on a
token cache, and colorize/eval with it (in process, and the installed CLI in a fresh process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.color import ab_bins
from models.paint.segmentation import segment_regions
from models.paint.tokens import (FEATURE_NAMES, HEAD_FEATURES, TOKEN_FEATURES, VIVID_SCALE, decode, region_targets,
                                 region_tokens, with_known)
from models.regionhead import RegionHead, export_head, load_head, save_head

BIN = Path(sys.executable).parent / "mangacolor"
COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


def two_boxes(width: int = 160, height: int = 120) -> np.ndarray:
    """White paper, a panel border, two inked boxes: the left one toned (dark dots), the right one plain."""
    page = np.full((height, width), 255, np.uint8)
    page[4:8, 4:-4] = page[-8:-4, 4:-4] = page[4:-4, 4:8] = page[4:-4, -8:-4] = 0
    for x0 in (20, 90):
        page[30:33, x0:x0 + 50] = page[87:90, x0:x0 + 50] = 0
        page[30:90, x0:x0 + 3] = page[30:90, x0 + 47:x0 + 50] = 0
    tone = np.zeros_like(page, bool)
    tone[36:84:4, 26:64:4] = True
    page[tone] = 60
    return page


def label_at(regions, y: int, x: int) -> int:
    f = regions.factor
    return int(regions.labels[y // f, x // f])


def test_tokens_pool_the_prediction_and_the_page_inside_each_region():
    page = two_boxes()
    regions = segment_regions(page)
    left, right = label_at(regions, 60, 45), label_at(regions, 60, 115)
    assert left != right and left > 0 and right > 0
    ab = np.zeros((2, 60, 80), np.float32)
    ab[0, :, 40:] = 40.0  # the model says red on the right half of the page only
    confidence = np.full((60, 80), 0.8, np.float32)
    f = regions.factor
    tokens = region_tokens(regions, page[::f, ::f], ab, confidence)
    assert tokens.shape == (regions.count + 1, TOKEN_FEATURES) and tokens.dtype == np.float32
    assert tokens[right, COL["a_weighted"]] == pytest.approx(40.0 / 50.0, abs=0.05)
    assert tokens[left, COL["a_weighted"]] == pytest.approx(0.0, abs=0.05)
    assert tokens[right, COL["confidence"]] == pytest.approx(0.8, abs=1e-3)
    assert tokens[left, COL["dark_share"]] > tokens[right, COL["dark_share"]]  # the tone's dots
    assert tokens[left, COL["gray_core"]] == pytest.approx(1.0, abs=0.01)  # its paper stays white between dots
    assert tokens[right, COL["cx"]] > 0.6 > 0.4 > tokens[left, COL["cx"]]
    assert tokens[right, COL["is_region"]] == 1 and tokens[right, COL["box_w"]] == pytest.approx(44 / 160, abs=0.03)
    paper = int(np.flatnonzero(regions.kind == 1)[0])
    assert tokens[paper, COL["is_paper"]] == 1 and tokens[paper, COL["at_border"]] == 1
    assert not tokens[0].any()  # the ink


def test_region_targets_are_each_regions_median_color():
    page = two_boxes()
    regions = segment_regions(page)
    right = label_at(regions, 60, 115)
    lab = np.zeros(page.shape + (3,), np.float32)
    lab[..., 0] = 90.0
    lab[35:85, 95:135, 1:] = (30.0, -20.0)
    f = regions.factor
    targets = region_targets(regions, lab[::f, ::f])
    assert targets[right] == pytest.approx([30.0, -20.0], abs=0.5)
    assert not targets[0].any()


def test_safe_decoding_stays_gray_when_torn_and_vivid_commits():
    bins = ab_bins().numpy()
    red = int(np.argmin(np.hypot(bins[:, 0] - 50, bins[:, 1] - 20)))
    green = int(np.argmin(np.hypot(bins[:, 0] + 50, bins[:, 1] - 20)))
    blue = int(np.argmin(np.hypot(bins[:, 0] - 10, bins[:, 1] + 50)))
    probs = np.zeros((2, len(bins)), np.float32)
    probs[0, red] = 0.9
    probs[0, green] = 0.1
    probs[1, red] = 0.4  # torn between three hues: any one of them is further off on average than gray
    probs[1, green] = 0.3
    probs[1, blue] = 0.3
    safe, conf = decode(probs, bins, "safe")
    vivid, _ = decode(probs, bins, "vivid")
    assert safe[0] == pytest.approx(bins[red]) and conf[0] == pytest.approx(0.9)
    assert np.hypot(*safe[1]) < 25 < np.hypot(*vivid[1])  # safe settles between, vivid takes the likelier
    assert decode(probs, bins, "vivid", vivid_scale=1.0)[0][1] == pytest.approx(bins[red])
    assert vivid[1] == pytest.approx(bins[red] * VIVID_SCALE)  # the likelier hue, its chroma scaled
    top = np.hypot(*bins.T).max()
    strongest = np.zeros((1, len(bins)), np.float32)
    strongest[0, int(np.argmax(np.hypot(*bins.T)))] = 1.0
    assert np.hypot(*decode(strongest, bins, "vivid")[0][0]) == pytest.approx(top)  # never past the strongest bin
    with pytest.raises(ValueError):
        decode(probs, bins, "loud")


def test_padding_does_not_change_a_pages_colors():
    torch.manual_seed(0)
    head = RegionHead(dim=32, layers=2).eval()
    tokens = torch.randn(1, 5, HEAD_FEATURES)
    padded = torch.cat([tokens, torch.randn(1, 3, HEAD_FEATURES)], dim=1)
    mask = torch.tensor([[True] * 5 + [False] * 3])
    with torch.no_grad():
        alone = head(tokens)
        together = head(padded, mask)[:, :5]
    assert torch.allclose(alone, together, atol=1e-5)


def test_checkpoint_and_onnx_give_the_torch_models_distributions(tmp_path):
    torch.manual_seed(1)
    head = RegionHead(dim=32, layers=2)
    head.mean.normal_()
    head.std.uniform_(0.5, 2.0)
    save_head(head, tmp_path / "head.pt")
    again = load_head(tmp_path / "head.pt")
    export_head(again, tmp_path / "x.regions.onnx")
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "x.regions.onnx"), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert np.asarray(json.loads(meta["mangacolor.bins"])).shape == (len(ab_bins()), 2)
    for n in (1, 40):
        tokens = torch.randn(1, n, HEAD_FEATURES)
        with torch.no_grad():
            expected = torch.softmax(head.eval()(tokens), -1).numpy()
        got = session.run(None, {"tokens": tokens.numpy()})[0]
        assert got.shape == (1, n, len(ab_bins()))
        np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.fixture(scope="module")
def trained_head(tmp_path_factory):
    """A region model trained a few seconds on a synthetic token cache where a region's color is its
    pixel model's hue, made more saturated: the relation the real one learns first."""
    from trainer.region_data import write_shard
    from trainer.region_train import RegionTrainConfig, train_region_head

    root = tmp_path_factory.mktemp("regions")
    rng = np.random.default_rng(0)
    examples = []
    for _ in range(60):
        n = int(rng.integers(4, 12))
        tokens = np.zeros((n + 1, TOKEN_FEATURES), np.float32)
        tokens[1:, COL["is_region"]] = tokens[1:, COL["has_core"]] = 1
        tokens[1:, COL["log_area"]] = np.log(rng.uniform(0.01, 0.2, n))
        hue = rng.choice([0.0, np.pi], n)  # red or green
        tokens[1:, COL["a_weighted"]] = np.cos(hue) * 0.3
        targets = np.zeros((n + 1, 2), np.float32)
        targets[1:, 0] = np.cos(hue) * 45.0
        examples.append((tokens, targets))
    write_shard(root / "cache" / "tokens-00000.npz", examples[:50])
    write_shard(root / "val" / "tokens-00000.npz", examples[50:])
    result = train_region_head(RegionTrainConfig(cache=root / "cache", val_cache=root / "val", out=root / "run",
                                                 minutes=5, max_steps=160, batch=8, dim=32, layers=1, val_every=40,
                                                 lr=3e-3))
    return root / "run", result


def test_training_on_a_cache_learns_and_writes_what_colorize_reads(trained_head):
    run, result = trained_head
    history = result["history"]
    assert result["step"] == 160 and len(history) == 4
    assert history[-1]["vivid_vs_gray"] < 0.3 and history[-1]["safe_vs_gray"] < 0.8  # it learned red vs green
    for name in ("best.pt", "last.pt", "history.json", "best.regions.onnx"):
        assert (run / name).is_file()


def test_resume_continues_from_last(trained_head, tmp_path):
    from trainer.region_train import RegionTrainConfig, train_region_head

    run, result = trained_head
    root = run.parent
    import shutil

    shutil.copytree(run, tmp_path / "run")
    again = train_region_head(RegionTrainConfig(cache=root / "cache", val_cache=root / "val", out=tmp_path / "run",
                                                minutes=5, max_steps=200, batch=8, dim=32, layers=1, val_every=40,
                                                resume=True))
    assert again["step"] == 200 and len(again["history"]) == 5


def test_init_starts_from_a_trained_model_and_keeps_its_shape(trained_head, tmp_path):
    # --init: a new run (no last.pt) that starts from a trained model's weights, normalization included
    from models.regionhead import load_head
    from trainer.region_train import RegionTrainConfig, train_region_head

    run, result = trained_head
    root = run.parent
    first = result["history"][-1]["safe_vs_gray"]
    again = train_region_head(RegionTrainConfig(cache=root / "cache", val_cache=root / "val", out=tmp_path / "tuned",
                                                minutes=5, max_steps=40, batch=8, dim=96, layers=3, val_every=40,
                                                lr=1e-3, init=run / "best.pt"))
    assert again["step"] == 40
    # dim/layers are the trained model's, not the config's; it starts where that one ended, not from scratch
    head = load_head(tmp_path / "tuned" / "best.pt")
    assert head.options["dim"] == 32 and head.options["layers"] == 1
    assert again["history"][0]["safe_vs_gray"] < max(first * 1.25, 0.8)


def test_colorizer_lays_the_region_models_colors(trained_head, tiny_onnx, tmp_path):
    from mangacolor_cli import Colorizer
    from mangacolor_cli.engine.region_model import beside

    run, _ = trained_head
    model = tmp_path / "m.onnx"
    model.write_bytes(Path(tiny_onnx).read_bytes())
    assert beside(model) is None
    (tmp_path / "m.regions.onnx").write_bytes((run / "best.regions.onnx").read_bytes())
    assert beside(model) == tmp_path / "m.regions.onnx"
    page = two_boxes()
    with_regions = Colorizer(str(model), device="cpu", palette="vivid")
    without = Colorizer(str(model), device="cpu", palette="vivid", region_model="none")
    assert with_regions.region_model is not None and without.region_model is None
    assert "region model m.regions.onnx" in with_regions.describe()
    ab = np.zeros((1, 2, 24, 32), np.float32)
    ab[0, 0] = 15.0  # a pale red everywhere: the region model commits to red
    out = with_regions.compose(page, ab)
    plain = without.compose(page, ab)
    r, g = out[60, 115, 0].astype(int), out[60, 115, 1].astype(int)
    assert r - g > 40 and r - g > plain[60, 115, 0].astype(int) - plain[60, 115, 1] + 10
    assert (out[1, 1] == 255).all()  # margins stay paper
    soft = Colorizer(str(model), device="cpu", fill="soft")
    np.testing.assert_array_equal(soft.compose(page, ab), Colorizer(str(model), device="cpu", fill="soft",
                                                                     region_model="none").compose(page, ab))


def test_a_missing_or_wrong_region_model_is_one_line(tiny_onnx, tmp_path):
    from mangacolor_cli import Colorizer
    from mangacolor_cli.errors import ModelError

    with pytest.raises(ModelError, match="no such file"):
        Colorizer(str(tiny_onnx), device="cpu", region_model=tmp_path / "nope.regions.onnx")
    with pytest.raises(ModelError, match="not a mangacolor region model"):
        Colorizer(str(tiny_onnx), device="cpu", region_model=str(tiny_onnx))


def test_cli_colorizes_with_and_without_the_region_model_in_a_fresh_process(trained_head, tiny_onnx, tmp_path):
    run, _ = trained_head
    model = tmp_path / "m.onnx"
    model.write_bytes(Path(tiny_onnx).read_bytes())
    (tmp_path / "m.regions.onnx").write_bytes((run / "best.regions.onnx").read_bytes())
    page = tmp_path / "in" / "p.png"
    page.parent.mkdir()
    Image.fromarray(two_boxes()).save(page)
    out = tmp_path / "out"
    cmd = [str(BIN), "colorize", str(page.parent), "-o", str(out), "-m", str(model), "--device", "cpu", "--json"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["colored"] == 1
    again = subprocess.run(cmd + ["--region-model", "none"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["colored"] == 1  # other settings: colored again, not skipped
    bad = subprocess.run(cmd + ["--region-model", str(tmp_path / "missing.regions.onnx")], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "missing.regions.onnx" in bad.stderr and "Traceback" not in bad.stderr


def test_known_colors_are_appended_to_the_tokens_they_belong_to():
    tokens = np.ones((4, TOKEN_FEATURES), np.float32)
    plain = with_known(tokens)
    assert plain.shape == (4, HEAD_FEATURES) and not plain[:, TOKEN_FEATURES:].any()
    known = with_known(tokens, np.array([2]), np.array([[25.0, -50.0]]))
    np.testing.assert_array_equal(known[:, :TOKEN_FEATURES], tokens)
    np.testing.assert_allclose(known[2, TOKEN_FEATURES:], [1.0, 0.5, -1.0])
    assert not np.delete(known, 2, axis=0)[:, TOKEN_FEATURES:].any()


def test_training_reveals_some_regions_and_scores_only_the_others():
    from trainer.region_train import PageTokens

    n = 30
    tokens = np.zeros((n + 1, TOKEN_FEATURES), np.float32)
    tokens[1:, COL["is_region"]] = tokens[1:, COL["has_core"]] = 1
    tokens[1:, COL["log_area"]] = np.log(0.01)
    targets = np.zeros((n + 1, 2), np.float32)
    targets[1:] = (40.0, 10.0)
    data = PageTokens(tokens, targets, np.array([0, n + 1]), np.array([0]))
    tok, tgt, weight, mask = data.batch(np.array([0]), np.random.default_rng(0), ratio=0.1)
    known = tok[0, :, TOKEN_FEATURES].numpy() > 0
    assert known.sum() == 3 and (weight[0].numpy()[known] == 0).all() and (weight[0].numpy()[~known] > 0).all()
    np.testing.assert_allclose(tok[0, known, TOKEN_FEATURES + 1:].numpy(), np.tile([0.8, 0.2], (3, 1)))
    tok, _, weight, _ = data.batch(np.array([0]))
    assert not tok[0, :, TOKEN_FEATURES].any() and (weight[0] > 0).all()


def test_a_region_model_in_the_weights_folder_is_not_a_model_of_its_own(trained_head, tiny_onnx, tmp_path):
    from mangacolor_cli.engine.catalog import packaged_models

    run, _ = trained_head
    (tmp_path / "m.onnx").write_bytes(Path(tiny_onnx).read_bytes())
    (tmp_path / "m.regions.onnx").write_bytes((run / "best.regions.onnx").read_bytes())
    assert [m.name for m in packaged_models(tmp_path)] == ["m"]
