"""Color math, in one place: Lab <-> sRGB (D65), normalization, Zhang et al.'s ab bins.

Every function is a pure, batch-first torch function: ``[B, C, H, W]`` in, same layout out,
differentiable where it makes sense, usable on any device and inside an exported ONNX graph.
Lab <-> sRGB is kornia.color (plain torch ops); tests check it against ``skimage.color``.
"""

from __future__ import annotations

import functools

import torch
from kornia.color import lab_to_rgb as _kornia_lab_to_rgb
from kornia.color import rgb_to_lab as _kornia_rgb_to_lab

# Normalization used by every model (DESIGN 1): L/50 - 1 in [-1, 1], ab/110 in [-1, 1].
L_SCALE = 50.0
AB_SCALE = 110.0

# Zhang et al. 2016 quantize ab on a grid of 10 and keep 313 in-gamut points (pts_in_hull.npy).
# Computed here from the sRGB gamut (every corner of a grid cell that holds an sRGB color) it is
# 309: Zhang's 313 are these plus 4 points more than one grid step away from any sRGB color.
AB_GRID = 10.0
NUM_AB_BINS = 309
ANNEAL_T = 0.38
SOFT_ENCODE_NEIGHBORS = 5
SOFT_ENCODE_SIGMA = 5.0
REBALANCE_LAMBDA = 0.5


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], ``[B, 3, H, W]`` -> CIE Lab (D65): L in [0, 100], a/b roughly [-110, 110]."""
    return _kornia_rgb_to_lab(rgb.clamp(0.0, 1.0))


def lab_to_rgb(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """CIE Lab (D65) ``[B, 3, H, W]`` -> sRGB in [0, 1] (clipped unless ``clip=False``)."""
    return _kornia_lab_to_rgb(lab, clip=clip)


def rgb_to_gray(rgb: torch.Tensor) -> torch.Tensor:
    """Luminance the way a gray page has it: L of Lab mapped back to a gray sRGB value in [0, 1]."""
    lab = rgb_to_lab(rgb)
    zeros = torch.zeros_like(lab[:, :2])
    return lab_to_rgb(torch.cat([lab[:, :1], zeros], dim=1))[:, :1]


def gray_to_l(gray: torch.Tensor) -> torch.Tensor:
    """Gray sRGB value in [0, 1], ``[B, 1, H, W]`` -> L in [0, 100]. Exact inverse of a neutral color."""
    rgb = gray.clamp(0.0, 1.0).expand(-1, 3, -1, -1)
    return rgb_to_lab(rgb)[:, :1]


def normalize_l(L: torch.Tensor) -> torch.Tensor:
    return L / L_SCALE - 1.0


def denormalize_l(L_norm: torch.Tensor) -> torch.Tensor:
    return (L_norm + 1.0) * L_SCALE


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    return ab / AB_SCALE


def denormalize_ab(ab_norm: torch.Tensor) -> torch.Tensor:
    return ab_norm * AB_SCALE


def join_lab(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] ``[B,1,H,W]`` + ab in Lab units ``[B,2,H,W]`` -> sRGB in [0, 1]."""
    return lab_to_rgb(torch.cat([L, ab], dim=1))


def rgb_to_ab_norm(rgb: torch.Tensor) -> torch.Tensor:
    """The chroma of an RGB prediction (pix2pixHD, CycleGAN), normalized to [-1, 1]."""
    return normalize_ab(rgb_to_lab(rgb)[:, 1:])


# ---------------------------------------------------------------- Zhang et al.'s ab bins
def _srgb_cube_boundary(edge_samples: int = 4096, face_samples: int = 64) -> torch.Tensor:
    """sRGB colors ``[N, 3]`` (float64) on the cube's 12 edges (dense) and 6 faces (coarse).

    The ab outline of the sRGB gamut is traced by the cube's edges (the saturated hue ring),
    and the faces cover the inside of that outline, so these points reach every ab cell the
    gamut touches; dense edges make the count exact even for cells the outline only grazes.
    """
    pts = []
    t = torch.linspace(0.0, 1.0, edge_samples, dtype=torch.float64)
    for axis in range(3):
        rest = [i for i in range(3) if i != axis]
        for v0 in (0.0, 1.0):
            for v1 in (0.0, 1.0):
                cols = [t, t, t]
                cols[rest[0]] = torch.full_like(t, v0)
                cols[rest[1]] = torch.full_like(t, v1)
                pts.append(torch.stack(cols, dim=1))
    s = torch.linspace(0.0, 1.0, face_samples, dtype=torch.float64)
    u, v = (g.reshape(-1) for g in torch.meshgrid(s, s, indexing="ij"))
    for axis in range(3):
        rest = [i for i in range(3) if i != axis]
        for val in (0.0, 1.0):
            cols = [u, u, u]
            cols[axis] = torch.full_like(u, val)
            cols[rest[0]], cols[rest[1]] = u, v
            pts.append(torch.stack(cols, dim=1))
    return torch.cat(pts)


@functools.lru_cache(maxsize=1)
def _ab_bins_cpu() -> torch.Tensor:
    # A bin is a grid point that is a corner of a 10x10 ab cell holding an in-gamut sRGB color:
    # then every in-gamut ab lies in a cell whose four corners are all bins.
    rgb = _srgb_cube_boundary()
    ab = rgb_to_lab(rgb.t().reshape(1, 3, -1, 1))[0, 1:, :, 0].t()
    cells = torch.unique(torch.floor(ab / AB_GRID).long(), dim=0)
    offsets = torch.tensor([[0, 0], [1, 0], [0, 1], [1, 1]])
    corners = torch.unique((cells[:, None, :] + offsets[None]).reshape(-1, 2), dim=0) * int(AB_GRID)
    order = torch.argsort(corners[:, 0] * 1000 + corners[:, 1])
    return corners[order].float()


def ab_bins(device: torch.device | str | None = None) -> torch.Tensor:
    """The in-gamut ab bin centers, ``[NUM_AB_BINS, 2]`` in Lab units, sorted by (a, b)."""
    bins = _ab_bins_cpu()
    return bins.to(device) if device is not None else bins.clone()


def soft_encode_ab(ab: torch.Tensor, bins: torch.Tensor,
                   neighbors: int = SOFT_ENCODE_NEIGHBORS,
                   sigma: float = SOFT_ENCODE_SIGMA) -> torch.Tensor:
    """ab in Lab units ``[B,2,H,W]`` -> soft one-hot ``[B,Q,H,W]`` over its nearest bins, Gaussian-weighted."""
    B, _, H, W = ab.shape
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    dist = torch.cdist(flat.float(), bins.float())
    d, idx = dist.topk(neighbors, dim=1, largest=False)
    w = torch.exp(-(d ** 2) / (2 * sigma ** 2))
    w = w / w.sum(dim=1, keepdim=True)
    out = torch.zeros(flat.shape[0], bins.shape[0], device=ab.device, dtype=torch.float32)
    out.scatter_(1, idx, w)
    return out.reshape(B, H, W, -1).permute(0, 3, 1, 2)


def annealed_mean(logits: torch.Tensor, bins: torch.Tensor, T: float = ANNEAL_T) -> torch.Tensor:
    """Distribution logits ``[B,Q,H,W]`` -> ab in Lab units ``[B,2,H,W]``: mean of softmax(log p / T)."""
    # softmax(logits) ** (1/T), renormalized, equals softmax(logits / T).
    p = torch.softmax(logits.float() / T, dim=1)
    return torch.einsum("bqhw,qc->bchw", p, bins.to(p))


def rebalance_weights(bin_counts: torch.Tensor, lam: float = REBALANCE_LAMBDA,
                      sigma: float = SOFT_ENCODE_SIGMA, bins: torch.Tensor | None = None) -> torch.Tensor:
    """Zhang et al.'s class-rebalancing weights from bin counts ``[Q]``.

    The empirical distribution is smoothed with a Gaussian (sigma 5 in ab units), mixed with the
    uniform by ``lam``, inverted, and normalized so the expected weight under p~ is 1.
    """
    bins = ab_bins() if bins is None else bins.cpu()
    p = bin_counts.double() / bin_counts.sum().clamp_min(1)
    d2 = torch.cdist(bins.double(), bins.double()) ** 2
    kernel = torch.exp(-d2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    p_smooth = kernel @ p
    Q = p.numel()
    w = 1.0 / ((1 - lam) * p_smooth + lam / Q)
    w = w / (p_smooth * w).sum()
    return w.float()
