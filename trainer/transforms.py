"""The manga look: a color page turned into the gray page a printed, scanned manga would give (screentone
dots, heavy ink, paper tint and noise, JPEG artefacts); the training data's gray input wherever a source has
no gray twin of its own, and ``mangacolor eval --manga-look``'s."""

from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from models.color import rgb_to_gray

from models.toolbox.images import tensor_to_uint8


def _box_mean(x: torch.Tensor, k: int) -> torch.Tensor:
    return F.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False)


def _screentone(g: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Replace flat mid-tone regions by an amplitude-modulated dot screen of the same mean tone."""
    mean = _box_mean(g, 7)
    std = (_box_mean(g * g, 7) - mean * mean).clamp_min(0).sqrt()
    flat = ((std < 0.04) & (mean > 0.15) & (mean < 0.88)).float()
    flat = _box_mean(flat, 5)
    period = float(rng.uniform(3.0, 7.0))
    angle = math.radians(45.0 if rng.random() < 0.6 else float(rng.uniform(0.0, 90.0)))
    H, W = g.shape[-2:]
    yy, xx = torch.meshgrid(torch.arange(H, dtype=g.dtype), torch.arange(W, dtype=g.dtype), indexing="ij")
    u = xx * math.cos(angle) + yy * math.sin(angle)
    v = -xx * math.sin(angle) + yy * math.cos(angle)
    screen = 0.5 + 0.25 * (torch.cos(2 * math.pi * u / period) + torch.cos(2 * math.pi * v / period))
    sharpness = float(rng.uniform(10.0, 40.0))
    tone = torch.sigmoid((mean - screen) * sharpness)
    return flat * tone + (1 - flat) * g


def _ink(g: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Thicken and darken the dark lines, as heavy inking and photocopies do."""
    ink_level = float(rng.uniform(0.3, 0.5))
    if rng.random() < 0.6:
        spread = -F.max_pool2d(-g, 3, stride=1, padding=1)
        amount = float(rng.uniform(0.4, 1.0))
        g = torch.where(spread < ink_level, torch.lerp(g, spread, amount), g)
    darken = float(rng.uniform(0.3, 0.9))
    return torch.where(g < ink_level, g * darken, g)


def _paper(g: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Off-white paper and scanner noise."""
    white = float(rng.uniform(0.88, 1.0))
    g = g * white + float(rng.uniform(0.0, 0.03))
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    sigma = float(rng.uniform(0.005, 0.035))
    return g + sigma * torch.randn(g.shape, generator=gen, dtype=g.dtype)


def _jpeg(g: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    arr = tensor_to_uint8(g[0])
    buf = io.BytesIO()
    Image.fromarray(arr, "L").save(buf, format="JPEG", quality=int(rng.integers(30, 91)))
    buf.seek(0)
    out = np.asarray(Image.open(buf).convert("L"), dtype=np.float32) / 255.0
    return torch.from_numpy(out.copy())[None, None].to(g.dtype)


def _contrast(g: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    gamma = math.exp(float(rng.uniform(-0.3, 0.3)))
    contrast = float(rng.uniform(0.85, 1.25))
    return ((g.clamp(0, 1) ** gamma - 0.5) * contrast + 0.5).clamp(0, 1)


def manga_look(rgb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Gray page the way a printed, scanned manga page looks, derived from a color page.

    ``rgb``: sRGB in [0, 1], ``[3, H, W]`` or ``[B, 3, H, W]``. Returns gray in [0, 1] with one
    channel and the same size (``[1, H, W]`` or ``[B, 1, H, W]``). Starts from the luminance
    (``models.color.rgb_to_gray``) and applies, each at random: contrast/gamma shift, screentone
    dots in flat mid-tone regions, darkened/thickened lines, paper tint and noise, JPEG artefacts.
    The same ``rng`` state gives the same output.
    """
    single = rgb.dim() == 3
    batch = rgb[None] if single else rgb
    out = []
    for page in rgb_to_gray(batch.float()).split(1):
        g = page
        if rng.random() < 0.5:
            g = _contrast(g, rng)
        if rng.random() < 0.5:
            g = _screentone(g, rng)
        if rng.random() < 0.5:
            g = _ink(g, rng)
        if rng.random() < 0.5:
            g = _paper(g, rng)
        g = g.clamp(0, 1)
        if rng.random() < 0.3:
            g = _jpeg(g, rng)
        out.append(g)
    gray = torch.cat(out).clamp(0, 1)
    return gray[0] if single else gray
