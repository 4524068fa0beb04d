"""The data scripts: page composer, paired rendering, split by source drawing, sample chapter."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from scripts import fetch_data, render_drawings
from trainer.pages import composer as make_pages

W, H = 128, 180


def _tiny_drawing(dir_: Path, name: str, rgb: tuple[int, int, int]) -> dict:
    """A 40x48 RGBA color drawing (filled ellipse, black outline) and its line art, as PNG files."""
    color = Image.new("RGBA", (40, 48), (0, 0, 0, 0))
    line = Image.new("RGBA", (40, 48), (0, 0, 0, 0))
    ImageDraw.Draw(color).ellipse((2, 2, 37, 45), fill=(*rgb, 255), outline=(0, 0, 0, 255), width=3)
    ImageDraw.Draw(line).ellipse((2, 2, 37, 45), outline=(0, 0, 0, 255), width=3)
    color_path, line_path = dir_ / f"{name}_color.png", dir_ / f"{name}_line.png"
    color.save(color_path)
    line.save(line_path)
    return {"source": "test", "key": name, "category": "x", "color": str(color_path), "line": str(line_path)}


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> list[dict]:
    """Eight tiny paired drawings, five in train and three in val."""
    d = tmp_path_factory.mktemp("drawings")
    colors = [(220, 40, 40), (40, 160, 60), (40, 80, 220), (240, 200, 30),
              (160, 60, 200), (250, 140, 40), (30, 180, 190), (120, 70, 30)]
    recs = [_tiny_drawing(d, f"d{i}", c) for i, c in enumerate(colors)]
    for i, r in enumerate(recs):
        r["split"] = "val" if i >= 5 else "train"
    return recs


def _plan(records, seed: int, pool: str = "paired_val") -> make_pages.PagePlan:
    cache = make_pages.DrawingCache()
    plan = make_pages.plan_page(make_pages.split_drawings(records)[pool], make_pages.page_rng(seed, "t", 0),
                                W, H, cache.size)
    plan.sfx = None  # sound effects may cross panel borders; these tests look at the borders
    return plan


def test_layout_has_3_to_6_disjoint_panels_inside_the_margin():
    for seed in range(40):
        rects = make_pages.plan_layout(W, H, np.random.default_rng(seed))
        assert 3 <= len(rects) <= 6
        for i, (x0, y0, x1, y1) in enumerate(rects):
            assert 0 < x0 < x1 < W and 0 < y0 < y1 < H
            for (a0, b0, a1, b1) in rects[i + 1:]:
                assert x1 <= a0 or a1 <= x0 or y1 <= b0 or b1 <= y0, "panels overlap"


def test_color_page_has_its_size_white_margin_and_inked_panel_borders(records):
    plan = _plan(records, seed=1)
    page = np.asarray(make_pages.render_page(plan, "color"))
    assert page.shape == (H, W, 3)
    assert (page[0] == 255).all() and (page[:, 0] == 255).all(), "page margin is not white paper"
    for x0, y0, x1, y1 in (p.rect for p in plan.panels):
        assert (page[y0, x0:x1] < 40).all() and (page[y1 - 1, x0:x1] < 40).all()
        assert (page[y0:y1, x0] < 40).all() and (page[y0:y1, x1 - 1] < 40).all()


def test_color_page_holds_color_and_bw_page_holds_only_gray(records):
    plan = _plan(records, seed=2)
    color = np.asarray(make_pages.render_page(plan, "color")).astype(int)
    bw = make_pages.render_page(plan, "bw")
    assert bw.mode == "L" and bw.size == (W, H)
    assert (color.max(axis=2) - color.min(axis=2)).max() > 60, "color page has no color"


def test_paired_bw_and_color_pages_share_their_layout(records):
    for seed in range(5):
        plan = _plan(records, seed)
        color = np.asarray(make_pages.render_page(plan, "color"))
        bw = np.asarray(make_pages.render_page(plan, "bw"))
        inside = np.zeros((H, W), bool)
        border = np.zeros((H, W), bool)
        for x0, y0, x1, y1 in (p.rect for p in plan.panels):
            inside[y0:y1, x0:x1] = True
            border[y0:y1, x0:x1] = True
            border[y0 + plan.border:y1 - plan.border, x0 + plan.border:x1 - plan.border] = False
        assert (bw[border] < 40).all() and (color[border] < 40).all(), "borders differ"
        assert (bw[~inside] == 255).all() and (color[~inside] == 255).all(), "gutters/margins differ"


def test_pages_only_use_drawings_of_their_split(records):
    pools = make_pages.split_drawings(records)
    train_keys = {d.key for d in pools["train"]}
    val_keys = {d.key for d in pools["val"]}
    assert train_keys and val_keys and not train_keys & val_keys
    for seed in range(10):
        assert {d.key for d in _plan(records, seed, "val").drawings} <= val_keys
        assert {d.key for d in _plan(records, seed, "train").drawings} <= train_keys


def test_split_by_source_drawing_is_deterministic_and_near_the_asked_fraction():
    keys = [f"k{i}" for i in range(3000)]
    first = [fetch_data.split_of("openmoji", k, 0, 0.1) for k in keys]
    assert first == [fetch_data.split_of("openmoji", k, 0, 0.1) for k in keys]
    assert 0.08 < first.count("val") / len(keys) < 0.12
    assert first != [fetch_data.split_of("openmoji", k, 1, 0.1) for k in keys], "seed is ignored"


def test_screentone_ink_follows_density():
    for density in (0.0, 0.3, 0.6):
        ink = make_pages.screentone(np.full((64, 64), density, np.float32), period=6.0)
        assert abs(float(ink.mean()) - density) < 0.08


def test_drawing_filters_flag_gray_drawings_and_duplicates():
    gray = np.zeros((32, 32, 4), np.uint8)
    gray[4:28, 4:28] = (128, 128, 128, 255)
    red = gray.copy()
    red[4:28, 4:28, :3] = (220, 30, 30)
    assert render_drawings.drawing_stats(gray)["colored"] < 0.05
    assert render_drawings.drawing_stats(red)["colored"] > 0.9
    stats = render_drawings.drawing_stats(red)
    recs = [{"source": "s", "key": "a", "stats": stats, "line_hash": "0x1"},
            {"source": "s", "key": "b", "stats": {**stats, "color_hash": "other"}, "line_hash": "0x1"}]
    fetch_data.dedupe(recs)
    assert "dropped" not in recs[0] and recs[1]["dropped"] == "duplicate"


def test_white_backdrop_becomes_transparent_but_white_inside_a_drawing_stays():
    img = np.full((20, 20, 4), 255, np.uint8)
    img[5:15, 5:15, :3] = 0
    img[8:12, 8:12, :3] = 255  # white enclosed by ink: part of the drawing
    out = render_drawings.clear_white_backdrop(img)
    assert out[0, 0, 3] == 0 and out[10, 10, 3] == 255 and out[6, 6, 3] == 255


def test_corpus_pages_are_written_per_split_with_paired_bw_and_color(records, tmp_path):
    counts = make_pages.build_corpus_pages(records, tmp_path, size=(64, 90), train_pages=2, val_pages=1,
                                           paired_pages=2, jobs=1, log=lambda m: None)
    assert counts["train"] == 2 and counts["val"] == 1 and counts["paired_val"] == 2
    bw, color = sorted((tmp_path / "paired_val" / "bw").glob("*.png")), sorted((tmp_path / "paired_val" / "color").glob("*.png"))
    assert [p.name for p in bw] == [p.name for p in color]
    assert Image.open(bw[0]).mode == "L" and Image.open(color[0]).mode == "RGB"
    assert Image.open(tmp_path / "train" / "color" / "00000.png").size == (64, 90)


def test_sample_chapter_is_a_cbz_of_gray_jpegs_with_comicinfo(records, tmp_path):
    drawings = make_pages.split_drawings(records)["paired_val"]
    out = tmp_path / "chapter.cbz"
    make_pages.build_sample_chapter(drawings, out, pages=2, size=(120, 170))
    with zipfile.ZipFile(out) as z:
        assert z.namelist() == ["001.jpg", "002.jpg", "ComicInfo.xml"]
        info = z.read("ComicInfo.xml").decode()
        assert "<PageCount>2</PageCount>" in info and "CC BY-SA 4.0" in info
        with z.open("001.jpg") as f:
            page = Image.open(f)
            assert page.mode == "L" and page.size == (120, 170)
