"""The Colorizer: full-res L kept, ab upsampled (docs/ARCHITECTURE.md, "Color"), both backends, color-page detection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mangacolor_cli.engine import runner as colorizer
from mangacolor_cli.engine.backends import export_onnx, read_onnx_meta
from mangacolor_cli.engine.colorizer import Colorizer, looks_colored
from mangacolor_cli.errors import ModelError
from models import color
from tests.conftest import color_page, draw_page, strongly_colored_unet


def _lightness(rgb: np.ndarray) -> torch.Tensor:
    return color.rgb_to_lab(torch.from_numpy(rgb).float().div(255).permute(2, 0, 1)[None])[:, :1]


@pytest.fixture(scope="module")
def strong_model():
    return strongly_colored_unet(1)


def test_output_keeps_page_size_and_input_lightness(strong_model):
    page = np.asarray(draw_page(50, 70))
    # Per-pixel chroma (fill soft): a random model's noisy colors reach every pixel (flat would pool them).
    out = Colorizer(strong_model, size=32, fill_paper=False, fill="soft").colorize([page])[0]
    assert out.shape == (70, 50, 3)
    L_in = color.gray_to_l(torch.from_numpy(page.copy()).float().div(255)[None, None])
    assert (L_in - _lightness(out)).abs().max() < 0.6
    chroma = color.rgb_to_lab(torch.from_numpy(out).float().div(255).permute(2, 0, 1)[None])[:, 1:].norm(dim=1)
    assert chroma.mean() > 5, "the model's color must reach the output"


def test_fill_paper_darkens_only_paper_under_a_fill_and_never_touches_ink(strong_model):
    page = np.asarray(draw_page(50, 70))
    L_in = color.gray_to_l(torch.from_numpy(page.copy()).float().div(255)[None, None])
    kept = Colorizer(strong_model, size=32, fill_paper=False).colorize([page])[0]
    filled = Colorizer(strong_model, size=32).colorize([page])[0]
    L_out = _lightness(filled)
    assert filled.shape == (70, 50, 3)
    assert (L_out - L_in).max() < 0.6, "no pixel gets lighter than the page"
    ink = L_in < 5
    assert ink.any() and (L_out[ink] - L_in[ink]).abs().max() < 0.6, "ink keeps its exact lightness"
    chroma = lambda rgb: color.rgb_to_lab(torch.from_numpy(rgb).float().div(255).permute(2, 0, 1)[None])[:, 1:].norm(dim=1)
    paper = L_in > 99
    assert chroma(filled)[paper[:, 0]].mean() > chroma(kept)[paper[:, 0]].mean() + 5, "white paper takes the fill color"


def test_fill_lightness_is_the_brightest_l_that_holds_the_chroma():
    ab = torch.tensor([[[[0.0, 3.0, 20.0, -30.0]], [[0.0, 3.0, 80.0, -60.0]]]])
    fill = color.fill_lightness(ab)
    assert torch.allclose(fill[0, 0, 0, :2], torch.tensor([100.0, 100.0])), "no or faint chroma never darkens paper"
    for i in (2, 3):
        L = fill[:, :, :, i:i + 1]
        rgb = color.lab_to_rgb(torch.cat([L, ab[:, :, :, i:i + 1]], dim=1), clip=False)
        brighter = color.lab_to_rgb(torch.cat([L + 1.0, ab[:, :, :, i:i + 1]], dim=1), clip=False)
        assert rgb.max() <= 1.0 + 1e-4 and brighter.max() > 1.0
        assert L.item() < 100


def test_out_of_gamut_colors_lose_chroma_not_lightness():
    L = torch.tensor([[[[98.0, 50.0, 5.0]]]])
    ab = torch.full((1, 2, 1, 3), 100.0)
    rgb = color.lab_to_srgb_keeping_l(L, ab)
    assert torch.allclose(color.rgb_to_lab(rgb)[:, :1], L, atol=1e-2)


def test_torch_and_onnx_backends_give_the_same_pages(strong_model, tmp_path):
    pages = [np.asarray(draw_page(48, 64, seed)) for seed in range(3)]
    torch_out = Colorizer(strong_model, size=32, backend="torch").colorize(pages)
    path = export_onnx(strong_model, tmp_path / "m.onnx", working_size=32)
    onnx_out = Colorizer(path).colorize(pages)
    for a, b in zip(torch_out, onnx_out):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_export_writes_the_metadata_a_loader_needs(strong_model, tmp_path):
    meta = read_onnx_meta(export_onnx(strong_model, tmp_path / "m.onnx", working_size=512, meta={"run": "x"}))
    assert meta["model"] == "unet" and meta["working_size"] == "512" and meta["stride"] == str(strong_model.stride)
    assert meta["input_norm"] == "lab" and meta["run"] == "x" and "options" in meta


def test_batch_of_mixed_sizes_comes_back_in_order(strong_model):
    pages = [np.asarray(draw_page(48, 64)), np.asarray(draw_page(80, 40)), np.asarray(draw_page(48, 64, 2))]
    outs = Colorizer(strong_model, size=32, batch_size=2).colorize(pages)
    assert [o.shape[:2] for o in outs] == [(64, 48), (40, 80), (64, 48)]


def test_color_pages_pass_through_unless_recolor(strong_model):
    page = np.asarray(color_page())
    assert np.array_equal(Colorizer(strong_model, size=32).colorize([page])[0], page)
    assert not np.array_equal(Colorizer(strong_model, size=32, recolor=True).colorize([page])[0], page)


def test_color_detection_ignores_tint_and_jpeg_noise():
    import io

    from PIL import Image

    from mangacolor_cli.pages.images import decode_page as decode_image
    gray = np.asarray(draw_page(120, 160).convert("RGB")).astype(float)
    sepia = np.clip(gray * [1.0, 0.92, 0.78], 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(sepia).save(buf, "JPEG", quality=60)
    assert not looks_colored(decode_image(buf.getvalue(), "scan.jpg"))
    assert looks_colored(np.asarray(color_page()))


def test_missing_default_model_says_to_pass_model(monkeypatch, tmp_path):
    monkeypatch.setattr(colorizer, "DEFAULT_MODEL", tmp_path / "default.onnx")
    with pytest.raises(ModelError, match="--model"):
        Colorizer()


def test_checkpoint_working_size_is_the_default_size(tiny_checkpoint):
    assert Colorizer(tiny_checkpoint).size == 32
