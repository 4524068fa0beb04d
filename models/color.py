"""Color math in torch: Lab <-> sRGB (D65), normalization, Zhang et al.'s ab bins (the numpy twin: ``models.cie``).

Every function is a pure, batch-first torch function: ``[B, C, H, W]`` in, same layout out,
differentiable where it makes sense, usable on any device and inside an exported ONNX graph.
Lab <-> sRGB is kornia.color (plain torch ops); tests check it against ``skimage.color``.
"""

from __future__ import annotations

import functools
from typing import Iterable

import torch
from kornia.color import lab_to_rgb as _kornia_lab_to_rgb
from kornia.color import linear_rgb_to_rgb
from kornia.color import rgb_to_lab as _kornia_rgb_to_lab

# The constants are shared with the numpy twin (models.cie); the normalization (docs/ARCHITECTURE.md,
# "Color"): L/50 - 1 in [-1, 1], ab/110 in [-1, 1].
from .cie import (AB_SCALE, FILL_CHROMA_FULL, FILL_CHROMA_START, L_SCALE, SRGB_TABLE_SIZE,  # noqa: F401
                  WHITE_X, WHITE_Z, XYZ_TO_LINEAR_RGB)

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


@functools.lru_cache(maxsize=4)
def gray_level_lightness(levels: int, device: str = "cpu") -> torch.Tensor:
    """L of every gray level (256 for 8-bit, 65536 for 16-bit), ``[levels]``: a full-resolution gray
    page's L is one lookup instead of a Lab conversion."""
    gray = torch.arange(levels, dtype=torch.float32).div(levels - 1).view(1, 1, 1, -1)
    return gray_to_l(gray).flatten().to(device)


def normalize_l(L: torch.Tensor) -> torch.Tensor:
    return L / L_SCALE - 1.0


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


def ab_bin_counts(ab_norm_batches: Iterable[torch.Tensor], bins: torch.Tensor) -> torch.Tensor:
    """How many pixels of normalized ab batches ``[B,2,H,W]`` fall nearest each bin, ``[Q]`` float64
    (what ``rebalance_weights`` takes)."""
    bins = bins.cpu()
    counts = torch.zeros(bins.shape[0], dtype=torch.float64)
    for ab_norm in ab_norm_batches:
        ab = denormalize_ab(ab_norm.float().cpu()).permute(0, 2, 3, 1).reshape(-1, 2)
        counts += torch.bincount(torch.cdist(ab, bins).argmin(dim=1), minlength=bins.shape[0]).double()
    return counts


def ab_bin_targets(ab_norm: torch.Tensor, bins: torch.Tensor, rebalance: torch.Tensor,
                   pool: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-encoded targets ``[B,Q,h,w]`` and per-pixel rebalancing weights ``[B,h,w]`` for bin logits
    at ``1/pool`` of the input's size."""
    ab = denormalize_ab(torch.nn.functional.avg_pool2d(ab_norm.float(), pool))
    target = soft_encode_ab(ab, bins)
    return target, rebalance[target.argmax(dim=1)]


def rebalanced_cross_entropy(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Zhang et al.'s multinomial cross-entropy against soft targets, each pixel weighted (a scalar loss)."""
    log_p = torch.nn.functional.log_softmax(logits.float(), dim=1)
    return -(weight * (target * log_p).sum(dim=1)).mean()


# ---------------------------------------------------------------- Lab -> sRGB keeping L (inference)


def _lab_f_inverse(f: torch.Tensor) -> torch.Tensor:
    # CIE's f^-1 exactly as kornia.color.lab_to_rgb writes it (cube above the knee, linear below).
    return torch.where(f > 0.2068966, f * f * f, (f - 4.0 / 29.0) / 7.787)


def _chroma_keeping_l(L: torch.Tensor, ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Lab (L ``[B,1,H,W]``, ab ``[B,2,H,W]``) -> luminance Y, gamut scale k and per-channel offsets d.

    Linear RGB = Y + d; the gamut-mapped color is Y + k*d with k in [0, 1] the largest scale that
    keeps every channel in [0, 1]. d sums to 0 under the luminance weights, so Y (hence L) is kept.
    One pass over fused float32 planes: this is the hot loop of composing a full-resolution page.
    """
    L, ab = L.float(), ab.float()
    fy = (L + 16.0) / 116.0
    Y = _lab_f_inverse(fy)
    X = _lab_f_inverse(ab[:, :1] / 500.0 + fy).mul_(WHITE_X)
    Z = _lab_f_inverse((fy - ab[:, 1:] / 200.0).clamp_(min=0.0)).mul_(WHITE_Z)
    offsets = []
    for m_x, m_y, m_z in XYZ_TO_LINEAR_RGB:
        offsets.append((X * m_x).add_(Y, alpha=m_y - 1.0).add_(Z, alpha=m_z))
    d_max = torch.maximum(torch.maximum(offsets[0], offsets[1]), offsets[2])
    d_min = torch.minimum(torch.minimum(offsets[0], offsets[1]), offsets[2])
    # How far the color overshoots: above 1 (room 1 - Y) or below 0 (room Y); k = 1 / overshoot, at most 1.
    over = d_max.mul_((1.0 - Y).clamp_(min=1e-7).reciprocal_())
    under = d_min.neg_().mul_(Y.clamp(min=1e-7).reciprocal_())
    k = torch.maximum(over, under).clamp_(min=1.0).reciprocal_()
    return Y, k, offsets


def lab_to_srgb_keeping_l(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """L ``[B,1,H,W]`` + ab ``[B,2,H,W]`` (Lab units) -> sRGB in [0, 1] whose L is exactly the given L.

    Plain clipping of an out-of-gamut color changes its lightness; instead each pixel's chroma is
    scaled toward gray in linear RGB, which keeps luminance Y (hence L) and roughly keeps the hue.
    """
    Y, k, offsets = _chroma_keeping_l(L, ab)
    linear = torch.cat([torch.addcmul(Y, k, d).clamp_(0.0, 1.0) for d in offsets], dim=1)
    return linear_rgb_to_rgb(linear).clamp(0.0, 1.0)


@functools.lru_cache(maxsize=4)
def _srgb8_table(device: str) -> torch.Tensor:
    # Linear RGB in [0, 1] sampled at SRGB_TABLE_SIZE steps -> sRGB uint8, rounded once here instead of per pixel.
    linear = torch.linspace(0.0, 1.0, SRGB_TABLE_SIZE, dtype=torch.float64).view(1, 1, 1, -1).expand(1, 3, 1, -1)
    return linear_rgb_to_rgb(linear)[0, 0, 0].mul(255.0).round().to(torch.uint8).to(device)


def lab_to_srgb8_keeping_l(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """``lab_to_srgb_keeping_l`` for one page straight to ``HxWx3`` uint8 (L ``[1,1,H,W]``, ab ``[1,2,H,W]``).

    The sRGB gamma is a table lookup and the scaling to table indices is folded into the gamut
    mapping, so a 2-megapixel page costs a few dozen passes over float32 planes and no ``pow``.
    """
    Y, k, offsets = _chroma_keeping_l(L, ab)
    table = _srgb8_table(str(L.device))
    top = SRGB_TABLE_SIZE - 1
    base = Y.mul_(top).add_(0.5)
    k = k.mul_(top)
    out = torch.empty(*L.shape[-2:], 3, dtype=torch.uint8, device=L.device)
    for c, d in enumerate(offsets):
        index = torch.addcmul(base, k, d, out=d).clamp_(0.0, top + 0.49).to(torch.int32)
        out[..., c] = table[index[0, 0]]
    return out




def fill_lightness(ab: torch.Tensor, iterations: int = 14) -> torch.Tensor:
    """The highest L at which each pixel's chroma ``ab`` ``[B,2,h,w]`` (Lab units) fits in sRGB, ``[B,1,h,w]``.

    Why: binary manga pages are ink (L 0) and paper (L 100), where sRGB holds no chroma at all, so
    keeping the page's L exactly would leave them gray. A fill color may instead lower the paper's
    lightness to the brightest L that holds it; ink is never brightened, so lines stay exactly as
    they are (the output L is ``min(page L, fill L)``). Small chroma (below FILL_CHROMA_START) asks
    for no darkening, so a faint tint never casts over white paper.
    """
    ab = ab.float()
    lo = torch.zeros_like(ab[:, :1])
    hi = torch.full_like(lo, 100.0)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        rgb = lab_to_rgb(torch.cat([mid, ab], dim=1), clip=False)
        # Brighter than the gamut's top surface: some channel above 1 -> search lower.
        fits = rgb.amax(dim=1, keepdim=True) <= 1.0
        lo = torch.where(fits, mid, lo)
        hi = torch.where(fits, hi, mid)
    chroma = ab.pow(2).sum(dim=1, keepdim=True).sqrt()
    weight = ((chroma - FILL_CHROMA_START) / (FILL_CHROMA_FULL - FILL_CHROMA_START)).clamp(0.0, 1.0)
    return 100.0 - weight * (100.0 - lo)
