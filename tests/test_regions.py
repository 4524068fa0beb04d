"""Region segmentation and the flat fill (models/paint/regions.py, fills.py) on synthetic pages with known regions."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from models.cie import srgb8_to_ab
from models.paint import fills, raster
from models.paint import regions as rg

H, W = 600, 440
# Known places on the synthetic page (x, y).
GUTTER = (10, 300)          # margin / gutter paper outside the panel
PANEL_BG = (60, 560)        # the panel's background
FACE = (120, 150)           # inside the circle
BOX_IN = (330, 150)         # inside the square with a 2-px gap in its outline
TONE = (90, 420)            # inside the screentoned rectangle
TONE_BOX = (50, 360, 200, 500)
DARK_BOX = (250, 460, 400, 540)
BALLOON = (300, 330)        # inside the balloon, beside its text


def synthetic_page() -> np.ndarray:
    """A white page: one panel (border 4 px) holding a face (circle), a square whose outline has a
    2-px gap, a screentoned rectangle, a dark-toned rectangle (a mesh of ink around small holes),
    and a balloon with text. Slight JPEG-like noise on top."""
    img = Image.new("L", (W, H), 255)
    d = ImageDraw.Draw(img)
    d.rectangle((30, 30, W - 30, H - 30), outline=0, width=4)          # panel border
    d.ellipse((60, 80, 200, 220), outline=0, width=5)                  # face
    d.ellipse((100, 120, 112, 132), fill=0)                            # an eye (small ink: texture)
    d.rectangle((260, 80, 400, 220), outline=0, width=4)               # square ...
    d.rectangle((328, 80, 329, 84), fill=255)                          # ... with a 2-px gap in its top side
    d.rectangle(TONE_BOX, outline=0, width=4)                          # toned rectangle
    for y in range(TONE_BOX[1] + 8, TONE_BOX[3] - 6, 8):
        for x in range(TONE_BOX[0] + 8 + (y // 8 % 2) * 4, TONE_BOX[2] - 6, 8):
            d.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=0)
    d.rectangle(DARK_BOX, fill=0)                                      # dark tone: ink with small holes
    for y in range(DARK_BOX[1] + 6, DARK_BOX[3] - 4, 5):
        for x in range(DARK_BOX[0] + 6, DARK_BOX[2] - 4, 5):
            d.rectangle((x, y, x + 1, y + 1), fill=255)
    d.ellipse((230, 280, 410, 380), fill=255, outline=0, width=3)      # balloon
    font = ImageFont.load_default(size=18)
    d.text((262, 318), "Hello there", fill=0, font=font)
    page = np.asarray(img).astype(np.int16)
    noise = np.random.default_rng(0).integers(-6, 7, page.shape)
    return np.clip(page + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def page() -> np.ndarray:
    return synthetic_page()


@pytest.fixture(scope="module")
def regions(page) -> rg.Regions:
    return rg.segment_regions(page, factor=1)


def label_at(r: rg.Regions, xy) -> int:
    full = r.full_labels()
    return int(full[xy[1], xy[0]])


def flat_fill(regions: rg.Regions, ab, confidence=None, **options) -> np.ndarray:
    """The compose's chroma ``[2, H, W]``: its one color per region (``fills.flat_colors``) on the labels."""
    return np.moveaxis(fills.flat_colors(regions, ab, confidence, **options)[0][regions.full_labels()], -1, 0)


def noisy_prediction(r: rg.Regions, colors: dict, seed: int = 0, shape=(300, 220)) -> np.ndarray:
    """A working-size ab ``[1,2,h,w]``: each given region's color (per label) plus noise, 0 elsewhere."""
    full = r.full_labels()
    h, w = shape
    ys = (np.arange(h) + 0.5) * H / h
    xs = (np.arange(w) + 0.5) * W / w
    lab = full[ys.astype(int)[:, None], xs.astype(int)[None, :]]
    ab = np.zeros((1, 2, h, w), dtype=np.float32)
    for label, (a, b) in colors.items():
        ab[0, 0][lab == label] = a
        ab[0, 1][lab == label] = b
    ab += np.random.default_rng(seed).normal(0, 4, ab.shape).astype(np.float32)
    return ab


def test_regions_are_where_the_ink_puts_them(regions):
    places = [GUTTER, PANEL_BG, FACE, BOX_IN, TONE, BALLOON]
    labels = [label_at(regions, p) for p in places]
    assert all(label > 0 for label in labels)
    assert len(set(labels)) == len(places)  # all distinct: no leak between them
    assert regions.full_labels().shape == (H, W)


def test_two_pixel_gap_does_not_let_color_escape(regions):
    inside, outside = label_at(regions, BOX_IN), label_at(regions, PANEL_BG)
    assert inside != outside
    ab = noisy_prediction(regions, {inside: (60.0, 40.0)})
    out = flat_fill(regions, ab)
    assert np.allclose(out[:, BOX_IN[1], BOX_IN[0]], out[:, 150, 300])
    assert np.hypot(*out[:, BOX_IN[1], BOX_IN[0]]) > 50
    # Just outside the gap, the panel's background stays uncolored.
    assert np.all(out[:, 70, 320:338] == 0)
    assert np.all(out[:, PANEL_BG[1], PANEL_BG[0]] == 0)


def test_screentoned_area_is_one_region(regions):
    x0, y0, x1, y1 = TONE_BOX
    inner = regions.full_labels()[y0 + 8:y1 - 8, x0 + 8:x1 - 8]
    assert len(np.unique(inner[inner > 0])) == 1
    assert label_at(regions, TONE) == inner[inner > 0][0]


def test_dark_tone_is_one_region(regions):
    x0, y0, x1, y1 = DARK_BOX
    inner = regions.full_labels()[y0 + 8:y1 - 8, x0 + 8:x1 - 8]
    counts = np.unique(inner[inner > 0], return_counts=True)[1]
    assert counts.max() >= 0.95 * inner.size


def test_each_enclosed_region_gets_one_color(regions):
    face, box, tone = (label_at(regions, p) for p in (FACE, BOX_IN, TONE))
    want = {face: (20.0, 60.0), box: (-40.0, 30.0), tone: (30.0, -50.0)}
    ab = noisy_prediction(regions, want)
    out = flat_fill(regions, ab)
    full = regions.full_labels()
    for label, (a, b) in want.items():
        core = regions.core[full == label] if regions.factor == 1 else None
        pixels = out[:, full == label]
        assert np.all(pixels == pixels[:, :1]), "one color per region"
        assert abs(pixels[0, 0] - a) < 3 and abs(pixels[1, 0] - b) < 3
        assert core is None or core.mean() > 0.5


def two_tone_panel(lower: str) -> np.ndarray:
    """A 560x420 page: one panel (border 4 px) whose upper half is a light dot tone and whose lower half is
    ``lower``: a dense dot tone, a coarse one, or the light tone shading smoothly darker; no line between."""
    page = np.full((560, 420), 255, np.uint8)
    page[20:24, 20:400] = page[536:540, 20:400] = page[20:540, 20:24] = page[20:540, 396:400] = 0
    yy, xx = np.mgrid[0:560, 0:420]
    upper = (yy >= 24) & (yy < 280) & (xx >= 24) & (xx < 396)
    low = (yy >= 280) & (yy < 536) & (xx >= 24) & (xx < 396)
    page[upper & ((yy % 8 < 2) & ((xx + 4 * (yy // 8 % 2)) % 8 < 2))] = 0           # a light dot tone
    if lower == "dense tone":
        page[low & ((yy % 4 < 2) & ((xx + 2 * (yy // 4 % 2)) % 4 < 2))] = 0
    elif lower == "coarse tone":
        page[low & ((yy % 6 < 3) & ((xx + 3 * (yy // 6 % 2)) % 6 < 3))] = 0
    else:  # a gradient of the light tone's own mean level down to a mid gray, the tone dots going on
        ramp = np.linspace(235, 170, 536 - 280)[:, None]
        page[280:536, 24:396] = np.minimum(page[280:536, 24:396], ramp.astype(np.uint8))
        page[low & ((yy % 8 < 2) & ((xx + 4 * (yy // 8 % 2)) % 8 < 2))] = 0
    return page


@pytest.mark.parametrize("lower", ["dense tone", "coarse tone"])
def test_two_tones_meeting_without_a_line_are_two_regions_and_a_hint_stays_in_its_own(lower):
    page = two_tone_panel(lower)
    r = rg.segment_regions(page, factor=1)
    full = r.full_labels()
    top, bottom = full[60:240, 60:360], full[320:500, 60:360]
    top_label = np.bincount(top.ravel()).argmax()
    bottom_label = np.bincount(bottom.ravel()).argmax()
    assert top_label != bottom_label and top_label > 0 and bottom_label > 0
    assert (top == top_label).mean() > 0.9 and (bottom == bottom_label).mean() > 0.9
    hints = np.zeros(page.shape + (4,), np.uint8)
    hints[140:150, 200:210] = (230, 60, 40, 255)  # a dot on the upper tone
    ids, _ = rg.hint_colors(r, hints)
    assert list(ids) == [top_label]
    assert rg.segment_regions(page, factor=1, tone_split=None).full_labels()[150, 200] == \
        rg.segment_regions(page, factor=1, tone_split=None).full_labels()[400, 200]  # one region without it


def test_a_tone_shading_smoothly_stays_one_region():
    r = rg.segment_regions(two_tone_panel("gradient"), factor=1)
    full = r.full_labels()
    inside = full[60:500, 60:360]
    assert (inside == np.bincount(inside.ravel()).argmax()).mean() > 0.9


def test_gutters_and_balloons_stay_white(regions):
    kinds = regions.kind
    assert kinds[label_at(regions, GUTTER)] == rg.PAPER
    assert kinds[label_at(regions, BALLOON)] == rg.BALLOON
    assert kinds[label_at(regions, FACE)] == rg.REGION
    # The model paints everything red: paper outside the panel and the balloon (text included) stay 0.
    ab = np.zeros((1, 2, 300, 220), dtype=np.float32)
    ab[0, 0] = 60.0
    ab[0, 1] = 45.0
    out = flat_fill(regions, ab)
    assert np.all(out[:, :26, :] == 0) and np.all(out[:, :, :26] == 0) and np.all(out[:, H - 26:, :] == 0)
    balloon = regions.full_labels() == label_at(regions, BALLOON)
    assert balloon[320:335, 265:360].mean() > 0.9, "the text belongs to the balloon"
    assert np.all(out[:, balloon] == 0)
    assert np.all(out[:, 320:335, 265:360][:, balloon[320:335, 265:360]] == 0)
    assert np.hypot(*out[:, FACE[1], FACE[0]]) > 60


def test_weak_predictions_stay_uncolored(regions):
    face, box = label_at(regions, FACE), label_at(regions, BOX_IN)
    ab = noisy_prediction(regions, {face: (2.0, 2.0), box: (50.0, 20.0)})
    out = flat_fill(regions, ab)
    assert np.all(out[:, FACE[1], FACE[0]] == 0)          # low chroma
    confidence = np.ones((1, 1, 300, 220), dtype=np.float32)
    confidence[..., 40:110, 130:200] = 0.02               # the square (x 260-400, y 80-220) is unsure
    out = flat_fill(regions, ab, confidence)
    assert np.all(out[:, BOX_IN[1], BOX_IN[0]] == 0)      # low confidence
    # No confidence given: pixels that disagree on the hue (half red, half green) stay neutral too.
    mixed = noisy_prediction(regions, {box: (50.0, 20.0)})
    mixed[0, :, :, 165:] *= -1
    out = flat_fill(regions, mixed)
    assert np.all(out[:, BOX_IN[1], BOX_IN[0]] == 0)
    # ... while one confident color with a few stray pixels keeps its color.
    stray = noisy_prediction(regions, {box: (50.0, 20.0)})
    stray[0, :, 50:60, 140:150] *= -1
    out = flat_fill(regions, stray)
    assert np.hypot(*out[:, BOX_IN[1], BOX_IN[0]] - np.array([50.0, 20.0])) < 4


def test_hint_wins_over_the_model(regions):
    face, box = label_at(regions, FACE), label_at(regions, BOX_IN)
    ab = noisy_prediction(regions, {face: (60.0, 50.0), box: (60.0, 50.0)})
    hints = np.zeros((H, W, 4), dtype=np.uint8)
    hints[145:150, 110:140] = (40, 90, 220, 255)     # a blue scribble in the face
    hints[10:14, 10:14] = (0, 200, 0, 255)           # a green dot on the gutter: the user's word counts
    out = flat_fill(regions, ab, hints=hints)
    blue = srgb8_to_ab(np.array([40, 90, 220], dtype=np.uint8))
    face_px = out[:, regions.full_labels() == face]
    assert np.allclose(face_px, blue[:, None], atol=1e-5)
    assert np.allclose(out[:, BOX_IN[1], BOX_IN[0]], out[:, 150, 300])
    assert np.hypot(*out[:, BOX_IN[1], BOX_IN[0]]) > 60      # untouched regions keep the model's color
    assert np.allclose(out[:, GUTTER[1], GUTTER[0]], srgb8_to_ab(np.array([0, 200, 0], np.uint8)), atol=1e-5)
    # The same hints on a per-pixel (soft) ab image.
    soft = flat_fill(regions, np.zeros((1, 2, 300, 220), np.float32), hints=hints)  # over a zero prediction
    assert np.allclose(soft[:, FACE[1], FACE[0]], blue, atol=1e-5)
    assert np.all(soft[:, BOX_IN[1], BOX_IN[0]] == 0)


def test_hints_of_another_size_are_refused(regions):
    with pytest.raises(ValueError, match="441x600.*440x600"):
        rg.hint_colors(regions, np.zeros((600, 441, 4), np.uint8))


def test_hint_ab_matches_lab_conversion():
    from skimage.color import rgb2lab
    rgb = np.array([[12, 200, 90], [250, 20, 20], [128, 128, 128]], dtype=np.uint8)
    want = rgb2lab(rgb[None].astype(np.float64) / 255.0)[0, :, 1:]
    assert np.allclose(srgb8_to_ab(rgb), want, atol=0.05)


def test_saturation(regions):
    ab = noisy_prediction(regions, {label_at(regions, FACE): (30.0, 40.0)})
    one = flat_fill(regions, ab)
    assert np.all(flat_fill(regions, ab, saturation=0.0) == 0)
    assert np.allclose(flat_fill(regions, ab, saturation=2.0), 2 * one)
    assert np.allclose(rg.saturate(ab, 0.5), ab / 2)
    with pytest.raises(ValueError):
        rg.saturate(ab, 2.5)


def test_reduced_resolution_maps_back(page):
    big = np.asarray(Image.fromarray(page).resize((W * 2, H * 2), Image.NEAREST))
    r = rg.segment_regions(big, factor=2)
    assert rg.label_factor((1700, 1200)) == 2 and r.full_labels().shape == big.shape
    full = r.full_labels()
    pts = [(2 * x, 2 * y) for x, y in (GUTTER, PANEL_BG, FACE, BOX_IN, TONE, BALLOON)]
    labels = [int(full[y, x]) for x, y in pts]
    assert len(set(labels)) == len(labels) and min(labels) > 0
    assert r.kind[labels[0]] == rg.PAPER and r.kind[labels[-1]] == rg.BALLOON
    ab = np.zeros((1, 2, 300, 220), np.float32)
    ab[0, 0] = 50.0
    out = flat_fill(r, ab)
    assert out.shape == (2, 2 * H, 2 * W)
    # Paper outside the panel is exactly neutral right up to the border line.
    assert np.all(out[:, :, :58] == 0) and np.all(out[:, :58, :] == 0)


def test_blank_and_black_pages():
    for value in (255, 0):
        page = np.full((100, 80), value, np.uint8)
        r = rg.segment_regions(page)
        out = flat_fill(r, np.full((1, 2, 50, 40), 30.0, np.float32))
        assert out.shape == (2, 100, 80)
        assert np.all(out == 0)  # a blank page is paper; an all-black page has no region



@pytest.mark.parametrize("size", [1, 3, 5, 7])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32])
def test_max_filter_is_scipys(size, dtype):
    from scipy import ndimage
    rng = np.random.default_rng(size)
    for shape in ((1, 1), (2, 9), (37, 53), (64, 3)):
        x = rng.integers(0, 200, shape).astype(dtype)
        assert np.array_equal(raster.max_filter(x, size), ndimage.maximum_filter(x, size=size))
    assert raster.max_filter(x, size) is not x  # never the input itself


def test_label_without_scipy_gives_scipys_labels(page, monkeypatch):
    from scipy import ndimage
    rng = np.random.default_rng(0)
    masks = [page < 128, page >= 128, rng.random((61, 47)) < 0.5, np.zeros((5, 5), bool), np.ones((5, 5), bool)]
    want = [(ndimage.label(m, structure=np.ones((3, 3), bool) if eight else None), eight) for m in masks
            for eight in (False, True)]
    monkeypatch.delitem(__import__("sys").modules, "scipy.ndimage")  # the colorize path: scipy never imported
    for ((labels, n), eight), m in zip(want, [m for m in masks for _ in (0, 1)]):
        got, got_n = raster.label(m, eight=eight)
        assert got_n == n and np.array_equal(got, labels)


def test_label_gives_scipys_labels_on_shapes_that_stress_its_run_union_find():
    from scipy import ndimage
    rng = np.random.default_rng(1)
    comb = np.zeros((60, 40), bool)  # 20 long teeth joined only by the last row
    comb[:, ::2] = comb[-1] = True
    snake = np.zeros((41, 30), bool)  # one path through every row, turning at alternate ends
    snake[::2] = snake[1::4, -1] = snake[3::4, 0] = True
    stairs = np.eye(30, dtype=bool)  # 30 pixels 4-connected, one component 8-connected
    masks = [comb, comb[::-1], snake, snake[::-1, ::-1], stairs, stairs[::-1], np.zeros((0, 4), bool),
             np.zeros((4, 0), bool), np.ones((1, 9), bool), np.ones((9, 1), bool),
             *(rng.random(rng.integers(1, 50, 2)) < rng.random() for _ in range(60))]
    for m in masks:
        for eight in (False, True):
            want, n = ndimage.label(m, structure=np.ones((3, 3), bool) if eight else None)
            got, got_n = raster.label(m, eight=eight)
            assert got_n == n and np.array_equal(got, want), (m.shape, eight)


def test_label_spans_are_the_components_bounding_boxes_measured_by_scipy():
    """label_spans measures each component's box on the mask's runs; scipy's find_objects on its labels
    must agree, whatever the extent (letters, strokes and lines of a page, random masks, empty ones)."""
    from scipy import ndimage
    rng = np.random.default_rng(2)
    masks = [rng.random(rng.integers(1, 60, 2)) < rng.random() for _ in range(40)]
    masks += [np.zeros((0, 4), bool), np.zeros((6, 6), bool), np.ones((1, 9), bool), np.eye(30, dtype=bool)]
    for m in masks:
        for eight in (False, True):
            for extent in (1, 3, 12):
                labels, n, spans = raster.label_spans(m, extent, eight=eight)
                want, want_n = raster.label(m, eight=eight)
                assert n == want_n and np.array_equal(labels, want)
                expected = np.zeros(n + 1, bool)
                for i, box in enumerate(ndimage.find_objects(labels) if n else [], start=1):
                    expected[i] = max(box[0].stop - box[0].start, box[1].stop - box[1].start) >= extent
                assert np.array_equal(spans, expected), (m.shape, eight, extent)


def test_label_boxes_are_the_pixel_boxes_of_the_selected_labels():
    rng = np.random.default_rng(3)
    for _ in range(30):
        h, w = rng.integers(1, 40, 2)
        labels = rng.integers(0, rng.integers(1, 8), (h, w)).astype(np.int32)
        labels = np.repeat(labels, rng.integers(1, 4), axis=1)[:, :w]  # runs longer than a pixel
        n = int(labels.max())
        select = rng.random(n + 1) < 0.6
        ys, xs = np.nonzero(select[labels])
        want = raster.boxes_of(ys, xs, labels[ys, xs], n + 1)
        assert np.array_equal(raster.label_boxes(labels, n + 1, select), want)


def test_segmentation_is_the_same_with_and_without_scipy(page, monkeypatch):
    import sys

    from scipy import ndimage  # noqa: F401  (loaded, as in training and eval)
    with_scipy = rg.segment_regions(page)
    monkeypatch.delitem(sys.modules, "scipy.ndimage")  # as in colorize: scipy never imported
    without = rg.segment_regions(page)
    assert np.array_equal(without.labels, with_scipy.labels) and np.array_equal(without.kind, with_scipy.kind)
    assert np.array_equal(without.core, with_scipy.core) and without.kind.tolist().count(rg.BALLOON) >= 1


def test_an_rgb_page_segments_as_its_gray(page):
    want = rg.segment_regions(page)
    for rgb in (np.stack([page] * 3, -1), np.stack([page.astype(np.uint16) * 257] * 3, -1)):
        got = rg.segment_regions(rgb)
        assert np.array_equal(got.labels, want.labels) and np.array_equal(got.kind, want.kind)

# ---------------------------------------------------------------- the compose (models/paint/compose.py)
def _lightness(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab
    return rgb2lab(rgb.astype(np.float64) / 255.0)[..., 0]


@pytest.fixture(scope="module")
def page_L(page):
    import torch
    from skimage.color import rgb2lab
    L = rgb2lab(np.repeat(page[..., None], 3, axis=2).astype(np.float64) / 255.0)[..., 0]
    return torch.from_numpy(L.astype(np.float32))[None, None]


@pytest.mark.parametrize("fill", ["flat", "soft"])
def test_compose_keeps_ink_and_saturation_zero_gives_the_gray_page(page, page_L, fill):
    import torch

    from models.paint import compose
    ab = torch.zeros(1, 2, 300, 220)
    ab[:, 0], ab[:, 1] = 50.0, 30.0
    rgb = compose.compose(page_L, ab, gray=page, fill=fill).numpy()
    ink = page < 100
    assert np.abs(_lightness(rgb)[ink] - page_L[0, 0].numpy()[ink]).max() < 1.0
    gray = compose.compose(page_L, ab, gray=page, fill=fill, saturation=0.0).numpy()
    assert np.abs(gray.astype(int) - page[..., None].astype(int)).max() <= 1
    if fill == "flat":
        # Paper outside the panel and the balloon stay exactly white; the face is colored.
        assert np.all(rgb[:20, :20] == page[:20, :20, None])
        assert np.all(rgb[BALLOON[1], BALLOON[0]] == page[BALLOON[1], BALLOON[0]])
        r, g, b = rgb[FACE[1], FACE[0]].astype(int)
        assert r > g + 30 and r > b + 30


def test_compose_soft_with_hints(page, page_L):
    import torch

    from models.paint import compose
    ab = torch.zeros(1, 2, 300, 220)
    hints = np.zeros((H, W, 4), np.uint8)
    hints[140:150, 120:140] = (30, 160, 40, 255)
    rgb = compose.compose(page_L, ab, gray=page, fill="soft", hints=hints).numpy()
    r, g, b = rgb[FACE[1], FACE[0]].astype(int)
    assert g > r + 30 and g > b + 30
    assert np.all(rgb[BOX_IN[1], BOX_IN[0]] == page[BOX_IN[1], BOX_IN[0]])


def test_colorizer_fill_saturation_and_hints(page):
    from mangacolor_cli.engine.colorizer import Colorizer
    from mangacolor_cli.errors import PageError, UsageError
    from tests.conftest import strongly_colored_unet
    net = strongly_colored_unet(0)
    flat = Colorizer(net, device="cpu", backend="torch", size=128, fill="flat")
    soft = Colorizer(net, device="cpu", backend="torch", size=128, fill="soft")
    out_flat, out_soft = flat.colorize([page])[0], soft.colorize([page])[0]
    assert out_flat.shape == out_soft.shape == (H, W, 3)
    assert np.all(out_flat[:20, :20] == page[:20, :20, None])  # margins stay paper in flat
    gray = Colorizer(net, device="cpu", backend="torch", size=128, saturation=0.0).colorize([page])[0]
    assert np.abs(gray.astype(int) - page[..., None].astype(int)).max() <= 1
    hints = np.zeros((H, W, 4), np.uint8)
    hints[140:150, 120:140] = (30, 160, 40, 255)
    hinted = flat.colorize([page], hints=[hints])[0]
    want = srgb8_to_ab(np.array([30, 160, 40], np.uint8))
    from skimage.color import rgb2lab
    got = rgb2lab(hinted[FACE[1], FACE[0]].astype(np.float64) / 255.0)[1:]
    assert np.hypot(*(got - want)) < 3.0
    with pytest.raises(PageError, match="is 441x600 but the page is 440x600"):
        flat.colorize([page], hints=[np.zeros((600, 441, 4), np.uint8)])
    with pytest.raises(UsageError):
        Colorizer(net, device="cpu", backend="torch", fill="blotchy")
    with pytest.raises(UsageError):
        Colorizer(net, device="cpu", backend="torch", saturation=2.5)


# ---------------------------------------------------------------- the CLI: --fill, --saturation, --hints
def _cli(*args):
    from typer.testing import CliRunner

    from mangacolor_cli.commands import app
    return CliRunner().invoke(app, ["colorize", *map(str, args)])


def _ab_at(rgb: np.ndarray, xy) -> np.ndarray:
    from skimage.color import rgb2lab
    return rgb2lab(rgb[xy[1], xy[0]].astype(np.float64) / 255.0)[1:]


def _scribble(color=(30, 160, 40), shape=(H, W)) -> Image.Image:
    hints = np.zeros((*shape, 4), np.uint8)
    hints[140:150, 120:140] = (*color, 255)
    return Image.fromarray(hints, "RGBA")


def test_cli_hints_file_saturation_and_fill(tmp_path, page, tiny_checkpoint):
    src = tmp_path / "page.png"
    Image.fromarray(page).save(src)
    _scribble().save(tmp_path / "hints.png")
    result = _cli(src, "-o", tmp_path / "hinted.png", "--model", tiny_checkpoint, "--size", 64,
                  "--hints", tmp_path / "hints.png")
    assert result.exit_code == 0, result.output
    hinted = np.asarray(Image.open(tmp_path / "hinted.png").convert("RGB"))
    want = srgb8_to_ab(np.array([30, 160, 40], np.uint8))
    assert np.hypot(*(_ab_at(hinted, FACE) - want)) < 3.0
    # On paper the hinted region is exactly the hint's color (its lightness too); ink stays ink: laid
    # under the line art in multiply, it can only darken, never lighten.
    assert np.abs(hinted[FACE[1], FACE[0]].astype(int) - (30, 160, 40)).max() <= 2
    ink = page < 60
    assert (_lightness(hinted)[ink] - _lightness(np.repeat(page[..., None], 3, 2))[ink]).max() < 0.5
    assert _lightness(hinted)[ink].max() < 25
    assert np.all(hinted[:20, :20] == page[:20, :20, None])  # margins stay paper
    result = _cli(src, "-o", tmp_path / "gray.png", "--model", tiny_checkpoint, "--size", 64, "--saturation", 0)
    assert result.exit_code == 0, result.output
    gray = np.asarray(Image.open(tmp_path / "gray.png").convert("RGB")).astype(int)
    assert np.abs(gray - page[..., None].astype(int)).max() <= 1
    for fill in ("soft", "flat"):
        result = _cli(src, "-o", tmp_path / f"{fill}.png", "--model", tiny_checkpoint, "--size", 64, "--fill", fill)
        assert result.exit_code == 0, result.output
    assert _cli(src, "-o", tmp_path / "x.png", "--model", tiny_checkpoint, "--fill", "blotchy").exit_code == 2
    assert _cli(src, "-o", tmp_path / "x.png", "--model", tiny_checkpoint, "--saturation", 3).exit_code == 2


def test_cli_hints_dir_for_an_archive(tmp_path, page, tiny_checkpoint):
    import io
    import zipfile
    chapter = tmp_path / "ch1.cbz"
    with zipfile.ZipFile(chapter, "w") as z:
        for name in ("001.png", "002.png"):
            buf = io.BytesIO()
            Image.fromarray(page).save(buf, format="PNG")
            z.writestr(name, buf.getvalue())
    hints = tmp_path / "hints"
    hints.mkdir()
    _scribble((200, 40, 160)).save(hints / "001.png")
    result = _cli(chapter, "-o", tmp_path / "out.cbz", "--model", tiny_checkpoint, "--size", 64, "--hints", hints)
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(tmp_path / "out.cbz") as z:
        first = np.asarray(Image.open(io.BytesIO(z.read("001.png"))).convert("RGB"))
        second = np.asarray(Image.open(io.BytesIO(z.read("002.png"))).convert("RGB"))
    want = srgb8_to_ab(np.array([200, 40, 160], np.uint8))
    assert np.hypot(*(_ab_at(first, FACE) - want)) < 3.0
    assert np.hypot(*(_ab_at(second, FACE) - want)) > 10.0  # no hint file for page 002
    # A hint file of the wrong size (neither the page's nor a hint map's, at most half of it): that page fails
    # with one line naming both; the other page is done.
    _scribble(shape=(500, 300)).save(hints / "002.png")
    result = _cli(chapter, "-o", tmp_path / "out2.cbz", "--model", tiny_checkpoint, "--size", 64, "--hints", hints)
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "002.png is 300x500 but" in message and "ch1.cbz:002.png is 440x600" in message
    # One hint file cannot serve an archive of two pages.
    result = _cli(chapter, "-o", tmp_path / "out3.cbz", "--model", tiny_checkpoint, "--hints", hints / "001.png")
    assert result.exit_code == 2 and "one hint file per page" in " ".join(result.output.split())


def test_colorizer_carries_the_models_confidence(page):
    import torch
    from tests.conftest import strongly_colored_unet
    from mangacolor_cli.engine.colorizer import Colorizer
    net = strongly_colored_unet(0)

    def constant(x, value):  # a model that predicts one strong color, with a given confidence
        ab = torch.zeros(x.shape[0], 2, *x.shape[-2:])
        ab[:, 0], ab[:, 1] = 0.5, 0.3
        return ab, torch.full((x.shape[0], 1, *x.shape[-2:]), value)

    sure = Colorizer(net, device="cpu", backend="torch", size=128)
    net.predict = lambda x: constant(x, 0.9)
    (ab, conf), = sure.predict([page])
    assert conf is not None and conf.shape[1] == 1 and float(conf.min()) == pytest.approx(0.9)
    colored = sure.colorize([page])[0]
    assert np.hypot(*_ab_at(colored, FACE)) > 30
    net.predict = lambda x: constant(x, 0.05)
    unsure = sure.colorize([page])[0]
    assert np.all(unsure == page[..., None])  # the model is unsure everywhere: the page stays as it is


def test_cli_eval_scores_flat_and_soft_side_by_side(tmp_path, page, tiny_checkpoint):
    import json
    from typer.testing import CliRunner
    from mangacolor_cli.commands import app
    for sub in ("bw", "color"):
        (tmp_path / "set" / sub).mkdir(parents=True)
    target = np.repeat(page[..., None], 3, axis=2).copy()
    target[regions_mask(page, FACE)] = (230, 60, 60)
    for i in range(2):
        Image.fromarray(page).save(tmp_path / "set" / "bw" / f"p{i}.png")
        Image.fromarray(target).save(tmp_path / "set" / "color" / f"p{i}.png")
    result = CliRunner().invoke(app, ["eval", "-m", str(tiny_checkpoint), "--data", str(tmp_path / "set"), "--size", "64",
                                      "--fill", "flat", "--fill", "soft", "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    systems = json.loads(result.stdout[result.stdout.index("{"):])["systems"]
    name = tiny_checkpoint.stem
    assert {f"{name} (flat)", f"{name} (soft)", "gray baseline"} <= set(systems)
    assert systems[f"{name} (flat)"]["ciede2000"] != systems[f"{name} (soft)"]["ciede2000"]
    bad = CliRunner().invoke(app, ["eval", "-m", str(tiny_checkpoint), "--data", str(tmp_path / "set"),
                                   "--fill", "blotchy", "--device", "cpu"])
    assert bad.exit_code == 2


def regions_mask(page: np.ndarray, xy) -> np.ndarray:
    full = rg.segment_regions(page, factor=1).full_labels()
    return full == full[xy[1], xy[0]]


def test_two_split_regions_side_by_side_each_keep_their_own_part():
    """Two regions that meet without a line, each a light tone above a dark one: the light parts touch across
    the regions' border, and each region still gets a part of its own, inside it."""
    from models.paint.tone_split import split_tones

    h, w = 200, 200
    labels = np.ones((h, w), np.int32)
    labels[:, w // 2:] = 2
    level = np.where(np.arange(h)[:, None] < h // 2, 230, 120).astype(np.int64) * np.ones((1, w), np.int64)
    out, added = split_tones(labels.copy(), 2, np.array([False, True, True]), level, np.ones((h, w), bool), 1,
                             step=24.0, min_part=600)
    assert added == 2
    assert len(set(np.unique(out[:h // 2 - 10, :w // 2 - 10])) | set(np.unique(out[:h // 2 - 10, w // 2 + 10:]))) == 2
    for region, columns, inside in ((1, slice(0, w // 2), slice(0, w // 2 - 4)), (2, slice(w // 2, w), slice(w // 2 + 4, w))):
        new = np.unique(out[:h // 2 - 10, inside])  # (the cut between the two light parts: a seam 2 px wide)
        assert len(new) == 1 and new[0] > 2                        # the light part: a label of its own
        assert (out[h // 2 + 10:, columns] == region).all()      # the dark part keeps the region's
        assert not np.isin(out[:, columns], [l for l in (3, 4) if l != new[0]]).any()
