"""Image-quality metrics, batched torch functions shared by training validation and ``mangacolor eval``.

Every function takes sRGB in [0, 1] as ``[B, 3, H, W]`` (gray ``[B, 1, H, W]`` is accepted and read
as a neutral color where a metric needs three channels) and returns one value per image, ``[B]``,
on the inputs' device. Internally they compute in float64 so that the numbers equal
``skimage.metrics`` / ``skimage.color`` to 1e-4 (docs/ARCHITECTURE.md, "Metrics"); tests prove it.

    >>> from models.toolbox import metrics
    >>> metrics.compute_all(pred, target)   # {'mse': [B], 'psnr': [B], 'ssim': [B], ...}

``TargetMetrics`` (``models.toolbox.page_metrics``, numpy, torch-free; re-exported here with the metric names)
gives the same numbers for 8-bit pages on the CPU, the way ``mangacolor eval`` scores: from exact integer
sums, and CIEDE2000 once per distinct pair of colors (docs/ARCHITECTURE.md, "Metrics").

SSIM and PSNR are written here, not taken from a library: ``kornia.metrics.ssim`` is another measure (a
Gaussian window, not skimage's uniform 7x7 with the sample covariance) and ``kornia.metrics.psnr`` pools a
batch's MSE into one number; ``skimage.metrics`` is per image, numpy on the CPU (no GPU batches during
training), and slower on a page than ``TargetMetrics``. Tests hold both copies equal to skimage.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from models.cie import ciede2000 as cie_ciede2000
from models.color import rgb_to_lab

from .page_metrics import (COLORFULNESS_MU_WEIGHT, GRAY_BASELINE, LOWER_IS_BETTER, METRIC_LABELS, METRICS,  # noqa: F401
                           SSIM_K1, SSIM_K2, SSIM_WIN, VALIDATION_METRICS, TargetMetrics, gray_baseline,
                           metric_header)


def _as_batch(x: torch.Tensor) -> torch.Tensor:
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4:
        raise ValueError(f"expected an image batch [B, C, H, W], got shape {tuple(x.shape)}")
    return x


def _pair(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pred, target = _as_batch(pred), _as_batch(target)
    if pred.shape[-2:] != target.shape[-2:] or pred.shape[0] != target.shape[0]:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in size")
    if pred.shape[1] != target.shape[1]:
        # A gray prediction against a color target (the gray baseline) is scored as a neutral color.
        pred, target = _rgb(pred), _rgb(target)
    return pred, target.to(pred.device)


def _rgb(x: torch.Tensor) -> torch.Tensor:
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def _f64(x: torch.Tensor) -> torch.Tensor:
    # MPS has no float64; there float32 is the best available.
    return x.float() if x.device.type == "mps" else x.double()


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image over all pixels and channels (``skimage.metrics.mean_squared_error``)."""
    pred, target = _pair(pred, target)
    return ((_f64(pred) - _f64(target)) ** 2).flatten(1).mean(dim=1)


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """PSNR in dB per image (``skimage.metrics.peak_signal_noise_ratio`` with ``data_range=1``).

    Identical images give ``inf``, as skimage does.
    """
    return _decibels(mse(pred, target), data_range)


def _decibels(err: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    return 10.0 * torch.log10(data_range ** 2 / err)


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM per image, equal to skimage's DEFAULT settings.

    That is ``skimage.metrics.structural_similarity(target, pred, channel_axis=-1, data_range=1.0)``:
    a 7x7 uniform window, K1 = 0.01, K2 = 0.03, the sample covariance (N/(N-1)), computed per
    channel and averaged, the mean taken over the valid region only (a 3-pixel border cropped, which
    is exactly a 'valid' 7x7 box filter). Images need both sides >= 7.
    """
    pred, target = _pair(pred, target)
    if min(pred.shape[-2:]) < SSIM_WIN:
        raise ValueError(f"SSIM needs images at least {SSIM_WIN}x{SSIM_WIN}, got {tuple(pred.shape[-2:])}")
    x, y = _f64(pred), _f64(target)
    B, C = x.shape[:2]
    # Box-filter the five moments of all channels at once: [5*B*C, 1, H, W] through one avg_pool.
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=0).reshape(5 * B * C, 1, *x.shape[-2:])
    # The 7x7 box filter as two 1-D passes: same sums, 14 instead of 49 reads per pixel.
    pooled = F.avg_pool2d(F.avg_pool2d(stack, (SSIM_WIN, 1), stride=1), (1, SSIM_WIN), stride=1)
    ux, uy, uxx, uyy, uxy = pooled.reshape(5, B, C, *pooled.shape[-2:])
    n = SSIM_WIN * SSIM_WIN
    cov_norm = n / (n - 1)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.flatten(1).mean(dim=1)


def ciede2000_map(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    """CIEDE2000 color difference per pixel, Lab ``[B, 3, H, W]`` -> ``[B, H, W]``: ``models.cie.ciede2000`` (the
    port of ``skimage.color.deltaE_ciede2000``) on torch tensors, the one implementation numpy shares."""
    return cie_ciede2000(lab1.movedim(1, -1), lab2.movedim(1, -1), xp=torch)


def ciede2000(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean CIEDE2000 color difference per image, both converted with ``models.color.rgb_to_lab``.

    Equals ``skimage.color.deltaE_ciede2000(rgb2lab(target), rgb2lab(pred)).mean()`` to 1e-4.
    """
    pred, target = _pair(pred, target)
    lab_p = rgb_to_lab(_f64(_rgb(pred)))
    lab_t = rgb_to_lab(_f64(_rgb(target)))
    return ciede2000_map(lab_t, lab_p).flatten(1).mean(dim=1)


def colorfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler & Suesstrunk (2003) colorfulness M3 per image, on 0-255 RGB.

    rg = R - G, yb = (R + G)/2 - B; M = sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2),
    with population standard deviations over the image. 0 for a gray image; ~100+ is vivid.
    """
    rgb = _rgb(_as_batch(rgb))
    x = _f64(rgb) * 255.0
    r, g, b = x[:, 0].flatten(1), x[:, 1].flatten(1), x[:, 2].flatten(1)
    rg = r - g
    yb = 0.5 * (r + g) - b
    sigma = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False))
    mu = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)
    return sigma + COLORFULNESS_MU_WEIGHT * mu


def compute_all(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every metric of ``METRICS`` for a batch: ``mse``, ``psnr``, ``ssim``, ``ciede2000``,
    ``colorfulness`` (of ``pred``) and ``colorfulness_target``; each a float64 ``[B]`` tensor on the inputs' device."""
    pred, target = _pair(pred, target)
    err = mse(pred, target)
    return {
        "mse": err,
        "psnr": _decibels(err),
        "ssim": ssim(pred, target),
        "ciede2000": ciede2000(pred, target),
        "colorfulness": colorfulness(pred),
        "colorfulness_target": colorfulness(target),
    }
