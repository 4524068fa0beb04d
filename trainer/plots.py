"""Pictures of a run: the loss curves (one drawing, as a PNG with Pillow or as inline SVG for the eval
report) and the preview grid."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from models.toolbox.files import atomic_path
from models.toolbox.images import tensor_to_uint8

from .metrics_log import curve_series

if TYPE_CHECKING:  # the loss curves draw without torch (eval's report of --pred/--target folders)
    import torch

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


Color = tuple[int, int, int]


class _PngCanvas:
    """Draws a chart with Pillow."""

    def __init__(self, width: int, height: int):
        self.image = Image.new("RGB", (width, height), "white")
        self._draw = ImageDraw.Draw(self.image)
        self._font = ImageFont.load_default()

    def line(self, points: list[tuple[float, float]], color: Color, width: int = 1, dashed: bool = False,
             series: bool = False) -> None:
        if dashed:
            (x0, y0), (x1, y1) = points[0], points[-1]
            steps = max(1, int(math.hypot(x1 - x0, y1 - y0) // 7))
            for i in range(0, steps, 2):
                a, b = i / steps, min(1.0, (i + 1) / steps)
                self._draw.line([(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a), (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)],
                                fill=color, width=width)
        else:
            self._draw.line(points, fill=color, width=width)

    def dot(self, x: float, y: float, color: Color) -> None:
        self._draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=color)

    def text(self, x: float, y: float, text: str, color: Color = (0, 0, 0)) -> None:
        self._draw.text((x, y), text, fill=color, font=self._font)

    def frame(self, box: tuple[float, float, float, float]) -> None:
        self._draw.rectangle(box, outline="black")


class _SvgCanvas:
    """Draws a chart as inline SVG (for the HTML report)."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self._parts = [f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fafafa" stroke="#ddd"/>']

    @staticmethod
    def _rgb(color: Color) -> str:
        return "#%02x%02x%02x" % color

    def line(self, points: list[tuple[float, float]], color: Color, width: int = 1, dashed: bool = False,
             series: bool = False) -> None:
        stroke = f'stroke="{self._rgb(color)}" stroke-width="{width}"' + (' stroke-dasharray="4 3"' if dashed else "")
        if series:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            self._parts.append(f'<polyline fill="none" {stroke} points="{coords}"/>')
        else:
            (x0, y0), (x1, y1) = points[0], points[-1]
            self._parts.append(f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" {stroke}/>')

    def dot(self, x: float, y: float, color: Color) -> None:
        self._parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{self._rgb(color)}"/>')

    def text(self, x: float, y: float, text: str, color: Color = (0, 0, 0)) -> None:
        # Pillow places text by its top, SVG by its baseline: 9 px of default font apart.
        self._parts.append(f'<text x="{x:.1f}" y="{y + 9:.1f}" font-size="10" fill="{self._rgb(color)}">'
                           f'{html.escape(text)}</text>')

    def frame(self, box: tuple[float, float, float, float]) -> None:
        x0, y0, x1, y1 = box
        self._parts.append(f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="none" stroke="#999"/>')

    def svg(self) -> str:
        return f'<svg width="{self.width}" height="{self.height}" class="curve">{"".join(self._parts)}</svg>'


def _draw_chart(canvas, series: Mapping[str, Sequence[tuple[float, float]]], *, title: str, size: tuple[int, int],
                margins: tuple[int, int, int, int], x_label: str = "step", baseline: float | None = None,
                legend: bool = True) -> None:
    """The one loss-curve drawing: named ``(step, value)`` series in one panel, ticks, optional legend,
    and the gray baseline as a dashed line. Long noisy series are drawn smoothed over their faint raw points."""
    W, H = size
    left, right, top, bottom = margins
    canvas.text(left, 10, title)
    pts = [(s, v) for xs in series.values() for s, v in xs if math.isfinite(v)]
    if not pts:
        canvas.text(left, H // 2, "no data yet", (128, 128, 128))
        return
    ys = [p[1] for p in pts] + ([baseline] if baseline is not None else [])
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    pad = (y1 - y0) * 0.05 or abs(y1) * 0.05 or 1.0
    y0, y1 = y0 - pad, y1 + pad
    pw, ph = W - left - right, H - top - bottom

    def xy(s: float, v: float) -> tuple[float, float]:
        return left + (s - x0) / (x1 - x0) * pw, top + (1 - (v - y0) / (y1 - y0)) * ph

    for t in _nice_ticks(y0, y1):
        _, y = xy(x0, t)
        canvas.line([(left, y), (left + pw, y)], (230, 230, 230))
        canvas.text(4, y - 6, f"{t:.4g}")
    for t in _nice_ticks(x0, x1):
        x, _ = xy(t, y0)
        canvas.line([(x, top), (x, top + ph)], (240, 240, 240))
        canvas.text(x - 10, top + ph + 6, f"{t:.0f}")
    canvas.frame((left, top, left + pw, top + ph))
    canvas.text(left + pw // 2 - 10, H - 14, x_label)
    if baseline is not None:
        _, y = xy(x0, baseline)
        canvas.line([(left, y), (left + pw, y)], (119, 119, 119), dashed=True)
        canvas.text(left + pw - 60, y - 12, f"gray {baseline:.3g}", (85, 85, 85))
    for i, (name, xs) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        xs = [(s, v) for s, v in xs if math.isfinite(v)]
        if not xs:
            continue
        window = max(1, len(xs) // 50)
        if window > 1:
            canvas.line([xy(s, v) for s, v in xs], tuple(c + (255 - c) * 3 // 4 for c in color), series=True)
        smooth = _smooth([v for _, v in xs], window)
        line = [xy(s, v) for (s, _), v in zip(xs, smooth)]
        if len(line) > 1:
            canvas.line(line, color, width=2, series=True)
        if len(xs) <= 40:
            for x, y in line:
                canvas.dot(x, y, color)
        if legend:
            ly = top + 8 + 16 * i
            canvas.line([(left + pw + 12, ly + 6), (left + pw + 32, ly + 6)], color, width=3)
            canvas.text(left + pw + 38, ly, name)


def draw_loss_curve(series: Mapping[str, Sequence[tuple[float, float]]], path: str | Path,
                    title: str = "loss", size: tuple[int, int] = (900, 520)) -> Path:
    """The run's ``loss_curve.png``: named ``(step, value)`` series in one panel with a legend."""
    canvas = _PngCanvas(*size)
    _draw_chart(canvas, series, title=title, size=size, margins=(70, 170, 36, 44))
    return save_png_atomic(canvas.image, path)


def loss_curves_svg(records: list[dict], size: tuple[int, int] = (360, 180)) -> str:
    """Inline SVG small multiples of a run's ``metrics.jsonl`` records: one chart per series with two or
    more points, the gray baseline dashed on the matching val chart (``trainer.metrics_log.curve_series``)."""
    series, baselines, x_key = curve_series(records)
    charts = []
    for name, pts in series.items():
        if len(pts) < 2:
            continue
        canvas = _SvgCanvas(*size)
        ref = baselines.get(name[4:]) if name.startswith("val ") else None
        _draw_chart(canvas, {name: pts}, title=name, size=size, margins=(44, 10, 24, 30), x_label=x_key,
                    baseline=ref, legend=False)
        charts.append(canvas.svg())
    return "\n".join(charts) or "<p>No numeric series with two or more points in metrics.jsonl.</p>"


def preview_grid(gray: torch.Tensor, pred: torch.Tensor, target: torch.Tensor, path: str | Path,
                 gap: int = 4, caption: str | None = None, min_cell: int = 128) -> Path:
    """A PNG with one row per image: gray input | prediction | target (``[B, C, H, W]`` in [0, 1])."""
    import torch.nn.functional as F

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
