"""The model shipped in the package: present, loadable with no --model, and it adds color to line art."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mangacolor_cli.engine.backends import read_onnx_meta
from mangacolor_cli.engine.colorizer import Colorizer
from models import color

WEIGHTS = Path(__file__).resolve().parents[1] / "mangacolor_cli" / "weights" / "default.onnx"
SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sample_chapter.cbz"


def test_default_model_ships_in_the_package_within_25_mb_with_its_metadata():
    assert WEIGHTS.is_file() and WEIGHTS.stat().st_size <= 25 * 2 ** 20
    meta = read_onnx_meta(WEIGHTS)
    assert meta["model"] == "unet" and int(meta["working_size"]) == 320


def test_default_model_colors_a_sample_page_and_keeps_its_ink():
    with zipfile.ZipFile(SAMPLE) as z:
        page = np.asarray(Image.open(io.BytesIO(z.read("007.jpg"))).convert("L"))
    out = Colorizer(backend="onnx", device="cpu").colorize([page])[0]
    assert out.shape == (*page.shape, 3)
    lab = color.rgb_to_lab(torch.from_numpy(out).float().div(255).permute(2, 0, 1)[None])
    L_in = color.gray_to_l(torch.from_numpy(page.copy()).float().div(255)[None, None])
    chroma = lab[:, 1:].norm(dim=1)
    assert (chroma > 15).float().mean() > 0.02, "a visible share of the page is colored"
    ink = L_in[0, 0] < 10
    assert (lab[0, 0][ink] - L_in[0, 0][ink]).abs().max() < 1.0, "ink keeps its lightness"
    assert (lab[0, 0] - L_in[0, 0]).max() < 1.0, "nothing gets lighter than the page"
