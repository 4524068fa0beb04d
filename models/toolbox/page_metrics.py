"""The metric names, and every metric for 8-bit pages on the CPU without torch: ``TargetMetrics``, what
``mangacolor eval`` scores with (docs/ARCHITECTURE.md, "Metrics"). ``models.toolbox.metrics`` holds the batched
torch functions (training validation, a GPU) and re-exports these; tests hold both equal to skimage.
"""

from __future__ import annotations

import math

import numpy as np

from models.cie import ciede2000, srgb8_to_lab

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
        per_pair = ciede2000(srgb8_to_lab(_unpacked_colors(pairs >> 24), np.float64),
                             srgb8_to_lab(_unpacked_colors(pairs & 0xFFFFFF), np.float64))
        return float(per_pair @ counts) / pixels


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


def _unpacked_colors(colors: np.ndarray) -> np.ndarray:
    """24-bit colors ``[K]`` -> their 8-bit sRGB levels ``[K, 3]``."""
    return np.stack([(colors >> 16) & 255, (colors >> 8) & 255, colors & 255], axis=-1)


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
