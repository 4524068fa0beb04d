"""Shared fixtures: a tiny random-weight U-Net checkpoint and small drawn manga-like pages."""

from __future__ import annotations

import io
import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist runs one worker per core: each keeps to one thread (and so do the CLI runs it starts,
    # which inherit it), or the workers' thread pools spin against each other (~10% of the suite's time).
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import models


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny U-Net with random weights, saved as a checkpoint (I/O tests only; no quality claims)."""
    torch.manual_seed(0)
    model = models.create("unet", preset="tiny")
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    models.save_checkpoint(path, model, meta={"working_size": 32})
    return path


@pytest.fixture(scope="session")
def tiny_onnx(tiny_checkpoint):
    """``tiny_checkpoint`` exported to ONNX: a subprocess colorizing with it never imports torch (~2 s less)."""
    from mangacolor_cli.engine.backends import export_onnx

    return export_onnx(models.load_model(tiny_checkpoint).eval(), tiny_checkpoint.with_suffix(".onnx"),
                       working_size=32)


def strongly_colored_unet(seed: int) -> models.ColorModel:
    """A tiny U-Net with large random weights: strongly colored predictions, out of gamut in places."""
    torch.manual_seed(seed)
    model = models.create("unet", preset="tiny")
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, std=0.5)
    return model.eval()


def draw_page(width: int = 48, height: int = 64, seed: int = 0) -> Image.Image:
    """A small gray 'manga' page: white paper, black panel border, gray shapes."""
    rng = np.random.default_rng(seed)
    img = Image.new("L", (width, height), 255)
    d = ImageDraw.Draw(img)
    d.rectangle([2, 2, width - 3, height - 3], outline=0, width=2)
    for _ in range(3):
        x, y = int(rng.integers(4, width - 16)), int(rng.integers(4, height - 16))
        d.ellipse([x, y, x + 12, y + 12], fill=int(rng.integers(60, 220)), outline=0)
    return img


def color_page(width: int = 48, height: int = 64) -> Image.Image:
    """A page that is clearly already in color."""
    arr = np.zeros((height, width, 3), np.uint8)
    arr[: height // 2] = (220, 40, 40)
    arr[height // 2:] = (40, 80, 220)
    return Image.fromarray(arr, "RGB")


def encoded(img: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


@pytest.fixture
def indir(tmp_path):
    """An empty input folder under ``tmp_path`` (the hostile-input tests build their inputs there)."""
    d = tmp_path / "in"
    d.mkdir()
    return d
