"""models.toolbox.metrics equals skimage's metrics to 1e-4 on random and real images (docs/ARCHITECTURE.md, "Metrics")."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from skimage import data as skdata
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from models.toolbox import metrics

TOL = 1e-4


def _to_torch(*images: np.ndarray) -> torch.Tensor:
    return torch.stack([torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1) for im in images]).float()


def _real_pair() -> tuple[np.ndarray, np.ndarray]:
    # Two photographs bundled with skimage, cropped small; float32 like the pipeline's tensors.
    a = skdata.astronaut()[100:164, 150:221].astype(np.float32) / 255
    b = skdata.coffee()[50:114, 200:271].astype(np.float32) / 255
    return a, b


def _pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    a, b = _real_pair()
    noisy = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1).astype(np.float32)
    gray_a = np.repeat(a.mean(axis=2, keepdims=True), 3, axis=2)
    return [
        ("random", rng.random((33, 41, 3), dtype=np.float32), rng.random((33, 41, 3), dtype=np.float32)),
        ("real_vs_real", a, b),
        ("real_vs_noisy", noisy, a),
        ("gray_vs_color", gray_a, a),
    ]


@pytest.mark.parametrize("name,pred,target", _pairs(), ids=[p[0] for p in _pairs()])
def test_metrics_equal_skimage(name, pred, target):
    p64, t64 = pred.astype(np.float64), target.astype(np.float64)
    got = metrics.compute_all(_to_torch(pred), _to_torch(target))
    assert got["mse"].item() == pytest.approx(mean_squared_error(t64, p64), abs=TOL)
    assert got["psnr"].item() == pytest.approx(peak_signal_noise_ratio(t64, p64, data_range=1.0), abs=TOL)
    assert got["ssim"].item() == pytest.approx(
        structural_similarity(t64, p64, channel_axis=-1, data_range=1.0), abs=TOL)
    assert got["ciede2000"].item() == pytest.approx(deltaE_ciede2000(rgb2lab(t64), rgb2lab(p64)).mean(), abs=TOL)


def test_batched_metrics_equal_per_image_metrics():
    pairs = [(p, t) for _, p, t in _pairs() if p.shape == (64, 71, 3)]
    preds, targets = _to_torch(*[p for p, _ in pairs]), _to_torch(*[t for _, t in pairs])
    batch = metrics.compute_all(preds, targets)
    for i, (p, t) in enumerate(pairs):
        single = metrics.compute_all(_to_torch(p), _to_torch(t))
        for key, values in batch.items():
            assert values.shape == (len(pairs),)
            assert values[i].item() == pytest.approx(single[key].item(), abs=1e-9), key


def test_identical_images_score_perfectly():
    a, _ = _real_pair()
    x = _to_torch(a)
    got = metrics.compute_all(x, x)
    assert got["mse"].item() == 0
    assert math.isinf(got["psnr"].item())
    assert got["ssim"].item() == pytest.approx(1.0, abs=1e-12)
    assert got["ciede2000"].item() == pytest.approx(0.0, abs=1e-9)
    assert got["colorfulness"].item() == pytest.approx(got["colorfulness_target"].item())


@pytest.mark.parametrize("offset,expected_db", [(0.1, 20.0), (0.01, 40.0), (1 / 255, 20 * math.log10(255))])
def test_psnr_of_constant_offset(offset, expected_db):
    target = torch.full((2, 3, 16, 16), 0.5)
    assert metrics.psnr(target + offset, target) == pytest.approx(torch.full((2,), expected_db), abs=1e-3)
    assert metrics.mse(target - offset, target) == pytest.approx(torch.full((2,), offset ** 2), rel=1e-4)


def test_ssim_and_psnr_of_each_image_in_a_batch_equal_skimage_where_kornias_would_not():
    # Why models.toolbox.metrics keeps its own SSIM and PSNR: kornia's SSIM is Gaussian-windowed (another number than
    # skimage's default) and its PSNR pools the batch's MSE; ours give skimage's number for every image.
    import kornia.metrics

    a, b = (x.astype(np.float64) for x in _real_pair())
    preds, targets = _to_torch(a, b).double(), _to_torch(b, b * 0.9).double()
    ssims, psnrs = metrics.ssim(preds, targets), metrics.psnr(preds, targets)
    for i, (p, t) in enumerate([(a, b), (b, b * 0.9)]):
        assert ssims[i].item() == pytest.approx(structural_similarity(t, p, channel_axis=-1, data_range=1.0), abs=TOL)
        assert psnrs[i].item() == pytest.approx(peak_signal_noise_ratio(t, p, data_range=1.0), abs=TOL)
    gaussian = kornia.metrics.ssim(preds[:1], targets[:1], 7, padding="valid").mean().item()
    assert abs(gaussian - ssims[0].item()) > 0.01
    assert kornia.metrics.psnr(preds, targets, 1.0).dim() == 0  # one number for the whole batch


# Sharma, Wu, Dalal (2005), "The CIEDE2000 color-difference formula", Table 1 (first pairs and
# the hue wrap-around and achromatic cases).
SHARMA = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 3.1571, -77.2803), (50.0, 0.0, -82.7485), 2.8615),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0011), 7.2195),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((2.0776, 0.0795, -1.135), (0.9033, -0.0636, -0.5514), 0.9082),
]


def test_ciede2000_matches_sharma_reference_pairs():
    lab1 = torch.tensor([p[0] for p in SHARMA], dtype=torch.float64).reshape(-1, 3, 1, 1)
    lab2 = torch.tensor([p[1] for p in SHARMA], dtype=torch.float64).reshape(-1, 3, 1, 1)
    expected = torch.tensor([p[2] for p in SHARMA], dtype=torch.float64)
    assert metrics.ciede2000_map(lab1, lab2).flatten() == pytest.approx(expected, abs=1e-4)
    # symmetric
    assert metrics.ciede2000_map(lab2, lab1).flatten() == pytest.approx(expected, abs=1e-4)


def test_colorfulness_of_known_images():
    gray = torch.rand(1, 1, 8, 8)
    assert metrics.colorfulness(gray).item() == pytest.approx(0.0, abs=1e-9)
    assert metrics.colorfulness(gray.expand(-1, 3, -1, -1)).item() == pytest.approx(0.0, abs=1e-9)
    # Flat pure red: rg = 255, yb = 127.5, no spread -> 0.3 * |(255, 127.5)|.
    red = torch.zeros(1, 3, 8, 8)
    red[:, 0] = 1
    assert metrics.colorfulness(red).item() == pytest.approx(0.3 * math.hypot(255, 127.5), rel=1e-6)
    # Half red, half green: mean rg = 0, yb = 127.5 everywhere; std of rg = 255.
    rg = torch.zeros(1, 3, 8, 8)
    rg[:, 0, :, :4] = 1
    rg[:, 1, :, 4:] = 1
    assert metrics.colorfulness(rg).item() == pytest.approx(255 + 0.3 * 127.5, rel=1e-6)


def test_colorfulness_matches_hasler_susstrunk_formula_on_a_photo():
    a, _ = _real_pair()
    x = a.astype(np.float64) * 255
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    expected = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    assert metrics.colorfulness(_to_torch(a)).item() == pytest.approx(expected, abs=TOL)


def test_gray_prediction_is_scored_as_a_neutral_color():
    a, _ = _real_pair()
    target = _to_torch(a)
    gray = target.mean(dim=1, keepdim=True)
    one_channel = metrics.compute_all(gray, target)
    three_channel = metrics.compute_all(gray.expand(-1, 3, -1, -1), target)
    for key in one_channel:
        assert one_channel[key].item() == pytest.approx(three_channel[key].item(), abs=1e-9), key


def test_mismatched_sizes_and_tiny_images_are_errors():
    with pytest.raises(ValueError, match="differ in size"):
        metrics.mse(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))
    with pytest.raises(ValueError, match="at least 7x7"):
        metrics.ssim(torch.rand(1, 3, 6, 8), torch.rand(1, 3, 6, 8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_metrics_on_cuda_equal_cpu():
    _, pred, target = _pairs()[1]
    cpu = metrics.compute_all(_to_torch(pred), _to_torch(target))
    gpu = metrics.compute_all(_to_torch(pred).cuda(), _to_torch(target).cuda())
    for key in cpu:
        assert gpu[key].device.type == "cuda"
        assert gpu[key].cpu().item() == pytest.approx(cpu[key].item(), abs=TOL), key


# ------------------------------------------------------------------------------------ TargetMetrics (8-bit pages)
def _uint8_pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    a, b = ((x * 255).round().astype(np.uint8) for x in _real_pair())
    noisy = np.clip(a.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
    flat = np.full((40, 52, 3), 255, np.uint8)  # a manga-like page: paper, flat fills, ink lines
    flat[5:20, 5:30] = (210, 40, 50)
    flat[25:35, 10:45] = (40, 90, 200)
    flat[::9, :] = 0
    flat_pred = flat.copy()
    flat_pred[5:20, 5:30] = (180, 60, 60)
    return [
        ("random", rng.integers(0, 256, (33, 41, 3), dtype=np.uint8),
         rng.integers(0, 256, (33, 41, 3), dtype=np.uint8)),
        ("real_vs_real", a, b),
        ("real_vs_noisy", noisy, a),
        ("gray_vs_color", a.mean(axis=2).round().astype(np.uint8), a),
        ("flat_page", flat_pred, flat),
        ("smallest", rng.integers(0, 256, (7, 7, 3), dtype=np.uint8), rng.integers(0, 256, (7, 7, 3), dtype=np.uint8)),
    ]


@pytest.mark.parametrize("name,pred,target", _uint8_pairs(), ids=[p[0] for p in _uint8_pairs()])
def test_target_metrics_of_8bit_pages_equal_skimage_and_compute_all(name, pred, target):
    got = metrics.TargetMetrics(target).score(pred)
    assert list(got) == list(metrics.METRICS)
    p64 = (np.repeat(pred[..., None], 3, axis=2) if pred.ndim == 2 else pred).astype(np.float64) / 255
    t64 = target.astype(np.float64) / 255
    assert got["mse"] == pytest.approx(mean_squared_error(t64, p64), abs=1e-12)
    assert got["psnr"] == pytest.approx(peak_signal_noise_ratio(t64, p64, data_range=1.0), abs=1e-9)
    assert got["ssim"] == pytest.approx(structural_similarity(t64, p64, channel_axis=-1, data_range=1.0), abs=1e-7)
    assert got["ciede2000"] == pytest.approx(deltaE_ciede2000(rgb2lab(t64), rgb2lab(p64)).mean(), abs=1e-9)
    as_tensor = lambda x: torch.from_numpy(np.ascontiguousarray(x if x.ndim == 3 else x[..., None])).permute(
        2, 0, 1)[None].double() / 255
    expected = metrics.compute_all(as_tensor(pred), as_tensor(target))
    for key in metrics.METRICS:
        assert got[key] == pytest.approx(expected[key].item(), abs=1e-7), key


def test_target_metrics_score_many_predictions_of_one_target_alike():
    _, pred, target = _uint8_pairs()[2]
    on_target = metrics.TargetMetrics(target)
    first = on_target.score(pred)
    on_target.score(target)
    assert on_target.score(pred) == first == metrics.TargetMetrics(target).score(pred)
    same = on_target.score(target)
    assert same["mse"] == 0 and math.isinf(same["psnr"]) and same["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert same["ciede2000"] == 0 and same["colorfulness"] == pytest.approx(same["colorfulness_target"])
    gray = pred.mean(axis=2).round().astype(np.uint8)
    assert on_target.score(gray) == on_target.score(np.repeat(gray[..., None], 3, axis=2)) | {"colorfulness": 0.0}


def test_target_metrics_refuse_other_sizes_types_and_tiny_pages():
    target = np.zeros((20, 30, 3), np.uint8)
    with pytest.raises(ValueError, match="does not match"):
        metrics.TargetMetrics(target).score(np.zeros((20, 31, 3), np.uint8))
    with pytest.raises(ValueError, match="does not match"):
        metrics.TargetMetrics(target).score(np.zeros((20, 30, 3), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        metrics.TargetMetrics(target.astype(np.uint16))
    with pytest.raises(ValueError, match="at least 7x7"):
        metrics.TargetMetrics(np.zeros((6, 30, 3), np.uint8))


def test_target_metrics_score_a_large_page_in_a_fraction_of_the_tensor_time():
    # A 1200x1700 page took 10 s per system as float64 tensors on a 2-core CPU; a flat-colored page
    # has ~10^4 distinct color pairs, so CIEDE2000 per pair is far cheaper than per pixel.
    rng = np.random.default_rng(2)
    target = np.full((1700, 1200, 3), 255, np.uint8)
    for _ in range(40):
        y, x = rng.integers(0, 1600), rng.integers(0, 1100)
        target[y:y + 100, x:x + 100] = rng.integers(0, 256, 3)
    pred = np.clip(target.astype(int) + rng.integers(-3, 4, target.shape), 0, 255).astype(np.uint8)
    started = time.perf_counter()
    got = metrics.TargetMetrics(target).score(pred)
    assert time.perf_counter() - started < 5.0
    assert 0 < got["ciede2000"] < 5 and got["ssim"] > 0.5


def test_the_numpy_ciede2000_is_the_torch_map():
    """``models.cie.ciede2000`` on numpy arrays (eval's CPU scores, without torch) against ``ciede2000_map`` (the
    same code on tensors), on random colors, equal pairs, grays and the Sharma pairs' hue wrap-around."""
    from models.cie import ciede2000, srgb8_to_lab
    from models.color import rgb_to_lab

    rng = np.random.default_rng(5)
    a, b = rng.integers(0, 256, (2, 4000, 3))
    b[:400] = a[:400]
    b[400:600] = 128
    ta, tb = (torch.from_numpy(x.T[None, :, None, :] / 255.0) for x in (a, b))
    expected = metrics.ciede2000_map(rgb_to_lab(ta), rgb_to_lab(tb))[0, 0].numpy()
    assert np.abs(ciede2000(srgb8_to_lab(a, np.float64), srgb8_to_lab(b, np.float64)) - expected).max() < 1e-9
    sharma = ciede2000(np.array([p[0] for p in SHARMA]), np.array([p[1] for p in SHARMA]))
    assert sharma == pytest.approx([p[2] for p in SHARMA], abs=1e-4)


def test_the_numpy_lightness_gray_is_rgb_to_gray():
    from models.cie import rgb_to_gray8
    from models.color import rgb_to_gray
    from models.toolbox.images import tensor_to_uint8, uint8_to_tensor

    rgb = np.random.default_rng(6).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    expected = tensor_to_uint8(rgb_to_gray(uint8_to_tensor(rgb)[None])[0])
    got = rgb_to_gray8(rgb)
    assert np.abs(got.astype(int) - expected).max() <= 1 and (got != expected).mean() < 1e-4
