"""Every registered model: tiny presets colorize, train, export and round-trip through a checkpoint."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
import torch

import models
from models import NullStepContext
from models.color import normalize_ab, normalize_l, rgb_to_gray, rgb_to_lab

torch.set_num_threads(1)

# Full-preset generator sizes per the papers, in millions of parameters (whole model, lower/upper).
FULL_PARAMS_M = {"autoencoder": (1, 20), "unet": (5, 40), "pix2pix": (54, 60), "pix2pixhd": (180, 200),
                 "cyclegan": (28, 30), "eccv16": (32, 33), "effunet": (3.5, 4.5)}


def shapes_batch(n: int = 4, size: int = 32, seed: int = 0) -> dict[str, torch.Tensor]:
    """Synthetic pages: a colored rectangle and disc on a colored background, all keys of a batch."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    imgs = []
    for _ in range(n):
        rgb = torch.rand(3, 1, 1, generator=g).expand(3, size, size).clone()
        x0, y0 = (torch.randint(0, size // 2, (2,), generator=g)).tolist()
        rgb[:, y0:y0 + size // 3, x0:x0 + size // 3] = torch.rand(3, 1, 1, generator=g)
        cx, cy = torch.randint(size // 4, 3 * size // 4, (2,), generator=g).tolist()
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 < (size // 5) ** 2
        rgb[:, disc] = torch.rand(3, 1, generator=g)
        imgs.append(rgb)
    rgb = torch.stack(imgs)
    lab = rgb_to_lab(rgb)
    return {"rgb": rgb, "L": normalize_l(lab[:, :1]), "ab": normalize_ab(lab[:, 1:]), "gray": rgb_to_gray(rgb)}


def unpaired_batch(size: int = 32) -> dict[str, torch.Tensor]:
    """Gray keys from one set of pages, color keys from unrelated ones (CycleGAN's data)."""
    gray_pages, color_pages = shapes_batch(4, size, seed=1), shapes_batch(4, size, seed=2)
    return {"L": gray_pages["L"], "gray": gray_pages["gray"], "ab": color_pages["ab"], "rgb": color_pages["rgb"]}


def tiny(name: str) -> models.ColorModel:
    torch.manual_seed(0)
    return models.create(name, preset="tiny")


def test_available_lists_every_model_in_registration_order():
    assert models.available() == ["autoencoder", "unet", "pix2pix", "pix2pixhd", "cyclegan", "eccv16", "effunet"]


@pytest.mark.parametrize("name", models.available())
def test_tiny_preset_colorizes_to_ab_in_range_at_input_size(name):
    model = tiny(name).eval()
    side = max(32, model.stride)
    x = shapes_batch(2, side)["L"][:, :, :, :]
    x = torch.cat([x, x], dim=3)  # non-square: H != W
    with torch.no_grad():
        ab = model.colorize(x)
    assert ab.shape == (2, 2, side, 2 * side)
    assert torch.isfinite(ab).all() and ab.abs().max() <= 1.0 + 1e-5


# Counting needs shapes only: the meta device builds a full preset without memory or weight init. eccv16's ab
# bins need torch.unique (no meta kernel) and effunet copies its pretrained encoder in: those two small ones are real.
BUILT_FOR_REAL = {"eccv16", "effunet"}


@pytest.mark.parametrize("name", models.available())
def test_full_preset_has_the_papers_parameter_count(name):
    with contextlib.nullcontext() if name in BUILT_FOR_REAL else torch.device("meta"):
        model = models.create(name, preset="full")
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    lo, hi = FULL_PARAMS_M[name]
    assert lo <= millions <= hi, f"{name}: {millions:.1f}M parameters"
    assert model.stride >= 1 and all(isinstance(v, (int, float, str, bool, list)) for v in model.options.values())


def train_losses(model: models.ColorModel, batch, steps: int, lr: float) -> list[dict[str, float]]:
    ctx = NullStepContext(model.optimizers(lr))
    model.train()
    return [model.train_step(batch, ctx) for _ in range(steps)]


@pytest.mark.parametrize("name,key,steps,lr", [
    ("autoencoder", "l1", 40, 2e-3), ("unet", "l1", 30, 2e-3), ("pix2pix", "g_l1", 30, 2e-3),
    ("pix2pixhd", "l1", 30, 2e-3), ("cyclegan", "cycle", 30, 2e-3), ("eccv16", "ce", 30, 1e-3),
])
def test_tiny_preset_drives_its_loss_down_on_four_images(name, key, steps, lr):
    model = tiny(name)
    batch = unpaired_batch() if name == "cyclegan" else shapes_batch(4, 32)
    model.prepare_data_stats([batch])
    losses = [step[key] for step in train_losses(model, batch, steps, lr)]
    assert all(math.isfinite(v) for v in losses)
    first, last = np.mean(losses[:3]), np.mean(losses[-3:])
    assert last < 0.8 * first, f"{name} {key}: {first:.4f} -> {last:.4f}"


def test_pix2pix_discriminator_sees_l_and_ab_and_has_two_optimizers():
    model = tiny("pix2pix")
    assert model.discriminator.layers[0][0].in_channels == 3
    assert set(model.optimizers(2e-4)) == {"g", "d"}
    assert model.optimizers(3e-4)["d"].param_groups[0]["betas"] == (0.5, 0.999)


def test_eccv16_rebalance_weights_come_from_prepared_batches_and_travel_in_the_state():
    model = tiny("eccv16")
    assert torch.equal(model.rebalance, torch.ones_like(model.rebalance))
    model.prepare_data_stats([shapes_batch(4, 32)])
    assert "rebalance" in model.state_dict()
    assert not torch.allclose(model.rebalance, torch.ones_like(model.rebalance))


@pytest.mark.parametrize("name", models.available())
def test_checkpoint_round_trip_reproduces_colorize_exactly(name, tmp_path):
    model = tiny(name)
    batch = unpaired_batch() if name == "cyclegan" else shapes_batch(4, 32)
    model.prepare_data_stats([batch])
    train_losses(model, batch, 2, 1e-3)  # move BatchNorm statistics off their defaults
    model.eval()
    x = shapes_batch(2, max(32, model.stride), seed=5)["L"]
    with torch.no_grad():
        before = model.colorize(x)
    path = models.save_checkpoint(tmp_path / "m.pt", model)
    loaded = models.load_model(path)
    with torch.no_grad():
        after = loaded.colorize(x)
    assert loaded.name == name and loaded.options == model.options
    assert torch.equal(before, after)


@pytest.mark.parametrize("name", models.available())
def test_inference_module_exports_to_onnx_with_dynamic_height_and_width(name):
    ort = pytest.importorskip("onnxruntime")
    model = tiny(name).eval()
    s = max(32, model.stride)
    buf = io.BytesIO()
    torch.onnx.export(model.inference_module(), torch.zeros(1, 1, s, s), buf, dynamo=False,
                      input_names=["x"], output_names=["ab"],
                      dynamic_axes={"x": {0: "b", 2: "h", 3: "w"}, "ab": {0: "b", 2: "h", 3: "w"}})
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    x = shapes_batch(2, 2 * s, seed=3)["L"][:, :, :, :s]  # another size than traced: 2s x s
    with torch.no_grad():
        want = model.colorize(x).numpy()
    got = sess.run(None, {"x": x.numpy()})[0]
    # ab/110 in the first two channels; models with a confidence give it as a third
    assert got.shape[1] == (3 if hasattr(model, "predict") else 2)
    got = got[:, :2]
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 1e-4


def test_create_unknown_model_is_a_value_error_naming_the_choices():
    with pytest.raises(ValueError, match="unknown model 'nope'.*pix2pix"):
        models.create("nope")


def test_create_unknown_preset_is_a_value_error_naming_the_presets():
    with pytest.raises(ValueError, match="no preset 'huge'.*tiny"):
        models.create("eccv16", preset="huge")


def test_pix2pixhd_rgb_output_colorizes_through_rgb_chroma():
    torch.manual_seed(0)
    model = models.create("pix2pixhd", preset="tiny", output="rgb").eval()
    with torch.no_grad():
        ab = model.colorize(shapes_batch(1, 32)["L"])
    assert ab.shape == (1, 2, 32, 32) and ab.abs().max() <= 1.0
    with pytest.raises(ValueError, match="output"):
        models.create("pix2pixhd", preset="tiny", output="lab")


@pytest.mark.parametrize("name", models.available())
def test_inference_module_keeps_the_models_eval_mode(name):
    model = tiny(name).eval()
    module = model.inference_module()
    assert not module.training
    module.train(False)  # what export does before restoring the module's own mode
    assert not model.training
