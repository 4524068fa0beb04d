"""The numpy color math (``models.cie``) agrees with the torch one (``models.color``, kornia's) to float
noise: sRGB -> Lab, Lab -> linear RGB, gray <-> L, a model's input normalization and the luma."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from models import cie, color
from models.base import prepare_input


def _rgb8(n: int = 4000, seed: int = 0) -> np.ndarray:
    rgb = np.random.default_rng(seed).integers(0, 256, (n, 3)).astype(np.uint8)
    return np.concatenate([rgb, np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 0, 255]], np.uint8)])


def _as_image(rgb8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb8.astype(np.float32) / 255.0).t().reshape(1, 3, -1, 1)


def test_srgb_to_lab_is_models_colors():
    rgb = _rgb8()
    want = color.rgb_to_lab(_as_image(rgb))[0, :, :, 0].t().numpy()
    np.testing.assert_allclose(cie.srgb8_to_lab(rgb), want, atol=2e-3)
    np.testing.assert_allclose(cie.srgb8_to_ab(rgb), want[:, 1:], atol=2e-3)


def test_lab_to_linear_rgb_is_models_colors():
    lab = cie.srgb8_to_lab(_rgb8(seed=1))
    linear = cie.lab_to_linear_rgb(lab[:, 0], lab[:, 1], lab[:, 2])
    srgb = np.clip(cie.linear_to_srgb(np.clip(linear, 0.0, 1.0)), 0.0, 1.0).T
    want = color.lab_to_rgb(torch.from_numpy(lab).t().reshape(1, 3, -1, 1))[0, :, :, 0].t().numpy()
    np.testing.assert_allclose(srgb, want, atol=1e-4)


def test_gray_and_lightness_are_models_colors():
    levels = cie.gray_level_lightness(256)
    np.testing.assert_allclose(levels, color.gray_level_lightness(256).numpy(), atol=1e-4)
    g = np.random.default_rng(2).uniform(0, 1, (30, 40)).astype(np.float32)
    np.testing.assert_allclose(cie.gray_to_l(g), color.gray_to_l(torch.from_numpy(g)[None, None])[0, 0].numpy(),
                               atol=1e-3)
    # l_to_gray8 inverts the lightness of every gray level, and gives a color page's gray as models.color does.
    assert np.array_equal(cie.l_to_gray8(levels), np.arange(256, dtype=np.uint8))
    rgb = _rgb8(seed=3)
    L = color.rgb_to_lab(_as_image(rgb))[0, 0, :, 0].numpy()
    want = color.rgb_to_gray(_as_image(rgb))[0, 0, :, 0].numpy() * 255.0
    assert np.abs(cie.l_to_gray8(L).astype(np.float32) - want).max() <= 0.51


def test_input_normalization_is_prepare_inputs():
    g = np.random.default_rng(4).uniform(0, 1, (20, 30)).astype(np.float32)
    for norm in ("lab", "gray01"):
        want = prepare_input(torch.from_numpy(g)[None, None], norm)[0, 0].numpy()
        np.testing.assert_allclose(cie.normalize_gray(g, norm), want, atol=1e-4)


def test_the_one_luma():
    rgb = _rgb8(seed=5)
    # Rec. 601, PIL's convert("L") (within its fixed-point rounding) ...
    pil = np.asarray(Image.fromarray(rgb[None], "RGB").convert("L"))[0]
    assert np.abs(cie.luma8(rgb).astype(int) - pil.astype(int)).max() <= 1
    # ... and on neutral colors the gray itself, as models.color's gray of a color is.
    neutral = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    assert np.array_equal(cie.luma8(neutral), neutral[:, 0])
    want = color.rgb_to_gray(_as_image(neutral))[0, 0, :, 0].numpy() * 255.0
    assert np.abs(cie.luma(neutral) - want).max() < 1e-2
