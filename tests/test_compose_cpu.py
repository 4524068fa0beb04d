"""The numpy compose (``models.paint.compose_cpu``) and the torch-free ONNX path of the Colorizer.

The numpy compose changed only for speed: its pictures equal the torch compose's
(``models.paint.compose``) within 1 level, fill by fill, with and without fill lightness and hints.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mangacolor_cli.engine.backends import export_onnx
from mangacolor_cli.engine.colorizer import Colorizer, as_page
from models import cie, color
from models.paint import compose as torch_compose
from models.paint import compose_cpu, luma
from models.paint import regions as rg
from tests.conftest import draw_page, strongly_colored_unet

ROOT = Path(__file__).resolve().parent.parent


def _page(width: int = 300, height: int = 420, seed: int = 0) -> np.ndarray:
    return np.asarray(draw_page(width, height, seed).convert("L"))


def _chroma(h: int, w: int, seed: int = 0, scale: float = 45.0) -> np.ndarray:
    # Smooth chroma with sharp steps, reaching the edge of the gamut (ab/110 in [-1, 1], as a model's).
    rng = np.random.default_rng(seed)
    coarse = rng.normal(0.0, 1.0, (2, h // 6 + 2, w // 6 + 2)).astype(np.float32) * scale
    ab = compose_cpu.resize_bilinear(coarse, (h, w))
    ab[:, : h // 3] *= 2.0
    return np.clip(ab, -110.0, 110.0).astype(np.float32)


def _torch_compose(gray: np.ndarray, ab: np.ndarray, **kw) -> np.ndarray:
    L = color.gray_level_lightness(256)[torch.from_numpy(gray.astype(np.int64))][None, None]
    conf = kw.pop("confidence", None)
    conf = None if conf is None else torch.from_numpy(conf)
    return torch_compose.compose(L, torch.from_numpy(ab)[None], gray=gray, confidence=conf, **kw).numpy()


def _hints(shape: tuple[int, int]) -> np.ndarray:
    hints = np.zeros(shape + (4,), np.uint8)
    hints[40:60, 40:90] = (200, 40, 40, 255)
    hints[200:215, 100:180] = (30, 90, 220, 255)
    return hints


@pytest.mark.parametrize("fill", ["soft", "flat"])
@pytest.mark.parametrize("fill_paper", [True, False])
@pytest.mark.parametrize("hinted", [False, True])
def test_numpy_compose_equals_the_torch_compose_within_one_level(fill, fill_paper, hinted):
    gray = _page(seed=3)
    ab = _chroma(84, 60, seed=4)
    conf = np.random.default_rng(5).uniform(0, 1, (1, 1, 84, 60)).astype(np.float32)
    regions = rg.segment_regions(gray)
    hints = _hints(gray.shape) if hinted else None
    kw = dict(fill=fill, fill_paper=fill_paper, hints=hints, regions=regions, saturation=1.3)
    want = _torch_compose(gray, ab, confidence=conf, **kw)
    got = compose_cpu.compose(ab, gray=gray, confidence=conf, **kw)
    assert got.dtype == np.uint8 and got.shape == want.shape
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_numpy_compose_from_lightness_equals_it_from_gray_levels():
    gray = _page(seed=1)
    ab = _chroma(84, 60, seed=2)
    L = cie.gray_level_lightness(256)[gray]
    for fill in ("soft", "flat"):
        a = compose_cpu.compose(ab, gray=gray, fill=fill)
        b = compose_cpu.compose(ab, L=L, fill=fill)
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_numpy_color_pieces_match_models_color():
    np.testing.assert_allclose(cie.gray_level_lightness(256),
                               color.gray_level_lightness(256).numpy(), atol=1e-4)
    g = np.random.default_rng(0).uniform(0, 1, (30, 40)).astype(np.float32)
    np.testing.assert_allclose(cie.gray_to_l(g), color.gray_to_l(torch.from_numpy(g)[None, None])[0, 0].numpy(),
                               atol=1e-3)
    ab = np.random.default_rng(1).uniform(-110, 110, (2, 60, 70)).astype(np.float32)
    want = color.fill_lightness(torch.from_numpy(ab)[None])[0, 0].numpy()
    # The table-started search tests the full search's own L values: the same answer.
    assert np.abs(compose_cpu.fill_lightness(ab) - want).max() < 0.01
    assert np.abs(compose_cpu.fill_lightness_exact(ab) - want).max() < 0.01


def test_bilinear_upsampling_matches_torch():
    x = np.random.default_rng(2).normal(size=(3, 17, 11)).astype(np.float32)
    want = torch.nn.functional.interpolate(torch.from_numpy(x)[None], size=(90, 61), mode="bilinear",
                                           align_corners=False)[0].numpy()
    np.testing.assert_allclose(compose_cpu.resize_bilinear(x, (90, 61)), want, atol=1e-5)


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    net = strongly_colored_unet(7)
    return export_onnx(net, tmp_path_factory.mktemp("onnx") / "m.onnx", working_size=64)


def test_the_onnx_numpy_path_predicts_what_the_torch_preprocessing_does(onnx_model):
    pages = [_page(120, 170, seed=s) for s in (1, 2)]
    fast = Colorizer(onnx_model, device="cpu", size=64)
    slow = Colorizer(onnx_model, device="cpu", size=64)
    slow.device = torch.device("cpu")  # a device set: the torch preprocessing path
    assert fast._numpy_path([as_page(p) for p in pages]) and not slow._numpy_path([as_page(p) for p in pages])
    got = fast.predict(pages, as_numpy=True)
    want = slow.predict(pages)
    for (ab, conf), (ab_t, conf_t) in zip(got, want):
        assert isinstance(ab, np.ndarray) and ab.shape == tuple(ab_t.shape)
        assert np.abs(ab - ab_t.numpy()).max() < 0.05  # Lab units
        assert (conf is None) == (conf_t is None)
    for page, (ab, conf) in zip(pages, got):
        a = fast.compose(page, ab, confidence=conf)
        b = slow.compose(page, torch.from_numpy(ab), confidence=None if conf is None else torch.from_numpy(conf))
        assert np.array_equal(a, b)


def test_colorize_with_an_onnx_model_imports_no_torch_or_scipy(onnx_model, tmp_path):
    from PIL import Image
    (tmp_path / "in").mkdir()
    Image.fromarray(_page(120, 170)).save(tmp_path / "in" / "001.png")
    code = ("import sys; from mangacolor_cli.commands import main; "
            f"sys.argv = ['mangacolor', 'colorize', {str(tmp_path / 'in')!r}, '-o', {str(tmp_path / 'out')!r}, "
            f"'--model', {str(onnx_model)!r}, '--size', '64']\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print('torch' in sys.modules, 'kornia' in sys.modules, 'scipy.ndimage' in sys.modules, "
            "'pydantic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    # No torch, kornia, scipy.ndimage (0.27 s) or pydantic (typer 0.29's, 0.12 s): docs/PERFORMANCE.md, "Start-up".
    assert out.stdout.strip().splitlines()[-1] == "False False False False"
    assert any((tmp_path / "out").iterdir())


def test_both_composes_name_the_same_fills_and_default():
    assert compose_cpu.fills.FILLS == torch_compose.fills.FILLS and compose_cpu.fills.DEFAULT_FILL == torch_compose.DEFAULT_FILL


@pytest.mark.parametrize("fill_paper", [True, False])
def test_the_flat_fill_by_table_gives_the_bytes_of_the_per_pixel_pass(fill_paper, monkeypatch):
    gray = _page(seed=6)
    ab = _chroma(84, 60, seed=7)
    regions = rg.segment_regions(gray)
    hints = _hints(gray.shape)
    by_table = compose_cpu.compose(ab, gray=gray, fill="flat", regions=regions, hints=hints, fill_paper=fill_paper)
    monkeypatch.setattr(compose_cpu, "FLAT_TABLE_MAX", 0)
    per_pixel = compose_cpu.compose(ab, gray=gray, fill="flat", regions=regions, hints=hints, fill_paper=fill_paper)
    assert np.array_equal(by_table, per_pixel)


def _shaded_and_toned_page() -> np.ndarray:
    """Two boxes inside ink outlines: on the left smooth gray shading (a gradient from 130 to 215), on the
    right a dot screentone on white paper."""
    page = np.full((240, 320), 255, np.uint8)
    page[20:220, 20:150] = np.linspace(130, 215, 200, dtype=np.float32).astype(np.uint8)[:, None]
    yy, xx = np.mgrid[20:220, 170:300]
    page[20:220, 170:300] = np.where((yy % 6 < 3) & (xx % 6 < 3), 0, 255).astype(np.uint8)
    for x0, x1 in ((16, 154), (166, 304)):
        page[16:20, x0:x1] = page[220:224, x0:x1] = 0
        page[16:224, x0:x0 + 4] = page[16:224, x1 - 4:x1] = 0
    return page


@pytest.mark.parametrize("hue", [(-30.0, 25.0), (30.0, -25.0), (10.0, -30.0)])
def test_a_shaded_region_keeps_the_pages_gray_as_its_colors_luma(hue, monkeypatch):
    # A gray page is the luma of its colors: laid under the level's own CIE L, a saturated color came out too dark
    # (compose_cpu.luma_fy_table). Shading takes the color whose luma is the pixel's gray; a screentone (ink dots
    # on paper) keeps the rule it had; both composes agree.
    page = _shaded_and_toned_page()
    regions = rg.segment_regions(page)
    f = regions.factor
    left = np.unique(regions.labels[30 // f:210 // f, 30 // f:140 // f])
    right = np.unique(regions.labels[30 // f:210 // f, 180 // f:290 // f])
    left, right = left[left > 0], right[right > 0]
    assert len(left) and len(right) and not set(left) & set(right)
    assert (regions.kind[left] == rg.REGION).all() and (regions.kind[right] == rg.REGION).all()
    shaded = luma.shaded_regions(regions, page)
    assert shaded[left].all() and not shaded[right].any()
    colors = np.zeros((regions.count + 1, 2), np.float32)
    colors[left] = colors[right] = hue
    ab = np.zeros((2, 30, 40), np.float32)
    out = compose_cpu.compose(ab, gray=page, regions=regions, model_colors=colors)
    inside = np.zeros(page.shape, bool)
    inside[30:210, 30:140] = True
    got = cie.luma(out[inside].astype(np.float32))
    top = float(compose_cpu.fill_lightness_exact(np.array(hue, np.float32)[:, None])[0])
    lab = rg.srgb8_to_lab(out[inside])
    below = lab[:, 0] < top - 1.0  # where the color is not capped by the gamut's top
    assert below.mean() > 0.5
    assert np.abs(got[below] - page[inside][below]).max() <= 1.5
    with monkeypatch.context() as m:  # the rule before: every region under its gray level's own CIE L
        m.setattr(luma, "LUMA_TEXTURE_MAX", -1.0)
        before = compose_cpu.compose(ab, gray=page, regions=regions, model_colors=colors)
    off = np.abs(cie.luma(before[inside].astype(np.float32)) - page[inside])
    assert np.abs(got - page[inside]).mean() < off.mean()
    chroma = np.hypot(lab[below, 1], lab[below, 2])
    assert np.median(chroma) > 15.0
    # the screentone: its paper under the color holds it as before, its dots stay ink
    tone = out[30:210, 180:290]
    dots = page[30:210, 180:290] == 0
    assert tone[dots].max() <= 1
    paper_l = rg.srgb8_to_lab(tone[~dots])[:, 0]
    assert abs(float(np.median(paper_l)) - top) < 1.0
    # the per-pixel pass (a page of too many regions for the table) and the torch compose lay the same picture
    with monkeypatch.context() as m:
        m.setattr(compose_cpu, "FLAT_TABLE_MAX", 0)
        per_pixel = compose_cpu.compose(ab, gray=page, regions=regions, model_colors=colors)
    assert np.array_equal(per_pixel, out)
    theirs = _torch_compose(page, ab, regions=regions, model_colors=colors)
    assert np.abs(theirs.astype(int) - out).max() <= 1
    # --keep-lightness (fill_paper=False) keeps every pixel's L, shading included, in both composes
    kept = compose_cpu.compose(ab, gray=page, regions=regions, model_colors=colors, fill_paper=False)
    kept_l = rg.srgb8_to_lab(kept[inside])[:, 0]
    assert np.abs(kept_l - cie.gray_to_l(page[inside] / np.float32(255.0))).max() < 1.0
    theirs = _torch_compose(page, ab, regions=regions, model_colors=colors, fill_paper=False)
    assert np.abs(theirs.astype(int) - kept).max() <= 1
