"""Color math: Lab against scikit-image, Zhang et al.'s ab bins, soft encoding, annealed mean, rebalancing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree
from skimage import color as skcolor
from skimage import data as skdata

from models.color import (AB_GRID, NUM_AB_BINS, ab_bins, annealed_mean, lab_to_rgb, rebalance_weights,
                          rgb_to_lab, soft_encode_ab)

torch.set_num_threads(1)


def to_torch(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].double()


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).numpy()


def test_rgb_to_lab_matches_skimage_on_random_colors():
    rgb = np.random.default_rng(0).random((32, 32, 3))
    assert np.abs(to_numpy(rgb_to_lab(to_torch(rgb))) - skcolor.rgb2lab(rgb)).max() < 1e-4


def test_rgb_to_lab_matches_skimage_on_a_photo():
    rgb = skdata.astronaut()[::8, ::8] / 255.0
    assert np.abs(to_numpy(rgb_to_lab(to_torch(rgb))) - skcolor.rgb2lab(rgb)).max() < 1e-4


def test_lab_to_rgb_matches_skimage_and_round_trips():
    rgb = skdata.coffee()[::8, ::8] / 255.0
    lab = skcolor.rgb2lab(rgb)
    back = to_numpy(lab_to_rgb(to_torch(lab)))
    assert np.abs(back - skcolor.lab2rgb(lab)).max() < 1e-4
    assert np.abs(back - rgb).max() < 1e-4


def test_ab_bins_are_the_computed_in_gamut_grid_points():
    bins = ab_bins()
    assert bins.shape == (NUM_AB_BINS, 2) == (309, 2)
    assert torch.equal(bins, torch.round(bins / AB_GRID) * AB_GRID)
    assert len(torch.unique(bins, dim=0)) == len(bins)
    # Zhang's pts_in_hull span a in [-90, 100], b in [-110, 110]; the sRGB ones stop at b = 100.
    assert bins[:, 0].min() == -90 and bins[:, 0].max() == 100
    assert bins[:, 1].min() == -110 and bins[:, 1].max() == 100


def test_every_srgb_color_lies_in_a_grid_cell_whose_four_corners_are_bins():
    rgb = np.random.default_rng(1).random((20000, 1, 3))
    ab = skcolor.rgb2lab(rgb)[:, 0, 1:]
    corner = np.floor(ab / AB_GRID).astype(int) * int(AB_GRID)
    bins = {tuple(b) for b in ab_bins().int().tolist()}
    for da in (0, 10):
        for db in (0, 10):
            assert all((a + da, b + db) in bins for a, b in corner)


def test_every_bin_is_within_one_grid_step_of_an_srgb_color():
    # The gamut's ab outline is traced by the RGB cube's edges; sample them densely with skimage.
    t = np.linspace(0, 1, 2000)
    edges = []
    for axis in range(3):
        for v0 in (0, 1):
            for v1 in (0, 1):
                e = np.empty((t.size, 3))
                rest = [i for i in range(3) if i != axis]
                e[:, axis], e[:, rest[0]], e[:, rest[1]] = t, v0, v1
                edges.append(e)
    inner = np.random.default_rng(2).random((20000, 3))
    ab = skcolor.rgb2lab(np.concatenate(edges + [inner])[:, None])[:, 0, 1:]
    cheb, _ = cKDTree(ab).query(ab_bins().double().numpy(), p=np.inf)  # each bin's nearest color, max-norm
    assert cheb.max() <= AB_GRID


def test_soft_encoding_sums_to_one_over_five_bins():
    bins = ab_bins()
    ab = torch.tensor([[[[3.0, -47.0]], [[12.5, 60.0]]]]).reshape(1, 2, 1, 2)
    enc = soft_encode_ab(ab, bins)
    assert enc.shape == (1, NUM_AB_BINS, 1, 2)
    assert torch.allclose(enc.sum(1), torch.ones(1, 1, 2))
    assert ((enc > 0).sum(1) == 5).all()


def bin_index(a: float, b: float) -> int:
    return int(((ab_bins() - torch.tensor([a, b])).abs().sum(1) == 0).nonzero())


def test_soft_encoding_of_a_bin_center_weights_it_and_its_four_neighbors_by_gaussian():
    enc = soft_encode_ab(torch.tensor([0.0, 0.0]).reshape(1, 2, 1, 1), ab_bins())[0, :, 0, 0]
    # Distances 0 and four times 10, sigma 5: weights 1 and exp(-100/50) each, normalized.
    total = 1 + 4 * math.exp(-2)
    assert enc[bin_index(0, 0)].item() == pytest.approx(1 / total, rel=1e-5)
    for a, b in [(10, 0), (-10, 0), (0, 10), (0, -10)]:
        assert enc[bin_index(a, b)].item() == pytest.approx(math.exp(-2) / total, rel=1e-5)


def test_soft_encoding_halfway_between_two_bins_splits_evenly_between_them():
    enc = soft_encode_ab(torch.tensor([5.0, 0.0]).reshape(1, 2, 1, 1), ab_bins())[0, :, 0, 0]
    # Two bins at distance 5, then three of the four at sqrt(125).
    near, far = math.exp(-25 / 50), math.exp(-125 / 50)
    total = 2 * near + 3 * far
    assert enc[bin_index(0, 0)].item() == pytest.approx(near / total, rel=1e-5)
    assert enc[bin_index(10, 0)].item() == pytest.approx(near / total, rel=1e-5)


def test_annealed_mean_of_two_bins_matches_the_hand_computed_value():
    bins = torch.tensor([[0.0, 0.0], [10.0, 20.0]])
    p = torch.tensor([0.75, 0.25])
    logits = torch.log(p).reshape(1, 2, 1, 1)
    T = 0.38
    q = p ** (1 / T) / (p ** (1 / T)).sum()
    ab = annealed_mean(logits, bins, T)[0, :, 0, 0]
    assert ab.tolist() == pytest.approx([10 * q[1].item(), 20 * q[1].item()], rel=1e-5)
    # T = 1 is the plain mean; smaller T moves toward the mode.
    assert annealed_mean(logits, bins, 1.0)[0, :, 0, 0].tolist() == pytest.approx([2.5, 5.0], rel=1e-5)
    assert ab[0] < 2.5


def smoothed_prior(counts: torch.Tensor, sigma: float = 5.0) -> torch.Tensor:
    bins = ab_bins().double()
    kernel = torch.exp(-torch.cdist(bins, bins) ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)
    return kernel @ (counts.double() / counts.sum())


def test_rebalance_weights_have_expectation_one_under_the_smoothed_prior():
    counts = torch.zeros(NUM_AB_BINS)
    counts[bin_index(0, 0)] = 1000  # gray dominates, as on real pages
    counts[bin_index(40, 30)] = 10
    counts += torch.rand(NUM_AB_BINS, generator=torch.Generator().manual_seed(0))
    w = rebalance_weights(counts)
    assert (smoothed_prior(counts) * w.double()).sum().item() == pytest.approx(1.0, rel=1e-5)
    assert w[bin_index(40, 30)] > w[bin_index(0, 0)]
    assert w[bin_index(-80, 80)] > w[bin_index(40, 30)]


def test_rebalance_weights_of_uniform_counts_are_all_one():
    w = rebalance_weights(torch.ones(NUM_AB_BINS))
    assert torch.allclose(w, torch.ones(NUM_AB_BINS), atol=1e-4)
