"""Image-quality metrics, batched torch functions shared by training validation and ``mangacolor eval``.

Every function takes sRGB in [0, 1] as ``[B, 3, H, W]`` (gray ``[B, 1, H, W]`` is accepted and read
as a neutral color where a metric needs three channels) and returns one value per image, ``[B]``,
on the inputs' device. Internally they compute in float64 so that the numbers equal
``skimage.metrics`` / ``skimage.color`` to 1e-4 (docs/ARCHITECTURE.md, "Metrics"); tests prove it.

    >>> from models.toolbox import metrics
    >>> metrics.compute_all(pred, target)   # {'mse': [B], 'psnr': [B], 'ssim': [B], ...}

``TargetMetrics`` gives the same numbers for 8-bit pages on the CPU, the way ``mangacolor eval``
scores: from exact integer sums, and CIEDE2000 once per distinct pair of colors (docs/ARCHITECTURE.md,
"Metrics").

SSIM and PSNR are written here, not taken from a library: ``kornia.metrics.ssim`` is another measure (a
Gaussian window, not skimage's uniform 7x7 with the sample covariance) and ``kornia.metrics.psnr`` pools a
batch's MSE into one number; ``skimage.metrics`` is per image, numpy on the CPU (no GPU batches during
training), and slower on a page than ``TargetMetrics``. Tests hold both copies equal to skimage.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from models.color import rgb_to_lab

SSIM_WIN = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03
# Hasler & Suesstrunk 2003, metric M3: sigma_rgyb + 0.3 * mu_rgyb.
COLORFULNESS_MU_WEIGHT = 0.3

# The one list of metric names: what ``compute_all`` returns, in the order tables show them.
METRICS = ("mse", "psnr", "ssim", "ciede2000", "colorfulness", "colorfulness_target")
# Validation during training: the L1 of the predicted chroma, then every metric but MSE (PSNR is MSE in dB).
VALIDATION_METRICS = ("l1_ab",) + tuple(m for m in METRICS if m != "mse")
METRIC_LABELS = {"l1_ab": "L1 ab", "mse": "MSE", "psnr": "PSNR", "ssim": "SSIM", "ciede2000": "ΔE2000",
                 "colorfulness": "colorful.", "colorfulness_target": "colorful. target"}
# Which way is better (colorfulness has no better side: it should be near the target's).
LOWER_IS_BETTER = {"l1_ab": True, "mse": True, "psnr": False, "ssim": False, "ciede2000": True}
# The row every colorization is read beside, in training validation and in eval alike (``gray_baseline``).
GRAY_BASELINE = "gray baseline"


def metric_header(name: str) -> str:
    """A table header: the metric's label with ↓ (lower is better) or ↑ (higher is better)."""
    arrow = {True: "↓", False: "↑"}.get(LOWER_IS_BETTER.get(name), "")
    return METRIC_LABELS[name] + arrow


def gray_baseline(gray):
    """The one definition of what the gray baseline scores: the gray input page itself taken as the prediction,
    what colorize gives with no color (the compose keeps the page's lightness and adds no chroma), read by
    every metric as a neutral color. Not the target's luminance: the input's own tones, screentone and scan
    noise count against it as they count against a model. ``gray``: a page ``uint8 [H, W]`` (eval) or a
    batch ``[B, 1, H, W]`` in [0, 1] (training validation); returned as it is, gray."""
    if not (gray.ndim == 2 or (gray.ndim == 4 and gray.shape[1] == 1)):
        raise ValueError(f"the gray baseline is a gray page [H, W] or batch [B, 1, H, W], not {tuple(gray.shape)}")
    return gray


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


def _polar_2pi(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.atan2(y, x)
    return torch.hypot(x, y), torch.where(t < 0, t + 2 * math.pi, t)


def ciede2000_map(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    """CIEDE2000 color difference per pixel, Lab ``[B, 3, H, W]`` -> ``[B, H, W]``.

    A line-by-line port of ``skimage.color.deltaE_ciede2000`` (kL = kC = kH = 1), including its
    handling of achromatic pixels (C1*C2 = 0) and of the hue wrap-around.
    """
    L1, a1, b1 = lab1.unbind(1)
    L2, a2, b2 = lab2.unbind(1)
    cbar = 0.5 * (torch.hypot(a1, b1) + torch.hypot(a2, b2))
    c7 = cbar ** 7
    g = 0.5 * (1 - torch.sqrt(c7 / (c7 + 25.0 ** 7)))
    C1, h1 = _polar_2pi(a1 * (1 + g), b1)
    C2, h2 = _polar_2pi(a2 * (1 + g), b2)

    lbar = 0.5 * (L1 + L2)
    tmp = (lbar - 50) ** 2
    sl = 1 + 0.015 * tmp / torch.sqrt(20 + tmp)
    l_term = (L2 - L1) / sl

    cbar = 0.5 * (C1 + C2)
    sc = 1 + 0.045 * cbar
    c_term = (C2 - C1) / sc

    h_diff = h2 - h1
    h_sum = h1 + h2
    cc = C1 * C2
    achromatic = cc == 0
    dh = torch.where(h_diff > math.pi, h_diff - 2 * math.pi, h_diff)
    dh = torch.where(h_diff < -math.pi, dh + 2 * math.pi, dh)
    dh = torch.where(achromatic, torch.zeros_like(dh), dh)
    dh_term = 2 * torch.sqrt(cc) * torch.sin(dh / 2)

    wrapped = (~achromatic) & (h_diff.abs() > math.pi)
    hbar = torch.where(wrapped & (h_sum < 2 * math.pi), h_sum + 2 * math.pi, h_sum)
    hbar = torch.where(wrapped & (h_sum >= 2 * math.pi), h_sum - 2 * math.pi, hbar)
    hbar = torch.where(achromatic, hbar * 2, hbar) * 0.5

    t = (1 - 0.17 * torch.cos(hbar - math.radians(30)) + 0.24 * torch.cos(2 * hbar)
         + 0.32 * torch.cos(3 * hbar + math.radians(6)) - 0.20 * torch.cos(4 * hbar - math.radians(63)))
    sh = 1 + 0.015 * cbar * t
    h_term = dh_term / sh

    c7 = cbar ** 7
    rc = 2 * torch.sqrt(c7 / (c7 + 25.0 ** 7))
    dtheta = math.radians(30) * torch.exp(-(((torch.rad2deg(hbar) - 275) / 25) ** 2))
    r_term = -torch.sin(2 * dtheta) * rc * c_term * h_term

    de2 = l_term ** 2 + c_term ** 2 + h_term ** 2 + r_term
    return torch.sqrt(de2.clamp_min(0))


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


# ------------------------------------------------------------------------------------ 8-bit pages on the CPU
# SSIM from 7x7 window sums of the 0-255 values: every denominator of skimage's formula cancels, leaving
# s = (2 Sx Sy + K1) (2 (n Sxy - Sx Sy) + K2) / ((Sx^2 + Sy^2 + K1) (n (Sxx + Syy) - Sx^2 - Sy^2 + K2)), n = 49.
_WINDOW = SSIM_WIN * SSIM_WIN
_SSIM_K1_SUMS = (SSIM_K1 * _WINDOW * 255) ** 2
_SSIM_K2_SUMS = SSIM_K2 ** 2 * (_WINDOW - 1) * _WINDOW * 255 ** 2


class TargetMetrics:
    """Every metric of ``METRICS`` for 8-bit predictions of one 8-bit target page, on the CPU.

    ``TargetMetrics(target).score(pred)`` equals ``compute_all`` (so skimage) on the same pages: a
    target ``uint8 [H, W, 3]``, a prediction ``uint8 [H, W, 3]`` or gray ``[H, W]`` (a neutral color).
    It is what ``mangacolor eval`` scores with, 20-30x faster than float64 tensors on a page: MSE,
    colorfulness and SSIM's window moments are exact integer sums, CIEDE2000 is computed once per
    distinct (target color, predicted color) pair (a manga page has thousands, not millions), and
    the target's share (its moments, colors, colorfulness) once for every prediction scored against it.
    """

    def __init__(self, target: np.ndarray):
        if target.dtype != np.uint8 or target.ndim != 3 or target.shape[2] != 3:
            raise ValueError(f"expected a uint8 [H, W, 3] target, got {target.dtype} {target.shape}")
        if min(target.shape[:2]) < SSIM_WIN:
            raise ValueError(f"SSIM needs images at least {SSIM_WIN}x{SSIM_WIN}, got {target.shape[:2]}")
        self.shape = target.shape[:2]
        self._planes = _planes(target)
        self._moments = [_own_moments(y) for y in self._planes]
        self._colors = _packed_colors(target).astype(np.int64) << 24
        self.colorfulness = _colorfulness_of_planes(self._planes)

    def score(self, pred: np.ndarray) -> dict[str, float]:
        """``{metric: value}`` for every metric of ``METRICS``."""
        gray = pred.ndim == 2
        if pred.dtype != np.uint8 or pred.shape[:2] != self.shape or not (gray or pred.shape[2:] == (3,)):
            raise ValueError(f"prediction {pred.dtype} {pred.shape} does not match the target {self.shape + (3,)}")
        planes = [pred] * 3 if gray else _planes(pred)
        pixels = self.shape[0] * self.shape[1]
        squares = 0
        for x, y in zip(planes, self._planes):
            d = x.astype(np.int32) - y
            squares += int(np.einsum("ij,ij->", d, d, dtype=np.int64))
        mse = squares / (3 * pixels * 255 ** 2)
        colors = (pred.astype(np.int32) * 0x010101) if gray else _packed_colors(pred)
        return {
            "mse": mse,
            "psnr": math.inf if squares == 0 else 10.0 * math.log10(1.0 / mse),
            "ssim": self._ssim(planes, gray),
            "ciede2000": self._ciede2000(colors, pixels),
            "colorfulness": 0.0 if gray else _colorfulness_of_planes(planes),
            "colorfulness_target": self.colorfulness,
        }

    def _ssim(self, planes: list[np.ndarray], gray: bool) -> float:
        total, own = 0.0, None
        for x, (y, sy, sy2, syy) in zip(planes, self._moments):
            if own is None or not gray:  # a gray prediction's own moments are the same in all three channels
                own = _own_moments(x)
            x, sx, sx2, sxx = own
            # Exact in int32 (every term under 2**29); only the last products and the ratio are rounded.
            sxsy2 = 2 * sx * sy
            squares = sx2 + sy2
            covariances = 2 * _WINDOW * _window_sums(x * y) - sxsy2
            variances = sxx + syy - squares
            num = (sxsy2.astype(np.float32) + _SSIM_K1_SUMS) * (covariances.astype(np.float32) + _SSIM_K2_SUMS)
            den = (squares.astype(np.float32) + _SSIM_K1_SUMS) * (variances.astype(np.float32) + _SSIM_K2_SUMS)
            total += float((num / den).mean(dtype=np.float64))
        return total / 3

    def _ciede2000(self, colors: np.ndarray, pixels: int) -> float:
        pairs, counts = np.unique(self._colors | colors, return_counts=True)
        threads = torch.get_num_threads()
        # Thousands of pairs: a second OpenMP thread only adds its wake-up, 13 ms an op on a busy 2-core
        # CPU against 0.01 ms on one (the count is per calling thread, restored after).
        torch.set_num_threads(1)
        try:
            per_pair = ciede2000_map(rgb_to_lab(_unpacked_colors(pairs >> 24)),
                                     rgb_to_lab(_unpacked_colors(pairs & 0xFFFFFF)))
        finally:
            torch.set_num_threads(threads)
        return float(per_pair[0, 0].numpy() @ counts) / pixels


def _planes(rgb: np.ndarray) -> list[np.ndarray]:
    return [np.ascontiguousarray(rgb[..., c]) for c in range(3)]


def _own_moments(plane: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A plane's share of SSIM: the plane as float32, its window sums S, S**2 and 49 times its squares' sums."""
    x = plane.astype(np.float32)
    s = _window_sums(x)
    return x, s, s * s, _WINDOW * _window_sums(x * x)


def _window_sums(plane: np.ndarray) -> np.ndarray:
    """Sums over every 7x7 window inside ``plane`` (float32 [H, W] of 0-255 values or their products) ->
    int32 [H-6, W-6], by 4+2+1 rows, then columns: exact, since no sum of 49 such values reaches 2**24."""
    def rows(p: np.ndarray) -> np.ndarray:
        two = p[:-1] + p[1:]
        four = two[:-2] + two[2:]
        return four[:-3] + two[4:-1] + p[6:]
    return rows(rows(plane).T).T.astype(np.int32)


def _packed_colors(rgb: np.ndarray) -> np.ndarray:
    """``uint8 [H, W, 3]`` -> ``int32 [H, W]``: each pixel's color as one 24-bit number."""
    r, g, b = (rgb[..., c].astype(np.int32) for c in range(3))
    return (r << 16) | (g << 8) | b


def _unpacked_colors(colors: np.ndarray) -> torch.Tensor:
    """24-bit colors ``[K]`` -> sRGB in [0, 1] as a float64 ``[1, 3, 1, K]`` image for ``rgb_to_lab``."""
    channels = np.stack([(colors >> 16) & 255, (colors >> 8) & 255, colors & 255]).astype(np.float64) / 255
    return torch.from_numpy(channels)[None, :, None, :]


def _colorfulness_of_planes(planes: list[np.ndarray]) -> float:
    """``colorfulness`` from exact integer sums of rg = R - G and 2 yb = R + G - 2 B."""
    r, g, b = (p.astype(np.int32) for p in planes)
    n = r.size
    rg, yb2 = r - g, r + g - 2 * b
    s_rg, s_yb2 = int(rg.sum(dtype=np.int64)), int(yb2.sum(dtype=np.int64))
    ss_rg = int(np.einsum("ij,ij->", rg, rg, dtype=np.int64))
    ss_yb2 = int(np.einsum("ij,ij->", yb2, yb2, dtype=np.int64))
    variance = (n * ss_rg - s_rg ** 2) / n ** 2 + (n * ss_yb2 - s_yb2 ** 2) / (4 * n ** 2)
    return math.sqrt(variance) + COLORFULNESS_MU_WEIGHT * math.hypot(s_rg / n, s_yb2 / (2 * n))
