"""A synthetic manga page *planned* from a seeded RNG: panel layout, backgrounds, drawing placements,
balloons and a sound effect; nothing is drawn here (``trainer.pages.render`` draws a plan in either mode)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
from PIL import ImageFont

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


def page_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The RNG of one page, independent of the order pages are made in."""
    digest = hashlib.sha256(f"{seed}:{split}:{index}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))
