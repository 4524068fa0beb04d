#!/usr/bin/env python3
"""Compose drawings into synthetic manga pages: panels, borders, gutters, balloons, screentones.

A page is first *planned* (layout, backgrounds, drawing placements, balloons) from a seeded RNG,
then *rendered* in one of two modes from the same plan:
  - "color": flat colors and gradients behind the color drawings (a training target);
  - "bw": the same page in ink: line art over white silhouettes, screentone dots where the color
    page has tones, so a paired bw/color page shares its layout pixel for pixel.

    python -m trainer.pages pages       # recompose data/pages from data/drawings
    python -m trainer.pages sample      # rebuild examples/sample_chapter.cbz
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import time
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from multiprocessing import Pool
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from models.files import atomic_path

from ..images import read_image, to_rgba8

PHRASES = (
    "What?!", "Wait for me!", "Let's go!", "I knew it...", "No way!", "Hey!", "Over here!",
    "It's fine.", "Run!!", "Huh?", "Look out!", "I'm hungry.", "Is that...?", "Thank you!",
    "Not again...", "We made it!", "Who's there?", "Leave it to me!", "Hmm...", "Ha ha ha!",
    "Where are we?", "Don't move.", "It's huge!", "Be careful.", "Got it!", "See you tomorrow!",
    "That's mine!", "Follow me.", "What a day...", "Did you see that?", "Too late!", "Yes!!",
    "I'll never give up!", "Quiet...", "Are you okay?", "Amazing!", "Let me try.", "Hurry up!",
)
SOUND_EFFECTS = ("BOOM", "WHAM", "DOKI", "ZOOM", "CRASH", "BAM", "WHOOSH", "GRR", "POW", "SNAP")
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
)


# ---------------------------------------------------------------- plan

@dataclass(frozen=True)
class Drawing:
    """One source drawing: an RGBA color PNG and, when paired, its RGBA line art of the same geometry."""

    key: str
    color: str
    line: str | None = None


@dataclass
class Placement:
    """A drawing placed in a panel: box (x, y, w, h) in panel pixels, mirrored or not."""

    drawing: Drawing
    box: tuple[int, int, int, int]
    flip: bool
    tone: bool  # bw mode: fill the drawing's mid and dark colors with screentone
    black_darks: bool  # bw mode: the darkest colors become solid ink (hair, shadows)
    tone_kind: str = "dots"  # bw mode: the screen of the tone: dots, lines (hatching) or noise


@dataclass
class Background:
    """A panel background: white, a flat color, or a vertical gradient between two colors."""

    kind: str
    colors: tuple[tuple[int, int, int], ...] = ()
    horizon: float = 0.0  # "ground": where the ground starts, as a share of the panel height


@dataclass
class Panel:
    """A rectangular panel (x0, y0, x1, y1 in page pixels, x1/y1 exclusive) and its content."""

    rect: tuple[int, int, int, int]
    background: Background
    placements: list[Placement] = field(default_factory=list)
    effect_lines: str | None = None  # "focus" (radial) or "speed" (parallel) ink lines
    effect_seed: int = 0
    tone_kind: str = "dots"  # bw mode: the screen of the background tone


@dataclass
class Balloon:
    """A speech balloon (ellipse, box or burst) with its tail tip and text lines, in page pixels."""

    rect: tuple[int, int, int, int]
    shape: str
    tail: tuple[int, int] | None
    lines: tuple[str, ...]
    font_size: int


@dataclass
class PagePlan:
    """Everything needed to render one page in either mode."""

    width: int
    height: int
    border: int
    panels: list[Panel]
    balloons: list[Balloon]
    sfx: tuple[str, int, int, int, float] | None = None  # text, x, y, size, angle
    # bw mode: "ink" (line art, white fills, tones, solid blacks) or "gray" (a gray-shaded page:
    # the color page's luma under the line art), so gray-shaded inputs are learned too.
    shading: str = "ink"

    @property
    def drawings(self) -> list[Drawing]:
        """Every drawing the page uses."""
        return [p.drawing for panel in self.panels for p in panel.placements]


@lru_cache(maxsize=8)
def load_font(size: int) -> ImageFont.ImageFont:
    """A bold DejaVu font when installed, else PIL's built-in font, at a pixel size."""
    for path in FONT_CANDIDATES:
        if os.path.exists(path):
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def plan_layout(width: int, height: int, rng: np.random.Generator,
                panels: int | None = None) -> list[tuple[int, int, int, int]]:
    """Panel rectangles for a page: 3-6 panels cut from the area inside a white margin.

    Guillotine cuts, mostly horizontal (tiers) as in manga, sometimes vertical: this yields tiers of
    1-3 panels and the tall side panels spanning two tiers that manga pages often have.
    """
    n = int(panels or rng.integers(3, 7))
    margin_x, margin_y = round(width * rng.uniform(0.045, 0.07)), round(height * rng.uniform(0.04, 0.06))
    gutter = max(2, round(width * rng.uniform(0.015, 0.025)))
    min_w, min_h = width * 0.2, height * 0.12
    rects = [(margin_x, margin_y, width - margin_x, height - margin_y)]
    for _ in range(200):
        if len(rects) >= n:
            break
        areas = np.array([(r[2] - r[0]) * (r[3] - r[1]) for r in rects], np.float64)
        i = int(rng.choice(len(rects), p=areas / areas.sum()))
        x0, y0, x1, y1 = rects[i]
        w, h = x1 - x0, y1 - y0
        horizontal = rng.uniform() < (0.8 if h / w > 0.7 else 0.25)
        t = rng.uniform(0.35, 0.65)
        if horizontal and h * min(t, 1 - t) - gutter >= min_h:
            cut = y0 + round(h * t)
            parts = [(x0, y0, x1, cut - gutter // 2), (x0, cut + (gutter - gutter // 2), x1, y1)]
        elif not horizontal and w * min(t, 1 - t) - gutter >= min_w:
            cut = x0 + round(w * t)
            parts = [(x0, y0, cut - gutter // 2, y1), (cut + (gutter - gutter // 2), y0, x1, y1)]
        else:
            continue
        rects[i:i + 1] = parts
    return sorted(rects, key=lambda r: (r[1], -r[0]))  # reading order: top to bottom, right to left


def _random_color(rng: np.random.Generator, light: bool) -> tuple[int, int, int]:
    """A random color from HSV: pastel when light, deep when not."""
    import colorsys

    h = rng.uniform(0, 1)
    s = rng.uniform(0.15, 0.45) if light else rng.uniform(0.4, 0.8)
    v = rng.uniform(0.85, 1.0) if light else rng.uniform(0.2, 0.55)
    return tuple(int(c * 255) for c in colorsys.hsv_to_rgb(h, s, v))


def plan_background(rng: np.random.Generator, white_rate: float = 0.3) -> Background:
    """White paper, a flat color, a gradient, sky over ground with a horizon, or a dark scene."""
    if rng.uniform() < white_rate:
        return Background("white")
    r = 0.3 + rng.uniform() * 0.7  # the other kinds keep their relative shares
    if r < 0.45:
        horizon = rng.uniform(0.55, 0.85)
        sky = (_random_color(rng, light=True), _random_color(rng, light=True))
        return Background("ground", (*sky, _random_color(rng, light=rng.uniform() < 0.5)), horizon)
    if r < 0.6:
        return Background("flat", (_random_color(rng, light=True),))
    if r < 0.9:
        return Background("gradient", (_random_color(rng, light=True), _random_color(rng, light=rng.uniform() < 0.6)))
    return Background("flat", (_random_color(rng, light=False),))


def plan_placements(panel_w: int, panel_h: int, drawings: Sequence[Drawing], sizes: Sequence[tuple[int, int]],
                    rng: np.random.Generator) -> list[Placement]:
    """Place drawings in a panel: a big main one, sometimes cut by the border, and smaller ones."""
    out = []
    for i, (d, (dw, dh)) in enumerate(zip(drawings, sizes)):
        if i == 0:
            rel = rng.uniform(0.6, 1.25) if rng.uniform() < 0.8 else rng.uniform(1.3, 1.9)  # close-ups
        else:
            rel = rng.uniform(0.25, 0.55)
        scale = rel * panel_h / dh
        scale = min(scale, (1.5 if i == 0 else 0.6) * panel_w / dw)
        w, h = max(4, round(dw * scale)), max(4, round(dh * scale))
        x = round(rng.uniform(-0.15 * w, panel_w - 0.85 * w)) if w < panel_w else round(rng.uniform(panel_w - w, 0))
        y = round(panel_h - h * rng.uniform(0.75, 1.05)) if i == 0 else round(rng.uniform(0.05, 0.9) * panel_h - h / 2)
        out.append(Placement(d, (x, y, w, h), bool(rng.uniform() < 0.5), bool(rng.uniform() < 0.6),
                             bool(rng.uniform() < 0.6), _tone_kind(rng)))
    # Smaller drawings go in front of the big one, as characters stand before scenery.
    return sorted(out, key=lambda p: -p.box[3])


def _tone_kind(rng: np.random.Generator) -> str:
    """Dot screens are the most common tone sheets; line screens (hatching) and noise grain less so."""
    return str(rng.choice(["dots", "dots", "dots", "lines", "noise"]))


def _wrap(text: str, font: ImageFont.ImageFont, max_width: int) -> list[str]:
    """Greedy word wrap of text into lines no wider than max_width."""
    lines, cur = [], ""
    for word in text.split():
        trial = f"{cur} {word}".strip()
        if cur and font.getlength(trial) > max_width:
            lines.append(cur)
            cur = word
        else:
            cur = trial
    return lines + ([cur] if cur else [])


def plan_balloon(panel: tuple[int, int, int, int], target: tuple[int, int] | None, font_size: int,
                 rng: np.random.Generator, taken: list[tuple[int, int, int, int]]) -> Balloon | None:
    """A balloon sized to its text in the upper part of a panel, not overlapping other balloons."""
    x0, y0, x1, y1 = panel
    font = load_font(font_size)
    text = str(rng.choice(PHRASES))
    lines = _wrap(text, font, max(font_size * 4, int((x1 - x0) * rng.uniform(0.25, 0.45))))
    tw = max(int(font.getlength(line)) for line in lines)
    th = len(lines) * round(font_size * 1.2)
    shape = str(rng.choice(["ellipse", "ellipse", "ellipse", "box", "burst"]))
    pad_x, pad_y = (0.3, 0.25) if shape == "box" else (0.75, 0.9)
    bw, bh = round(tw * (1 + pad_x) + font_size), round(th * (1 + pad_y) + font_size * 0.6)
    if bw > (x1 - x0) - 8 or bh > (y1 - y0) * 0.6:
        return None
    for _ in range(8):
        bx = round(rng.uniform(x0 + 4, x1 - 4 - bw))
        by = round(rng.uniform(y0 + 4, y0 + 4 + max(1, (y1 - y0) * 0.45 - bh)))
        rect = (bx, by, bx + bw, by + bh)
        if all(rect[2] < t[0] or rect[0] > t[2] or rect[3] < t[1] or rect[1] > t[3] for t in taken):
            tail = None
            if shape != "box":
                tx = target[0] if target else bx + bw // 2 + round(rng.uniform(-bw, bw) * 0.3)
                ty = min(y1 - 6, by + bh + round(bh * rng.uniform(0.3, 0.7)))
                tail = (int(np.clip(tx, bx + bw * 0.2, bx + bw * 0.8)), int(ty))
            return Balloon(rect, shape, tail, tuple(lines), font_size)
    return None


def plan_page(drawings: Sequence[Drawing], rng: np.random.Generator, width: int, height: int,
              size_of: Callable[[Drawing], tuple[int, int]], panels: int | None = None,
              balloon_rate: float = 0.65, white_rate: float = 0.45, gray_rate: float = 0.0) -> PagePlan:
    """Plan a page: layout, per-panel background and drawings, balloons, maybe a sound effect."""
    rects = plan_layout(width, height, rng, panels)
    border = max(1, round(width / 230))
    font_size = max(9, round(width / 38))
    plan_panels, balloons = [], []
    for rect in rects:
        pw, ph = rect[2] - rect[0], rect[3] - rect[1]
        k = int(rng.choice([1, 1, 2, 2, 3]))
        chosen = [drawings[int(i)] for i in rng.integers(0, len(drawings), k)]
        placements = plan_placements(pw, ph, chosen, [size_of(d) for d in chosen], rng)
        bg = plan_background(rng, white_rate)
        effect = None
        if bg.kind == "white" and rng.uniform() < 0.35:
            effect = "focus" if rng.uniform() < 0.6 else "speed"
        plan_panels.append(Panel(rect, bg, placements, effect, int(rng.integers(0, 2**31)), _tone_kind(rng)))
        for _ in range(int(rng.uniform() < balloon_rate) + int(rng.uniform() < balloon_rate * 0.3)):
            main = placements[0].box if placements else None
            target = None if main is None else (rect[0] + main[0] + main[2] // 2, rect[1] + max(0, main[1]) + main[3] // 4)
            b = plan_balloon(rect, target, font_size, rng, [b.rect for b in balloons])
            if b:
                balloons.append(b)
    sfx = None
    if rng.uniform() < 0.3:
        panel = rects[int(rng.integers(0, len(rects)))]
        size = round(font_size * rng.uniform(2.0, 3.2))
        text = str(rng.choice(SOUND_EFFECTS)) + "!"
        x = round(rng.uniform(panel[0], max(panel[0] + 1, panel[2] - size * 3)))
        y = round(rng.uniform(panel[1], max(panel[1] + 1, panel[3] - size * 1.5)))
        box = (x, y, x + len(text) * size, y + size * 2)
        if all(box[2] < b.rect[0] or box[0] > b.rect[2] or box[3] < b.rect[1] or box[1] > b.rect[3] for b in balloons):
            sfx = (text, x, y, size, float(rng.uniform(-20, 20)))
    shading = "gray" if rng.uniform() < gray_rate else "ink"
    return PagePlan(width, height, border, plan_panels, balloons, sfx, shading)


# ---------------------------------------------------------------- render

def screentone(density: np.ndarray, period: float, angle_deg: float = 45.0) -> np.ndarray:
    """Ink coverage in [0, 1] of an amplitude-modulated dot screen for a density map in [0, 1]."""
    h, w = density.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = math.radians(angle_deg)
    u = (xx * math.cos(a) + yy * math.sin(a)) * (2 * math.pi / period)
    v = (-xx * math.sin(a) + yy * math.cos(a)) * (2 * math.pi / period)
    cell = (np.cos(u) + np.cos(v)) * 0.25 + 0.5  # 1 at dot centers, 0 between dots
    ink = (cell - (1.0 - density)) * (period / 2.0) + 0.5  # soft edge about one pixel wide
    ink = np.clip(ink, 0.0, 1.0)
    ink[density <= 0.02] = 0.0
    return ink


def tone_screen(density: np.ndarray, period: float, angle_deg: float, kind: str, seed: int = 0) -> np.ndarray:
    """Ink coverage of a tone sheet: ``dots`` (amplitude-modulated dots), ``lines`` (a line screen, as
    hatching) or ``noise`` (a stochastic grain), for a density map in [0, 1]."""
    if kind == "dots":
        return screentone(density, period, angle_deg)
    h, w = density.shape
    if kind == "lines":
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        a = math.radians(angle_deg)
        u = (-xx * math.sin(a) + yy * math.cos(a)) * (2 * math.pi / period)
        cell = np.cos(u) * 0.5 + 0.5
        ink = (cell - (1.0 - density)) * (period / 2.0) + 0.5
    elif kind == "noise":
        grain = np.random.default_rng(seed).uniform(0.0, 1.0, (h, w)).astype(np.float32)
        ink = (grain < density).astype(np.float32)
    else:
        raise ValueError(f"unknown tone kind {kind!r}")
    ink = np.clip(ink, 0.0, 1.0)
    ink[density <= 0.02] = 0.0
    return ink


def _luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of float RGB in [0, 1]; only used to choose tone densities, not as a color model."""
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _quantized_tone(luma: np.ndarray) -> np.ndarray:
    """Tone density for a luma map, in a few discrete steps as with real screentone sheets."""
    density = np.clip((0.92 - luma) * 0.85, 0.0, 0.65)
    return np.round(density / 0.15) * 0.15


def background_rgb(bg: Background, h: int, w: int) -> np.ndarray:
    """The color background of a panel as float RGB [h, w, 3]."""
    if bg.kind == "white":
        return np.ones((h, w, 3), np.float32)
    c0 = np.asarray(bg.colors[0], np.float32) / 255.0
    if bg.kind == "flat":
        return np.broadcast_to(c0, (h, w, 3)).copy()
    c1 = np.asarray(bg.colors[1], np.float32) / 255.0
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    out = np.broadcast_to(c0 * (1 - t) + c1 * t, (h, w, 3)).copy()
    if bg.kind == "ground":
        out[round(h * bg.horizon):] = np.asarray(bg.colors[2], np.float32) / 255.0
    return out


class DrawingCache:
    """Loads drawings once per process and resizes them per placement."""

    def __init__(self) -> None:
        self._images: dict[str, Image.Image] = {}

    def image(self, path: str) -> Image.Image:
        """The RGBA image at path, loaded once."""
        if path not in self._images:
            if len(self._images) > 512:
                self._images.clear()
            self._images[path] = Image.fromarray(to_rgba8(read_image(path)), "RGBA")
        return self._images[path]

    def size(self, d: Drawing) -> tuple[int, int]:
        """Width and height of a drawing."""
        return self.image(d.color).size

    def placed(self, path: str, w: int, h: int, flip: bool) -> np.ndarray:
        """The drawing resized to (w, h), mirrored when asked, as float RGBA [h, w, 4]."""
        im = self.image(path).resize((w, h), Image.BICUBIC)
        if flip:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        return np.asarray(im, np.float32) / 255.0


def _paste_region(box: tuple[int, int, int, int], ph: int, pw: int):
    """Slices of the panel and of the drawing where a drawing box overlaps the panel, or None."""
    x, y, w, h = box
    px0, py0, px1, py1 = max(0, x), max(0, y), min(pw, x + w), min(ph, y + h)
    if px0 >= px1 or py0 >= py1:
        return None
    return (slice(py0, py1), slice(px0, px1)), (slice(py0 - y, py1 - y), slice(px0 - x, px1 - x))


def _effect_lines(draw: ImageDraw.ImageDraw, kind: str, w: int, h: int, seed: int, width: int) -> None:
    """Focus lines (radial, toward a clear center) or speed lines (parallel), in ink."""
    rng = np.random.default_rng(seed)
    if kind == "focus":
        cx, cy = rng.uniform(0.35, 0.65) * w, rng.uniform(0.35, 0.65) * h
        reach = math.hypot(w, h)
        for a in np.sort(rng.uniform(0, 2 * math.pi, int(rng.integers(60, 120)))):
            inner = reach * rng.uniform(0.22, 0.4)
            spread = rng.uniform(0.004, 0.012)
            pts = [(cx + math.cos(a) * inner, cy + math.sin(a) * inner),
                   (cx + math.cos(a - spread) * reach, cy + math.sin(a - spread) * reach),
                   (cx + math.cos(a + spread) * reach, cy + math.sin(a + spread) * reach)]
            draw.polygon(pts, fill=0)
    else:
        for _ in range(int(rng.integers(25, 60))):
            y = rng.uniform(0, h)
            x0 = rng.uniform(-0.2, 0.6) * w
            draw.line([(x0, y), (x0 + rng.uniform(0.3, 0.9) * w, y)], fill=0, width=max(1, width // 2))


def render_panel(panel: Panel, mode: str, cache: DrawingCache, tone_period: float, line_width: int,
                 shading: str = "ink") -> np.ndarray:
    """A panel's pixels: float RGB [h, w, 3] for 'color', float gray [h, w] for 'bw'."""
    x0, y0, x1, y1 = panel.rect
    w, h = x1 - x0, y1 - y0
    bg = background_rgb(panel.background, h, w)
    luma = _luma(bg)
    density = np.where(luma < 0.3, 1.0, _quantized_tone(luma))  # night scenes are solid ink
    if mode == "color":
        # A background too light to get a tone is white paper in ink, so it is white in color too:
        # the model never learns to tint paper that has nothing on it.
        canvas = np.where((density <= 0.02)[..., None], 1.0, bg) if shading == "ink" else bg
    elif shading == "gray":
        canvas = luma
    else:
        canvas = 1.0 - tone_screen(density.astype(np.float32), tone_period, 45.0, panel.tone_kind,
                                   panel.effect_seed)
    if panel.effect_lines or panel.background.kind == "ground":
        lines = Image.new("L", (w, h), 255)
        if panel.effect_lines:
            _effect_lines(ImageDraw.Draw(lines), panel.effect_lines, w, h, panel.effect_seed, line_width)
        else:  # the horizon line, inked as on a drawn page
            y = round(h * panel.background.horizon)
            ImageDraw.Draw(lines).line([(0, y), (w, y)], fill=0, width=max(1, line_width - 1))
        ink = np.asarray(lines, np.float32) / 255.0
        canvas = canvas * (ink[..., None] if mode == "color" else ink)
    for p in panel.placements:
        region = _paste_region(p.box, h, w)
        if region is None:
            continue
        (cy, cx), (dy, dx) = region
        color = cache.placed(p.drawing.color, p.box[2], p.box[3], p.flip)[dy, dx]
        alpha = color[..., 3:4]
        if mode == "color":
            canvas[cy, cx] = canvas[cy, cx] * (1 - alpha) + color[..., :3] * alpha
            continue
        gray = np.ones(color.shape[:2], np.float32)
        luma = _luma(color[..., :3])
        if shading == "gray":
            gray = luma
        elif p.tone:
            tone = _quantized_tone(luma)
            if p.black_darks:
                tone = np.where(luma < 0.22, 1.0, tone)
            # A finer sheet at another angle than the background's, so figures stand apart from it.
            gray = 1.0 - tone_screen(tone.astype(np.float32), tone_period * 0.7, 15.0, p.tone_kind,
                                     panel.effect_seed + 1)
        elif p.black_darks:
            gray = np.where(luma < 0.22, 0.0, 1.0).astype(np.float32)
        if p.drawing.line:
            line = cache.placed(p.drawing.line, p.box[2], p.box[3], p.flip)[dy, dx]
            line_ink = line[..., 3] * (1.0 - _luma(line[..., :3]))
            gray = gray * (1.0 - line_ink)
        elif not p.tone:
            gray = luma  # no line art: a gray rendering of the color drawing
        a = alpha[..., 0]
        canvas[cy, cx] = canvas[cy, cx] * (1 - a) + gray * a
    return canvas


def _draw_balloon(draw: ImageDraw.ImageDraw, b: Balloon, line_width: int, fill, ink) -> None:
    """Outline, fill, tail and centered text of one balloon."""
    x0, y0, x1, y1 = b.rect
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if b.tail:
        base = max(4, (x1 - x0) * 0.12)
        draw.polygon([(cx - base, cy), (cx + base, cy), b.tail], fill=fill, outline=ink, width=line_width)
    if b.shape == "ellipse":
        draw.ellipse(b.rect, fill=fill, outline=ink, width=line_width)
    elif b.shape == "box":
        draw.rectangle(b.rect, fill=fill, outline=ink, width=line_width)
    else:
        pts, spikes = [], 14
        for i in range(spikes * 2):
            a = math.pi * i / spikes
            r = 1.0 if i % 2 == 0 else 0.78
            pts.append((cx + math.cos(a) * (x1 - x0) / 2 * r, cy + math.sin(a) * (y1 - y0) / 2 * r))
        draw.polygon(pts, fill=fill, outline=ink, width=line_width)
    if b.tail:  # cover the tail's base inside the balloon
        inset = line_width + 1
        if b.shape == "ellipse":
            draw.ellipse((x0 + inset, y0 + inset, x1 - inset, y1 - inset), fill=fill)
        else:
            draw.ellipse((x0 + (x1 - x0) * 0.2, y0 + (y1 - y0) * 0.25, x1 - (x1 - x0) * 0.2, y1 - (y1 - y0) * 0.25), fill=fill)
    font = load_font(b.font_size)
    step = round(b.font_size * 1.2)
    top = cy - step * len(b.lines) / 2
    for i, line in enumerate(b.lines):
        draw.text((cx, top + i * step + step / 2), line, font=font, fill=ink, anchor="mm")


def render_page(plan: PagePlan, mode: str, cache: DrawingCache | None = None,
                tone_period: float | None = None) -> Image.Image:
    """Render a planned page: RGB for mode 'color', grayscale 'L' for mode 'bw'.

    tone_period is the screentone dot spacing in pixels (default: page width / 120).
    """
    if mode not in ("color", "bw"):
        raise ValueError(f"mode must be 'color' or 'bw', not {mode!r}")
    cache = cache or DrawingCache()
    tone_period = tone_period or max(4.0, plan.width / 120)
    line_width = plan.border
    shape = (plan.height, plan.width, 3) if mode == "color" else (plan.height, plan.width)
    page = np.ones(shape, np.float32)
    for panel in plan.panels:
        x0, y0, x1, y1 = panel.rect
        page[y0:y1, x0:x1] = render_panel(panel, mode, cache, tone_period, line_width, plan.shading)
    img = Image.fromarray(np.clip(page * 255.0 + 0.5, 0, 255).astype(np.uint8), "RGB" if mode == "color" else "L")
    draw = ImageDraw.Draw(img)
    ink, paper = ((0, 0, 0), (255, 255, 255)) if mode == "color" else (0, 255)
    for panel in plan.panels:
        x0, y0, x1, y1 = panel.rect
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=ink, width=plan.border)
    for b in plan.balloons:
        _draw_balloon(draw, b, max(1, plan.border - 1), paper, ink)
    if plan.sfx:
        text, x, y, size, angle = plan.sfx
        font = load_font(size)
        layer = Image.new("L", (round(font.getlength(text)) + size, size * 2), 0)
        ImageDraw.Draw(layer).text((size // 2, size // 2), text, font=font, fill=255,
                                   stroke_width=max(1, size // 10), stroke_fill=128)
        layer = layer.rotate(angle, expand=True, resample=Image.BILINEAR)
        a = np.asarray(layer)
        fill_mask, stroke_mask = a > 170, a > 40  # letters in ink, their outline in paper
        arr = np.asarray(img).copy()
        hh, ww = min(a.shape[0], plan.height - y), min(a.shape[1], plan.width - x)
        if hh > 0 and ww > 0:
            region = arr[y:y + hh, x:x + ww]
            region[stroke_mask[:hh, :ww]] = paper
            region[fill_mask[:hh, :ww]] = ink
            img = Image.fromarray(arr, img.mode)
    return img


# ---------------------------------------------------------------- corpus

def split_drawings(records: Sequence[dict]) -> dict[str, list[Drawing]]:
    """Drawings by split ('train', 'val') and the paired pools ('paired_train', 'paired_val')."""
    out: dict[str, list[Drawing]] = {"train": [], "val": [], "paired_train": [], "paired_val": []}
    for r in records:
        d = Drawing(f"{r['source']}/{r['key']}", r["color"], r.get("line"))
        out[r["split"]].append(d)
        if d.line:
            out[f"paired_{r['split']}"].append(d)
    return out


def page_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The RNG of one page, independent of the order pages are made in."""
    digest = hashlib.sha256(f"{seed}:{split}:{index}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


_WORKER: dict = {}


def _init_worker(pools: dict[str, list[Drawing]]) -> None:
    _WORKER["pools"] = pools
    _WORKER["cache"] = DrawingCache()


def _make_one(job: tuple[str, int, int, int, int, str]) -> list[str]:
    """Plan and render one page of a split, write it, return the drawing keys it used."""
    split, index, width, height, seed, out_dir = job
    cache, pool = _WORKER["cache"], _WORKER["pools"][split]
    plan = plan_page(pool, page_rng(seed, split, index), width, height, cache.size)
    name = f"{index:05d}.png"
    if split.startswith("paired_"):
        for mode, sub in (("bw", "bw"), ("color", "color")):
            save_png_atomic(render_page(plan, mode, cache), Path(out_dir) / split / sub / name)
    else:
        save_png_atomic(render_page(plan, "color", cache), Path(out_dir) / split / "color" / name)
    return [d.key for d in plan.drawings]


def save_png_atomic(img: Image.Image, path: Path) -> None:
    """Write a PNG through a temporary file and a rename, so no half-written page is left."""
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG", compress_level=6)


def build_corpus_pages(records: Sequence[dict], out_dir: Path, size: tuple[int, int] = (512, 724),
                       train_pages: int = 3000, val_pages: int = 300, paired_pages: int = 200,
                       seed: int = 0, jobs: int = 2, log: Callable[[str], None] = print,
                       paired_train_pages: int = 0) -> dict:
    """Compose train/val color pages and paired bw/color validation pages; returns counts.

    Pages already on disk are kept (a rerun only adds missing ones). The drawings of a split come
    only from that split, so validation pages hold no drawing seen in training.
    """
    pools = split_drawings(records)
    # paired_train: real line art -> color pages from training drawings (what binary manga pages look like).
    wanted = {"train": train_pages, "val": val_pages, "paired_val": paired_pages, "paired_train": paired_train_pages}
    jobs_list, present = [], 0
    for split, n in wanted.items():
        if n and not pools[split]:
            log(f"no drawings for {split}: skipping its pages")
            continue
        present += n
        sub = "bw" if split.startswith("paired_") else "color"
        for i in range(n):
            if not (out_dir / split / sub / f"{i:05d}.png").exists() or \
                    (split.startswith("paired_") and not (out_dir / split / "color" / f"{i:05d}.png").exists()):
                jobs_list.append((split, i, size[0], size[1], seed, str(out_dir)))
    log(f"composing {len(jobs_list)} pages of {size[0]}x{size[1]} into {out_dir} "
        f"({present - len(jobs_list)} already there)")
    start = time.time()
    if jobs_list:
        with Pool(jobs, initializer=_init_worker, initargs=(pools,)) as pool:
            for i, _ in enumerate(pool.imap_unordered(_make_one, jobs_list, chunksize=4), 1):
                if i % 250 == 0 or i == len(jobs_list):
                    log(f"  composed {i}/{len(jobs_list)} ({time.time() - start:.0f}s)")
    counts = {split: len(list((out_dir / split / ("bw" if split.startswith("paired_") else "color")).glob("*.png")))
              for split in wanted if (out_dir / split).exists()}
    counts["size"] = f"{size[0]}x{size[1]}"
    counts["drawings_per_split"] = {k: len(v) for k, v in pools.items()}
    return counts


# ---------------------------------------------------------------- sample chapter

def comic_info_xml(title: str, series: str, pages: int, notes: str, width: int, height: int) -> str:
    """A ComicInfo.xml (ComicRack schema) for a chapter of bw pages."""
    from xml.sax.saxutils import escape

    cover = ' Type="FrontCover"'
    page_rows = "\n".join(f'    <Page Image="{i}" ImageWidth="{width}" ImageHeight="{height}"'
                          f'{cover if i == 0 else ""} />' for i in range(pages))
    return (f'<?xml version="1.0" encoding="utf-8"?>\n'
            f'<ComicInfo xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
            f"  <Title>{escape(title)}</Title>\n  <Series>{escape(series)}</Series>\n  <Number>1</Number>\n"
            f"  <PageCount>{pages}</PageCount>\n  <Notes>{escape(notes)}</Notes>\n"
            f"  <BlackAndWhite>Yes</BlackAndWhite>\n  <Manga>Yes</Manga>\n  <LanguageISO>en</LanguageISO>\n"
            f"  <Pages>\n{page_rows}\n  </Pages>\n</ComicInfo>\n")


SAMPLE_NOTES = ("Synthetic black-and-white manga pages composed by mangacolor's trainer/pages "
                "from OpenMoji line art (black/svg) of openmoji@17.0.0, (c) OpenMoji contributors "
                "(openmoji.org), licensed CC BY-SA 4.0; this chapter is shared under CC BY-SA 4.0.")


def build_sample_chapter(drawings: Sequence[Drawing], out_path: Path, pages: int = 8,
                         size: tuple[int, int] = (1200, 1700), seed: int = 7, quality: int = 85,
                         preview: Path | None = None, notes: str = SAMPLE_NOTES) -> list[Image.Image]:
    """Write a CBZ of bw manga pages (JPEG) with ComicInfo.xml, atomically; return the pages."""
    if not drawings:
        raise ValueError("no drawings with line art for the sample chapter")
    cache = DrawingCache()
    images = []
    for i in range(pages):
        plan = plan_page(drawings, page_rng(seed, "sample", i), size[0], size[1], cache.size,
                         panels=int(page_rng(seed, "sample-n", i).integers(4, 7)), balloon_rate=0.8,
                         white_rate=0.45)
        # A coarser screen than the corpus pages: it looks like printed tone and keeps the JPEGs small.
        images.append(render_page(plan, "bw", cache, tone_period=size[0] / 86))
    with atomic_path(out_path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
        for i, img in enumerate(images):
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=quality, optimize=True)
            z.writestr(f"{i + 1:03d}.jpg", buf.getvalue())
        z.writestr("ComicInfo.xml", comic_info_xml("Sample chapter", "mangacolor samples", pages,
                                                   notes, size[0], size[1]))
    if preview:
        thumbs = [im.resize((size[0] // 5, size[1] // 5), Image.LANCZOS) for im in images]
        sheet = Image.new("L", (thumbs[0].width * 4, thumbs[0].height * ((len(thumbs) + 3) // 4)), 255)
        for i, t in enumerate(thumbs):
            sheet.paste(t, ((i % 4) * t.width, (i // 4) * t.height))
        sheet.save(preview)
    return images
