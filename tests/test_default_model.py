"""The model shipped in the package: present, loadable with no --model, and it colors line art while
paper outside the art stays paper."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from mangacolor_cli.engine.backends import read_onnx_meta
from mangacolor_cli.engine.colorizer import Colorizer
from models import cie, color
from models.paint import luma
from models.paint import regions as rg

WEIGHTS = Path(__file__).resolve().parents[1] / "mangacolor_cli" / "weights" / "default.onnx"
SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sample_chapter.cbz"


def _page(name: str) -> np.ndarray:
    with zipfile.ZipFile(SAMPLE) as z:
        return np.asarray(Image.open(io.BytesIO(z.read(name))).convert("L"))


def _lab(out: np.ndarray) -> torch.Tensor:
    return color.rgb_to_lab(torch.from_numpy(out).float().div(255).permute(2, 0, 1)[None])[0]


@pytest.fixture(scope="module")
def colored() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    colorizer = Colorizer(backend="onnx", device="cpu")
    pages = {name: _page(name) for name in ("001.jpg", "004.jpg", "007.jpg")}
    return {name: (page, colorizer.colorize(page)) for name, page in pages.items()}


def test_default_model_ships_in_the_package_within_25_mb_with_its_metadata():
    assert WEIGHTS.is_file() and WEIGHTS.stat().st_size <= 25 * 2 ** 20
    meta = read_onnx_meta(WEIGHTS)
    assert meta["model"] == "effunet" and int(meta["working_size"]) == 320


def test_default_model_colors_sample_pages_and_keeps_their_ink(colored):
    shares = []
    for page, out in colored.values():
        assert out.shape == (*page.shape, 3)
        lab = _lab(out)
        L_in = color.gray_to_l(torch.from_numpy(page.copy()).float().div(255)[None, None])[0, 0]
        shares.append(float((lab[1:].norm(dim=0) > 10).float().mean()))
        ink = L_in < 10
        assert (lab[0][ink] - L_in[ink]).abs().max() < 1.0, "ink keeps its lightness"
        # nothing gets lighter than the page: in L, and in luma where a shaded region's colors keep the page's
        # gray as their luma (models.paint.luma)
        regions = rg.segment_regions(page)
        shaded = torch.from_numpy(luma.shaded_regions(regions, page)[regions.full_labels()])
        assert (lab[0] - L_in)[~shaded].max() < 1.0, "nothing gets lighter than the page"
        if shaded.any():
            gray_out = torch.from_numpy(cie.luma(out.astype(np.float32)))
            assert (gray_out - torch.from_numpy(page.astype(np.float32)))[shaded].max() < 1.5
    assert max(shares) > 0.05, f"a visible share of the pages is colored ({shares})"


def test_margins_and_gutters_of_the_sample_chapter_stay_white(colored):
    # Paper outside the panels, found on the input alone: white pixels connected to the page border.
    for name, (page, out) in colored.items():
        white = page > 235
        labels, _ = ndimage.label(white)
        border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        paper = np.isin(labels, border[border > 0])
        assert paper.mean() > 0.02, f"{name}: no margin found"
        chroma = _lab(out)[1:].norm(dim=0)[torch.from_numpy(paper)]
        assert float(chroma.mean()) < 1.5, f"{name}: margins and gutters tinted (mean chroma {float(chroma.mean()):.2f})"
