"""A planned page rendered in one of two modes from the same plan (``trainer.pages.plan``):
  - "color": flat colors and gradients behind the color drawings (a training target);
  - "bw": the same page in ink: line art over white silhouettes, screentone dots where the color
    page has tones, so a paired bw/color page shares its layout pixel for pixel.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from models import cie
from models.toolbox.images import read_image, to_rgba8

from .plan import Background, Balloon, Drawing, Panel, PagePlan, load_font


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
    luma = cie.luma(bg)
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
        luma = cie.luma(color[..., :3])
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
            line_ink = line[..., 3] * (1.0 - cie.luma(line[..., :3]))
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
