"""Pictures of a run, drawn with Pillow alone: the loss curves and the preview grid."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from models.files import atomic_path

from .images import tensor_to_uint8

PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def save_png_atomic(img: Image.Image, path: str | Path) -> Path:
    """Write a PNG through a temporary file beside it, so a reader never sees half an image."""
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return Path(path)


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    step = 10 ** math.floor(math.log10(span / n))
    for m in (1, 2, 5, 10):
        if span / (step * m) <= n:
            step *= m
            break
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


def _smooth(values: Sequence[float], window: int) -> list[float]:
    if window <= 1 or len(values) < 3:
        return list(values)
    arr = np.asarray(values, dtype=np.float64)
    kernel = np.ones(window) / window
    padded = np.concatenate([np.full(window - 1, arr[0]), arr])
    return np.convolve(padded, kernel, mode="valid").tolist()


def draw_loss_curve(series: Mapping[str, Sequence[tuple[float, float]]], path: str | Path,
                    title: str = "loss", size: tuple[int, int] = (900, 520)) -> Path:
    """Line plot of named ``(step, value)`` series (one panel, a legend, ticks) written as a PNG.

    Long noisy series are drawn smoothed with a moving average; the raw points are faint behind.
    """
    W, H = size
    left, right, top, bottom = 70, 170, 36, 44
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    pts = [(s, v) for xs in series.values() for s, v in xs if math.isfinite(v)]
    d.text((left, 10), title, fill="black", font=font)
    if not pts:
        d.text((left, H // 2), "no data yet", fill="gray", font=font)
        return save_png_atomic(img, path)
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    if x1 == x0:
        x1 = x0 + 1
    pad = (y1 - y0) * 0.05 or abs(y1) * 0.05 or 1.0
    y0, y1 = y0 - pad, y1 + pad
    pw, ph = W - left - right, H - top - bottom

    def xy(s: float, v: float) -> tuple[float, float]:
        return left + (s - x0) / (x1 - x0) * pw, top + (1 - (v - y0) / (y1 - y0)) * ph

    for t in _nice_ticks(y0, y1):
        _, y = xy(x0, t)
        d.line([(left, y), (left + pw, y)], fill=(230, 230, 230))
        d.text((4, y - 6), f"{t:.4g}", fill="black", font=font)
    for t in _nice_ticks(x0, x1):
        x, _ = xy(t, y0)
        d.line([(x, top), (x, top + ph)], fill=(240, 240, 240))
        d.text((x - 10, top + ph + 6), f"{t:.0f}", fill="black", font=font)
    d.rectangle([left, top, left + pw, top + ph], outline="black")
    d.text((left + pw // 2 - 10, H - 18), "step", fill="black", font=font)
    for i, (name, xs) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        xs = [(s, v) for s, v in xs if math.isfinite(v)]
        if not xs:
            continue
        window = max(1, len(xs) // 50)
        if window > 1:
            faint = tuple(c + (255 - c) * 3 // 4 for c in color)
            d.line([xy(s, v) for s, v in xs], fill=faint, width=1)
        smooth = _smooth([v for _, v in xs], window)
        line = [xy(s, v) for (s, _), v in zip(xs, smooth)]
        if len(line) > 1:
            d.line(line, fill=color, width=2)
        if len(xs) <= 40:
            for x, y in line:
                d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=color)
        ly = top + 8 + 16 * i
        d.line([(left + pw + 12, ly + 6), (left + pw + 32, ly + 6)], fill=color, width=3)
        d.text((left + pw + 38, ly), name, fill="black", font=font)
    return save_png_atomic(img, path)


def preview_grid(gray: torch.Tensor, pred: torch.Tensor, target: torch.Tensor, path: str | Path,
                 gap: int = 4, caption: str | None = None, min_cell: int = 128) -> Path:
    """A PNG with one row per image: gray input | prediction | target (``[B, C, H, W]`` in [0, 1])."""
    if target.shape[-1] < min_cell:
        # Tiny training crops are shown enlarged, pixel for pixel, so they can be judged by eye.
        k = math.ceil(min_cell / target.shape[-1])
        gray, pred, target = (F.interpolate(t.float(), scale_factor=k, mode="nearest") for t in (gray, pred, target))
    B, _, H, W = target.shape
    head = 16 if caption else 0
    img = Image.new("RGB", (3 * W + 4 * gap, B * (H + gap) + gap + head), (255, 255, 255))
    if caption:
        ImageDraw.Draw(img).text((gap, 2), caption, fill="black", font=ImageFont.load_default())
    for i in range(B):
        for j, col in enumerate((gray[i], pred[i], target[i])):
            img.paste(Image.fromarray(tensor_to_uint8(col)).convert("RGB"), (gap + j * (W + gap), head + gap + i * (H + gap)))
    return save_png_atomic(img, path)
