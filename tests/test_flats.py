"""Flats that hold: regions that do not leak through thin or open outlines, regions split where the tone
steps, and hints that color what they touch and not the page around it (models/paint/regions.py,
models/paint/trapped_ball.py, the compose)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from models.paint import compose_cpu, fills
from models.paint import regions as rg
from models.paint import trapped_ball as tb

W, H = 1200, 1700  # a real page size: the segmentation runs at half resolution here
MARGIN = (20, 850)


def page_with_open_outlines(gap: int) -> tuple[np.ndarray, dict]:
    """A page with margins and two panels. Panel 1: a face whose outline is open to the panel over
    ``gap`` px (hair that does not close on the cheek), and a card drawn with a 1-px gray outline.
    Panel 2: a face drawn open to the gutter (its outline stops ``gap`` px short of the panel border)."""
    img = Image.new("L", (W, H), 255)
    d = ImageDraw.Draw(img)
    d.rectangle((60, 60, W - 60, 820), outline=0, width=6)          # panel 1
    d.rectangle((60, 880, W - 60, H - 60), outline=0, width=6)      # panel 2
    # A face: a circle of ink with an opening of `gap` px on its right side.
    d.ellipse((200, 200, 500, 500), outline=0, width=5)
    d.rectangle((490, 350 - gap // 2, 510, 350 + gap // 2), fill=255)
    d.ellipse((300, 300, 315, 315), fill=0)                           # an eye
    # A card with a 1-px mid-gray outline (thinner than a label block).
    d.rounded_rectangle((700, 200, 1000, 700), radius=30, outline=150, width=1)
    # Panel 2: a face whose outline is a U open at the top, ending `gap` px below the panel border.
    top = 886 + gap
    d.line((300, top, 300, 1400), fill=0, width=5)
    d.line((700, top, 700, 1400), fill=0, width=5)
    d.arc((300, 1200, 700, 1600), 0, 180, fill=0, width=5)
    d.line((300, 1400, 300, 1400), fill=0, width=5)
    page = np.asarray(img)
    places = {"face": (350, 420), "outside_face": (600, 350), "card": (850, 450), "beside_card": (1080, 450),
              "u_face": (500, 1300), "panel2": (900, 1300)}
    return page, places


def hint_dot(xy, rgb) -> np.ndarray:
    hints = np.zeros((H, W, 4), np.uint8)
    x, y = xy
    hints[y - 4:y + 5, x - 4:x + 5] = (*rgb, 255)
    return hints


def colored(out: np.ndarray, page: np.ndarray) -> np.ndarray:
    """Pixels where the output differs in color from gray."""
    o = out.astype(int)
    return (np.abs(o[..., 0] - o[..., 1]) + np.abs(o[..., 1] - o[..., 2])) > 12


@pytest.fixture(scope="module")
def narrow():
    return page_with_open_outlines(gap=14)


def test_a_one_pixel_gray_outline_encloses_its_region(narrow):
    page, places = narrow
    r = rg.segment_regions(page)
    full = r.full_labels()
    at = lambda name: int(full[places[name][1], places[name][0]])  # noqa: E731
    assert at("card") != at("beside_card")


@pytest.mark.parametrize("gap", [8, 14, 24])
def test_a_face_open_by_several_pixels_is_its_own_region(gap):
    page, places = page_with_open_outlines(gap)
    r = rg.segment_regions(page)
    full = r.full_labels()
    at = lambda name: int(full[places[name][1], places[name][0]])  # noqa: E731
    assert at("face") != at("outside_face")
    assert at("u_face") != at("panel2")
    # ... and the panel around it is still one region (the balls only split at narrow gaps).
    assert at("outside_face") == int(full[700, 150])


@pytest.mark.parametrize("gap", [8, 24])
def test_a_hint_dot_on_an_open_face_colors_the_face_and_not_the_page(gap):
    page, places = page_with_open_outlines(gap)
    ab = np.zeros((2, 320, 226), np.float32)
    for face, outside in (("face", "outside_face"), ("u_face", "panel2")):
        out = compose_cpu.compose(ab, gray=page, hints=hint_dot(places[face], (240, 190, 150)))
        mask = colored(out, page)
        fx, fy = places[face]
        ox, oy = places[outside]
        assert mask[fy, fx], face
        assert not mask[oy, ox], outside
        assert not mask[MARGIN[1], MARGIN[0]]
        # the margins and gutters stay exactly paper
        assert not mask[:40].any() and not mask[:, :40].any() and not mask[840:870].any()
        assert mask.mean() < 0.15  # the U face is 13% of the page


def test_a_hint_inside_a_thin_outlined_card_keeps_to_the_card(narrow):
    page, places = narrow
    out = compose_cpu.compose(np.zeros((2, 320, 226), np.float32), gray=page,
                              hints=hint_dot(places["beside_card"], (90, 160, 230)))
    mask = colored(out, page)
    cx, cy = places["card"]
    bx, by = places["beside_card"]
    assert mask[by, bx] and not mask[cy, cx]


def gray_shaded_page() -> tuple[np.ndarray, dict]:
    """Gray-shaded art: areas of different gray meeting without a line (cel shading), and a soft
    gradient that must stay one region."""
    page = np.full((H, W), 255, np.uint8)
    page[100:1600, 100:1100] = 0
    page[106:1594, 106:1094] = 255
    page[200:800, 200:600] = 200                           # a light area ...
    page[200:800, 600:1000] = 140                          # ... meeting a darker one, no line between
    page[900:1500, 200:1000] = np.linspace(150, 230, 800).astype(np.uint8)[None, :]  # a soft gradient
    page[900:1500, 196:200] = 0
    rng = np.random.default_rng(0)
    page = np.clip(page.astype(int) + rng.integers(-5, 6, page.shape), 0, 255).astype(np.uint8)
    return page, {"light": (400, 500), "dark": (800, 500), "grad_left": (300, 1200), "grad_right": (900, 1200)}


def test_regions_split_where_the_tone_steps_but_not_along_a_gradient():
    page, places = gray_shaded_page()
    full = rg.segment_regions(page).full_labels()
    at = lambda name: int(full[places[name][1], places[name][0]])  # noqa: E731
    assert at("light") != at("dark")
    assert at("grad_left") == at("grad_right")
    assert rg.segment_regions(page, tone_step=None).full_labels()[500, 400] == \
        rg.segment_regions(page, tone_step=None).full_labels()[500, 800]


def test_screentone_and_text_make_no_tone_edges():
    page = np.full((400, 400), 255, np.uint8)
    page[100:300, 100:300][::6, ::6] = 0                   # a dot tone
    edges = tb.tone_edges(page, page > 128)
    assert not edges[120:280, 120:280].any()


def test_trapped_balls_stop_at_a_gap_narrower_than_the_ball():
    paper = np.ones((200, 300), bool)
    paper[:, 148:152] = False                              # a wall ...
    paper[95:105, 148:152] = True                          # ... with a 10-px gap
    labels, n = tb.trapped_ball_labels(paper, (8, 4, 2))
    assert n == 2 and labels[100, 20] != labels[100, 280]
    labels, n = tb.trapped_ball_labels(paper, (4, 2))      # a ball that fits through the gap
    assert n == 1
    # every paper pixel is labeled, and nothing else
    assert ((labels > 0) == paper).all()


def test_hatching_is_shading_one_region_split_from_the_white_paper_beside_it():
    """A panel whose top half is hatched (1-px diagonal lines every 6 px, no line below it): the hatched
    area is one region (it was a stack of strips with no core, left uncolored), apart from the white half."""
    page = np.full((H, W), 255, np.uint8)
    page[100:106, 100:1100] = page[1494:1500, 100:1100] = 0
    page[100:1500, 100:106] = page[100:1500, 1094:1100] = 0
    yy, xx = np.mgrid[106:700, 106:1094]
    page[106:700, 106:1094][(xx + yy) % 12 < 2] = 0
    full = rg.segment_regions(page).full_labels()
    hatched = full[150:650, 150:1050]
    values, counts = np.unique(hatched[hatched > 0], return_counts=True)
    assert counts.max() > 0.9 * hatched.size
    assert full[1200, 600] not in (0, values[counts.argmax()])


def test_a_solid_black_area_takes_a_hint_but_never_a_model_color():
    """Line art draws dark hair or a dark coat as solid black: a hint colors it with the hint's own
    lightness; the model's colors never show there."""
    page = np.full((H, W), 255, np.uint8)
    page[100:106, 100:1100] = page[1494:1500, 100:1100] = 0
    page[100:1500, 100:106] = page[100:1500, 1094:1100] = 0
    page[400:900, 300:800] = 0                                        # a solid black coat
    r = rg.segment_regions(page)
    at = int(r.full_labels()[650, 550])
    assert at > 0 and r.kind[at] == rg.SOLID
    model_ab = np.full((2, 320, 226), 40.0, np.float32)
    plain = compose_cpu.compose(model_ab, gray=page, regions=r)
    assert (plain[450:850, 350:750] == 0).all()
    navy = (30, 40, 110)
    hinted = compose_cpu.compose(model_ab, gray=page, regions=r, hints=hint_dot((550, 650), navy))
    assert np.abs(hinted[650, 550].astype(int) - navy).max() <= 3


def test_paper_specks_in_a_dark_shaded_areas_rim_join_it_and_a_highlight_stays_a_region():
    """A dark-shaded area (gray 113, under the ink level) is SOLID; its anti-aliased rim is noisy, and pixels
    just over the ink level there made 7x7 regions of the area's own tone that vivid painted as red squares
    (a heart on a val_gray page). Those specks join the SOLID; a real highlight inside it stays a region."""
    rng = np.random.default_rng(0)
    page = np.full((H, W), 255, np.uint8)
    page[100:106, 100:1100] = page[1494:1500, 100:1100] = 0
    page[100:1500, 100:106] = page[100:1500, 1094:1100] = 0
    page[300:1000, 250:950] = 113                                    # a dark-shaded heart
    rim = np.zeros((H, W), bool)
    rim[300:316, 250:950] = rim[984:1000, 250:950] = rim[300:1000, 250:266] = rim[300:1000, 934:950] = True
    noise = np.clip(113 + rng.normal(0, 14, (H, W)), 60, 150).astype(np.uint8)
    page[rim] = noise[rim]                                           # its noisy rim: pixels up to 150
    page[600:660, 560:640] = 250                                     # a highlight
    r = rg.segment_regions(page)
    full = r.full_labels()
    heart = int(full[650, 400])
    assert r.kind[heart] == rg.SOLID
    inside = full[300:1000, 250:950]
    region_px = np.isin(inside, np.flatnonzero(r.kind == rg.REGION))
    highlight = int(full[630, 600])
    assert r.kind[highlight] == rg.REGION
    # Inside the heart no region but the highlight (the paper around it reaches over its edge by a few px).
    enclosed = [k for k in np.unique(inside[region_px])
                if k > 0 and (inside == k).sum() > 0.5 * (full == k).sum()]
    assert enclosed == [highlight]
    assert r.labels.max() == len(r.kind) - 1 and np.isin(np.arange(1, len(r.kind)), r.labels).all()
    vivid = compose_cpu.compose(np.full((2, 320, 226), 40.0, np.float32), gray=page, regions=r, palette="vivid")
    rgb = vivid[320:980, 270:930].astype(int)
    colored = np.abs(rgb - rgb.mean(axis=2, keepdims=True)).max(axis=2) > 6
    colored[270:350, 280:380] = False                                # the highlight (and its rim) may take a color
    assert not colored.any()


def test_the_holes_of_a_dense_stipple_join_it_and_windows_in_a_solid_black_stay_regions():
    """A dense random stipple (a dress, val_clipart page 3) is taken for a textured SOLID; its larger paper
    holes made small regions that vivid painted as red confetti. They join the SOLID. Small paper windows
    in a solid black (skin between black braids) are drawn, not texture, and stay regions."""
    rng = np.random.default_rng(3)
    h, w = 724, 512                                                   # a validation-sized page (no reduction)
    page = np.full((h, w), 255, np.uint8)
    page[40:44, 40:472] = page[680:684, 40:472] = 0
    page[40:684, 40:44] = page[40:684, 468:472] = 0
    page[100:400, 80:300] = np.where(rng.random((300, 220)) < 0.5, 0, 255)   # the stippled dress
    page[96:100, 76:304] = page[400:404, 76:304] = 0
    page[96:404, 76:80] = page[96:404, 300:304] = 0
    page[480:620, 300:420] = 0                                        # solid black braids ...
    for y in (510, 560):
        page[y:y + 9, 330:342] = 255                                  # ... with skin between them
    r = rg.segment_regions(page)
    assert r.factor == 1
    full = r.full_labels()
    dress = full[100:400, 80:300]
    solid = np.flatnonzero(r.kind == rg.SOLID)
    assert np.isin(dress, solid).mean() > 0.9
    # No region lies inside the dress, 8 px in from its outline (a hole against the outline meets the
    # paper outside across the regrown line, and stays).
    core = full[108:392, 88:292]
    inside = [k for k in np.unique(core) if k > 0 and r.kind[k] == rg.REGION
              and (core == k).sum() > 0.5 * (full == k).sum()]
    assert inside == []
    for y in (510, 560):
        assert r.kind[full[y + 4, 336]] == rg.REGION


def test_vivid_commits_every_region_to_a_color_and_safe_leaves_weak_ones_gray():
    """A region where the model is unsure (weak, pale prediction) stays gray under safe; vivid gives it its
    color, more saturated, and still leaves paper and balloons alone."""
    page, places = page_with_open_outlines(gap=8)
    r = rg.segment_regions(page)
    ab = np.zeros((2, 320, 226), np.float32)
    ab[0] += 4.0       # a weak, pale orange everywhere: below safe's chroma floor
    ab[1] += 3.0
    face = int(r.full_labels()[places["face"][1], places["face"][0]])
    safe = rg.region_colors(r, ab, palette="safe")
    vivid = rg.region_colors(r, ab, palette="vivid")
    assert np.hypot(*safe[face]) == 0.0
    assert np.hypot(*vivid[face]) == pytest.approx(5.0 * rg.VIVID_CHROMA, rel=0.05)
    assert (vivid[r.neutral] == 0).all()
    out = compose_cpu.compose(ab, gray=page, regions=r, palette="vivid")
    assert colored(out, page)[places["face"][1], places["face"][0]]
    assert not colored(out, page)[MARGIN[1], MARGIN[0]]
    with pytest.raises(ValueError):
        rg.region_colors(r, ab, palette="loud")


def test_vivid_chroma_is_capped():
    ab = np.array([[40.0, 0.0], [3.0, 4.0]], np.float32)
    out = rg.vivid(ab, axis=1)
    assert np.hypot(*out[0]) == pytest.approx(rg.VIVID_MAX_CHROMA)
    assert np.hypot(*out[1]) == pytest.approx(5.0 * rg.VIVID_CHROMA)


def test_the_cli_palettes_are_the_librarys():
    from mangacolor_cli.engine.choices import PALETTES
    assert PALETTES == rg.PALETTES


def toned_box_page(with_eye: bool = True) -> np.ndarray:
    """A 600x600 page: a black-outlined box filled with a 50% checker screentone (2-px dots), an eye mark
    (a 9x9 black square, bigger than a tone dot) inside it, and white paper around."""
    page = np.full((600, 600), 255, np.uint8)
    page[100:500, 100:500] = 0
    inner = np.full((388, 388), 255, np.uint8)
    yy, xx = np.mgrid[0:388, 0:388]
    inner[((yy // 2) + (xx // 2)) % 2 == 0] = 0
    page[106:494, 106:494] = inner
    if with_eye:
        page[280:289, 280:289] = 0
    return page


def test_under_a_known_color_screentone_becomes_the_shade_it_makes_and_marks_stay():
    page = toned_box_page()
    hints = np.zeros((600, 600, 4), np.uint8)
    hints[200:210, 200:210] = (200, 40, 40, 255)
    out = compose_cpu.compose(np.zeros((2, 8, 8), np.float32), gray=page, hints=hints).astype(int)
    tone = out[150:250, 330:450]
    # the dots are gone: one even color over the toned area, red, not a red and black checker
    assert tone.std(axis=(0, 1)).max() < 12, tone.std(axis=(0, 1))
    assert tone[..., 0].mean() > tone[..., 1].mean() + 60
    # the eye is a drawn mark (bigger than a tone dot): it stays dark; the box's outline stays ink
    assert out[282:287, 282:287].max() < 80
    assert out[101:104, 300].max() < 60
    # without a known color the page keeps its tone as drawn (the model's colors follow the page)
    plain = compose_cpu.compose(np.zeros((2, 8, 8), np.float32), gray=page).astype(int)
    assert plain[150:250, 330:450].std(axis=(0, 1)).max() > 60


def test_a_hint_map_gives_hue_and_chroma_and_the_page_keeps_its_lightness():
    page = np.full((600, 600), 255, np.uint8)
    page[100:500, 100:500] = 0
    page[106:494, 106:494] = 255
    dark_blue = (20, 30, 110)
    full = np.zeros((600, 600, 4), np.uint8)
    full[250:350, 250:350] = (*dark_blue, 255)
    small = np.zeros((60, 60, 4), np.uint8)  # the same hint as a 60x60 map (each pixel a 10x10 block)
    small[25:35, 25:35] = (*dark_blue, 255)
    assert rg.is_hint_map(small.shape[:2], page.shape) and not rg.is_hint_map((400, 400), page.shape)
    z = np.zeros((2, 8, 8), np.float32)
    by_image = compose_cpu.compose(z, gray=page, hints=full)
    by_map = compose_cpu.compose(z, gray=page, hints=small)
    lab_image = rg.srgb8_to_lab(by_image[150:160, 400:410].reshape(-1, 3)).mean(axis=0)
    lab_map = rg.srgb8_to_lab(by_map[150:160, 400:410].reshape(-1, 3)).mean(axis=0)
    hint_lab = rg.srgb8_to_lab(np.array([dark_blue], np.uint8))[0]
    # a full-size hint image is the color itself, its own dark lightness; a hint map is its hue, as light as
    # white paper allows
    assert abs(lab_image[0] - hint_lab[0]) < 3
    assert lab_map[0] > hint_lab[0] + 15
    hue = lambda lab: np.degrees(np.arctan2(lab[2], lab[1]))  # noqa: E731
    assert abs(hue(lab_map) - hue(hint_lab)) < 10 and np.hypot(*lab_map[1:]) > 30
    # the paper outside the box takes nothing
    assert (np.ptp(by_map[20:60, 20:60].astype(int), axis=-1) < 4).all()


def hair_page(flat: bool = False) -> tuple[np.ndarray, dict]:
    """A panel with toned hair cut into four strands by lines, a darker tone (a hat) touching it, and a
    white face under it. ``flat``: the hair in a flat gray of the tone's mean instead of its dots."""
    img = Image.new("L", (W, H), 255)
    d = ImageDraw.Draw(img)
    d.rectangle((60, 60, W - 60, 1000), outline=0, width=6)
    if flat:
        d.rectangle((200, 200, 1000, 520), fill=225)
    for y in range(200, 520, 6) if not flat else ():  # a light dot screentone over the hair (mean gray ~225)
        for x in range(200 + (y // 6) % 2 * 3, 1000, 6):
            d.ellipse((x - 1, y - 1, x + 1, y + 1), fill=0)
    d.rectangle((200, 100, 1000, 200), fill=90)  # the hat: a darker flat tone
    d.line((200, 200, 1000, 200), fill=0, width=5)
    for x in (400, 600, 800):  # strand lines
        d.line((x, 200, x, 520), fill=0, width=4)
    d.line((200, 520, 1000, 520), fill=0, width=5)
    d.line((200, 100, 200, 900), fill=0, width=5)
    d.line((1000, 100, 1000, 900), fill=0, width=5)
    d.line((200, 900, 1000, 900), fill=0, width=5)
    places = {"strand1": (300, 360), "strand2": (500, 360), "strand3": (700, 360), "strand4": (900, 360),
              "hat": (600, 150), "face": (600, 700), "outside": (1100, 500)}
    return np.asarray(img), places


def test_a_hint_on_one_strand_of_toned_hair_colors_every_strand_and_not_the_hat_or_the_face():
    page, places = hair_page()
    hints = hint_dot(places["strand1"], (200, 60, 40))
    out = compose_cpu.compose(np.zeros((2, 40, 30), np.float32), gray=page, hints=hints)
    mask = colored(out, page)

    def share(name, r=30):
        x, y = places[name]
        return mask[y - r:y + r, x - r:x + r].mean()

    assert all(share(s) > 0.5 for s in ("strand1", "strand2", "strand3", "strand4")), \
        [share(s) for s in ("strand1", "strand2", "strand3", "strand4")]
    assert share("hat") < 0.05 and share("face") < 0.01 and share("outside") < 0.01


def test_a_hint_in_white_paper_never_spreads_to_the_white_regions_beside_it():
    from models.paint import spread

    page, places = hair_page()
    regions = rg.segment_regions(page)
    f = regions.factor
    x, y = places["face"]
    face = int(regions.labels[y // f, x // f])
    ids, lab, added = spread.spread_hints(regions, page[::f, ::f], np.array([face]),
                                          np.array([[60.0, 20.0, 20.0]], np.float32))
    assert added == 0 and ids.tolist() == [face]
    x, y = places["strand1"]
    strand = int(regions.labels[y // f, x // f])
    ids, lab, added = spread.spread_hints(regions, page[::f, ::f], np.array([strand]),
                                          np.array([[60.0, 20.0, 20.0]], np.float32))
    assert added == 3 and np.all(lab == lab[0])


def noise_tone_page(density: float = 0.35, seed: int = 0) -> np.ndarray:
    """A panel under a coarse noise tone (2x2 ink specks, ``density`` of them), which the segmentation breaks
    into hundreds of small regions, with a white disc in its middle."""
    rng = np.random.default_rng(seed)
    img = Image.new("L", (W, H), 255)
    ImageDraw.Draw(img).rectangle((60, 60, W - 60, 900), outline=0, width=6)
    page = np.asarray(img).copy()
    specks = np.repeat(np.repeat(rng.random((410, 530)) < density, 2, 0), 2, 1)
    page[70:890, 70:1130][specks] = 0
    img = Image.fromarray(page)
    ImageDraw.Draw(img).ellipse((450, 300, 750, 600), fill=255, outline=0, width=6)
    return np.asarray(img)


def test_a_hint_on_a_noise_tone_broken_into_many_regions_colors_the_tone_and_not_the_disc_in_it():
    page = noise_tone_page()
    assert rg.segment_regions(page).count > 100  # the tone is many regions
    out = compose_cpu.compose(np.zeros((2, 40, 30), np.float32), gray=page, hints=hint_dot((200, 200), (230, 80, 180)))
    mask = colored(out, page)
    assert mask[80:890, 80:1120].mean() > 0.35  # most of the tone's paper (the specks are a third of it)
    assert mask[380:520, 530:670].mean() == 0 and mask[950:].mean() == 0


def test_a_hint_map_with_two_colors_in_one_region_lays_each_on_its_own_side():
    # One gray-shaded region (no line between a figure's two colors) and a 64x64 hint map with a red
    # scribble on its left and a blue one on its right: each side takes its own color, not their median.
    img = Image.new("L", (W, H), 255)
    d = ImageDraw.Draw(img)
    d.rectangle((60, 60, W - 60, 900), outline=0, width=6)
    d.rectangle((66, 66, W - 66, 894), fill=200)
    page = np.asarray(img)
    hint_map = np.zeros((64, 64, 4), np.uint8)
    hint_map[10:22, 8:14] = (220, 40, 40, 255)
    hint_map[10:22, 50:56] = (40, 60, 220, 255)
    out = compose_cpu.compose(np.zeros((2, 40, 30), np.float32), gray=page, hints=hint_map).astype(int)
    left, right = out[300:600, 150:400].reshape(-1, 3).mean(0), out[300:600, 800:1050].reshape(-1, 3).mean(0)
    assert left[0] > left[2] + 20 and right[2] > right[0] + 20, (left, right)
    assert np.all(out[950:] == 255)  # the margin below the panel stays paper
    whole = fills.regions_for_hints(rg.segment_regions(page), np.dstack([np.asarray(Image.fromarray(page).convert("RGB")),
                                                                       np.full(page.shape, 255, np.uint8)]))[0]
    assert whole.count == rg.segment_regions(page).count  # a page-size hint image never splits a region


def test_a_reference_color_spreads_across_a_screentone_and_not_across_a_flat_gray():
    """A reference's match (``hinted`` False) spreads to the strands of dot-toned hair as a hint does; on the
    same hair drawn in a flat gray of about the same mean (a gray page, where one gray is many colors) only a
    hint spreads."""
    from models.paint import spread

    page, places = hair_page()
    for img, spreads in ((page, True), (hair_page(flat=True)[0], False)):
        regions = rg.segment_regions(img)
        f = regions.factor
        x, y = places["strand1"]
        strand = int(regions.labels[y // f, x // f])
        color = np.array([[60.0, 20.0, 20.0]], np.float32)
        _, _, from_reference = spread.spread_hints(regions, img[::f, ::f], np.array([strand]), color,
                                                   np.array([False]))
        _, _, from_hint = spread.spread_hints(regions, img[::f, ::f], np.array([strand]), color, np.array([True]))
        assert from_hint == 3, (spreads, from_hint)
        assert from_reference == (3 if spreads else 0)
