"""Reference pages (``--reference``): a colored page's region colors carry to the B/W pages of the same
figure. The CLI is run as users run it, in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from models.cie import srgb8_to_lab
from models.paint import references as refs
from models.paint import regions as rg

SKIN, SHIRT, PANTS, HAIR = (240, 200, 160), (60, 90, 200), (40, 140, 60), (200, 60, 40)


def figure(color: bool, *, size=(600, 800), scale=1.0, dx=0, dy=0, arms_up=False) -> Image.Image:
    """A simple inked figure: hair, head, shirt, two arms, pants; flat colors or white (line art)."""
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    cx, top = size[0] // 2 + dx, 80 + dy

    def s(v):
        return int(round(v * scale))

    def fill(c):
        return c if color else (255, 255, 255)

    # Drawn parts, not boxes: an axis-aligned rectangle running straight along its box on two sides is
    # taken for a piece of a panel's background (models.paint.references) and never matched.
    ink = dict(outline=(0, 0, 0), width=max(3, s(5)))
    d.chord([cx - s(75), top - s(10), cx + s(75), top + s(110)], 180, 360, fill=fill(HAIR), **ink)
    d.ellipse([cx - s(60), top + s(30), cx + s(60), top + s(170)], fill=fill(SKIN), **ink)
    d.polygon([(cx - s(70), top + s(180)), (cx + s(70), top + s(180)), (cx + s(95), top + s(380)),
               (cx - s(95), top + s(380))], fill=fill(SHIRT), **ink)
    ay = top + (s(60) if arms_up else s(190))
    d.polygon([(cx - s(105), ay), (cx - s(80), ay + s(10)), (cx - s(110), ay + s(170)), (cx - s(150), ay + s(160))],
              fill=fill(SKIN), **ink)
    d.polygon([(cx + s(105), ay), (cx + s(80), ay + s(10)), (cx + s(110), ay + s(170)), (cx + s(150), ay + s(160))],
              fill=fill(SKIN), **ink)
    d.polygon([(cx - s(90), top + s(390)), (cx + s(90), top + s(390)), (cx + s(70), top + s(600)),
               (cx - s(70), top + s(600))], fill=fill(PANTS), **ink)
    return img


def gray(img: Image.Image) -> Image.Image:
    return img.convert("L")


def _lab(rgb):
    return srgb8_to_lab(np.array(rgb, np.uint8))


def _share_close(out: np.ndarray, truth: Image.Image, color, tol=12.0) -> float:
    """Share of the pixels that are ``color`` in ``truth`` whose output lies within ``tol`` (CIE76) of it."""
    t = np.asarray(truth)
    mask = (np.abs(t.astype(int) - np.array(color)).sum(axis=2) < 6)
    lab = srgb8_to_lab(out[mask])
    return float((np.sqrt(((lab - _lab(color)) ** 2).sum(axis=1)) < tol).mean())


def test_regions_of_a_moved_and_scaled_figure_take_their_reference_colors():
    reference = refs.prepare_reference(np.asarray(figure(True)))
    target = gray(figure(False, scale=0.8, dx=40, dy=30))
    page = np.asarray(target)
    regions = rg.segment_regions(page)
    m = refs.match(regions, page[::regions.factor, ::regions.factor], [reference])
    assert len(m.ids) >= 4
    from models.paint import compose_cpu
    out = compose_cpu.compose(np.zeros((2, 8, 8), np.float32), gray=page, hints=rg.Known(m.ids, m.lab),
                              regions=regions)
    truth = figure(True, scale=0.8, dx=40, dy=30)
    for c in (SKIN, SHIRT, PANTS, HAIR):
        assert _share_close(out, truth, c) > 0.7, c


def test_a_gray_page_keeps_its_own_lightness_under_reference_colors():
    reference = refs.prepare_reference(np.asarray(figure(True)))
    page = np.asarray(gray(figure(True, scale=0.9)))
    regions = rg.segment_regions(page)
    m = refs.match(regions, page[::regions.factor, ::regions.factor], [reference])
    assert len(m.ids)
    levels = rg.paper_levels(regions, page[::regions.factor, ::regions.factor], m.ids)
    toned = levels < 0.85 * 255
    assert toned.any()
    # a toned region takes the reference's hue and chroma only (no lightness of its own) ...
    assert np.isnan(m.lab[toned, 0]).all() and not np.isnan(m.lab[~toned, 0]).any()
    from models.paint import compose_cpu, luma
    out = compose_cpu.compose(np.zeros((2, 8, 8), np.float32), gray=page, hints=rg.Known(m.ids, m.lab),
                              regions=regions)
    # ... and its paper keeps the page's tone: the page's gray is the luma of the color laid there (a flat gray
    # region is shaded, compose_cpu.shaded_regions), darkened only as far as the color needs
    from models.cie import luma as luma_of
    f = regions.factor
    small = out[::f, ::f]
    lab_out = rg.srgb8_to_lab(small.reshape(-1, 3)).reshape(regions.labels.shape + (3,))
    top = compose_cpu.fill_lightness_exact(m.lab[toned, 1:].T.copy())
    fy = luma.luma_fy_table(m.lab[toned, 1:])
    for i, (region, level, lmax) in enumerate(zip(m.ids[toned], levels[toned], top)):
        core = (regions.labels == region) & regions.core
        own = float(116.0 * fy[i, level] - 16.0)
        want = min(own, float(lmax))
        assert abs(float(np.median(lab_out[..., 0][core])) - want) < 2.5, (region, level)
        if own < lmax - 1.0:
            assert abs(float(np.median(luma_of(small[core]))) - level) <= 2.0, (region, level)


def test_hints_win_over_references_region_by_region():
    page = np.asarray(gray(figure(False)))
    regions = rg.segment_regions(page)
    f = regions.factor
    reference = refs.prepare_reference(np.asarray(figure(True)))
    m = refs.match(regions, page[::f, ::f], [reference])
    hint = np.zeros(page.shape + (4,), np.uint8)
    hy, hx = 80 + 300, 300  # the middle of the shirt
    hint[hy - 3:hy + 3, hx - 3:hx + 3] = (250, 0, 250, 255)
    known = rg.known_colors(regions, hint, (m.ids, m.lab))
    shirt = regions.labels[hy // f, hx // f]
    row = list(known.ids).index(shirt)
    np.testing.assert_allclose(known.lab[row], _lab((250, 0, 250)), atol=0.5)
    assert known.from_hints == 1 and known.from_references == len(m.ids) - (shirt in set(m.ids.tolist()))


def test_no_reference_or_an_empty_one_changes_nothing():
    page = np.asarray(gray(figure(False)))
    regions = rg.segment_regions(page)
    m = refs.match(regions, page[::regions.factor, ::regions.factor], [])
    assert len(m.ids) == 0 and m.tried > 0


def test_the_reference_that_fits_a_page_is_chosen_among_several():
    # Another figure (other proportions, other colors) beside the right one.
    other = Image.new("RGB", (600, 800), "white")
    d = ImageDraw.Draw(other)
    for k, c in enumerate([(250, 240, 0), (0, 200, 200), (120, 0, 160)]):
        d.ellipse([100 + 40 * k, 100 + 200 * k, 500 - 40 * k, 260 + 200 * k], fill=c, outline=(0, 0, 0), width=5)
    references = [refs.prepare_reference(np.asarray(other)), refs.prepare_reference(np.asarray(figure(True)))]
    page = np.asarray(gray(figure(False, scale=0.9)))
    regions = rg.segment_regions(page)
    m = refs.match(regions, page[::regions.factor, ::regions.factor], references)
    right = np.concatenate([references[1].lab])
    # Every color taken comes from the right reference.
    for lab in m.lab:
        assert np.sqrt(((right - lab) ** 2).sum(axis=1)).min() < 1.0


def paneled(color: bool, dx: int = 0) -> Image.Image:
    """The figure inside a panel's frame, with a half disc against the frame's right side (a bush, a
    cushion: a piece of the panel's background), purple on the color page."""
    img = figure(color, scale=0.8, dx=dx, dy=40)
    d = ImageDraw.Draw(img)
    d.rectangle([20, 20, 579, 779], outline=(0, 0, 0), width=6)
    d.ellipse([470, 520, 690, 740], fill=(110, 40, 150) if color else (255, 255, 255), outline=(0, 0, 0), width=5)
    d.rectangle([580, 0, 599, 799], fill=(255, 255, 255))  # the gutter beyond the frame stays paper
    d.line([(576, 20), (576, 779)], fill=(0, 0, 0), width=6)
    return img


def test_a_piece_of_a_panels_background_along_its_frame_is_neither_taken_nor_matched():
    reference = refs.prepare_reference(np.asarray(paneled(True)))
    page = np.asarray(gray(paneled(False, dx=-30)))
    regions = rg.segment_regions(page)
    f = regions.factor
    disc = regions.labels[630 // f, 545 // f]
    shirt = regions.labels[(120 + 280) // f, (300 - 30) // f]
    assert disc > 0 and shirt > 0 and disc != shirt
    tokens = refs.describe(regions, page[::f, ::f])
    background = dict(zip(tokens.ids.tolist(), tokens.backgrounds().tolist()))
    assert background[disc] and not background[shirt]
    # The reference's purple half disc is no color to take (a rival of its other tokens only): nothing on
    # the page turns purple ...
    purple = _lab((110, 40, 150))
    takable = reference.lab[~reference.tokens.backgrounds()]
    assert np.sqrt(((takable - purple) ** 2).sum(axis=1)).min() > 10.0
    m = refs.match(regions, page[::f, ::f], [reference])
    assert disc not in set(m.ids.tolist())
    # ... and the figure's parts still take theirs.
    assert shirt in set(m.ids.tolist())


def test_a_panels_color_seen_through_a_gap_in_the_art_is_no_color_to_take():
    """On the color page the panel is purple, and so is what shows inside a hoop; the B/W page's hoop is
    white inside. The hoop's inside is no figure's part to carry over: it stays uncolored."""
    purple = (110, 40, 150)
    color = paneled(True)
    d = ImageDraw.Draw(color)
    ImageDraw.floodfill(color, (40, 400), purple)                     # the panel's background
    d.ellipse([50, 560, 170, 700], fill=purple, outline=(0, 0, 0), width=6)
    d.ellipse([70, 580, 150, 680], fill=purple, outline=(0, 0, 0), width=6)   # a hoop, the panel inside it
    line = paneled(False, dx=-30)
    d = ImageDraw.Draw(line)
    d.ellipse([50, 560, 170, 700], fill=(255, 255, 255), outline=(0, 0, 0), width=6)
    d.ellipse([70, 580, 150, 680], fill=(255, 255, 255), outline=(0, 0, 0), width=6)
    reference = refs.prepare_reference(np.asarray(color))
    page = np.asarray(gray(line))
    regions = rg.segment_regions(page)
    f = regions.factor
    hole = regions.labels[630 // f, 110 // f]
    shirt = regions.labels[(120 + 280) // f, (300 - 30) // f]
    m = refs.match(regions, page[::f, ::f], [reference])
    taken = dict(zip(m.ids.tolist(), m.lab))
    assert hole not in taken or np.sqrt(((taken[hole] - _lab(purple)) ** 2).sum()) > 10.0
    assert shirt in taken


def test_a_color_page_of_two_characters_gives_a_page_figure_only_its_own_characters_colors():
    """A color page showing two characters (the other one in another pose and other colors): the page's one
    figure takes the right character's colors only (matches into a reference figure that holds little of a
    page figure's matched area are strays, ``FIGURE_SHARE``; on these drawings the margin alone already
    keeps them out, on composed chapters it does not: docs/MODELS.md)."""
    other = {SKIN: (120, 80, 40), SHIRT: (210, 200, 0), PANTS: (150, 0, 150), HAIR: (0, 150, 150)}
    left = np.asarray(figure(True, size=(1200, 800), dx=-300))
    right = np.asarray(figure(True, size=(1200, 800), dx=300, arms_up=True)).copy()
    for mine, theirs in other.items():
        right[(right == mine).all(axis=2)] = theirs
    both = np.where(np.arange(1200)[None, :, None] < 600, left, right).astype(np.uint8)
    reference = refs.prepare_reference(both)
    page = np.asarray(gray(figure(False, size=(1200, 800), scale=0.9, dx=-100, dy=20)))
    regions = rg.segment_regions(page)
    m = refs.match(regions, page[::regions.factor, ::regions.factor], [reference])
    assert len(m.ids) >= 3
    theirs = np.stack([_lab(c) for c in other.values()])
    for lab in m.lab:
        assert np.sqrt(((theirs - lab) ** 2).sum(axis=1)).min() > 10.0, lab


# ------------------------------------------------------------------ the command, in a fresh process
def run(args, cwd):
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "mangacolor_cli", *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=300)


def run_together(*runs, cwd):
    """Runs that share no files started together, each a fresh process (the suite waits for the slowest)."""
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        return list(pool.map(lambda args: run(args, cwd), runs))


@pytest.fixture()
def pages(tmp_path):
    figure(True).save(tmp_path / "ref.png")
    gray(figure(False, scale=0.85, dx=20)).save(tmp_path / "page.png")
    return tmp_path


def _colorfulness(path) -> float:
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(float)
    return float(np.abs(rgb - rgb.mean(axis=2, keepdims=True)).mean())


def test_colorize_with_a_reference_colors_the_page_and_says_how_many_regions(pages):
    plain, r = run_together(["colorize", "page.png", "-o", "plain.png"],
                            ["colorize", "page.png", "--reference", "ref.png", "-o", "out.png", "--json"], cwd=pages)
    assert plain.returncode == 0, plain.stderr
    assert r.returncode == 0, r.stderr
    record = json.loads(r.stdout)["pages"][0]
    assert record["status"] == "colored" and record["reference_regions"] >= 4
    assert _colorfulness(pages / "out.png") > 3 * _colorfulness(pages / "plain.png") + 1
    out = np.asarray(Image.open(pages / "out.png").convert("RGB"))
    assert _share_close(out, figure(True, scale=0.85, dx=20), SHIRT) > 0.8
    # Another reference is another setting: the rerun colors the page again.
    figure(True).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(pages / "ref2.png")
    again = run(["colorize", "page.png", "--reference", "ref2.png", "-o", "out.png", "--json"], pages)
    assert json.loads(again.stdout)["colored"] == 1


def test_bad_references_give_one_line_each_and_the_page_is_still_colored(pages):
    (pages / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    gray(figure(False)).save(pages / "bw_ref.png")
    Image.new("RGB", (20, 20), (255, 0, 0)).save(pages / "tiny.png")
    Image.new("RGB", (600, 800), (30, 200, 90)).save(pages / "flat.png")  # unrelated: no regions to match
    with zipfile.ZipFile(pages / "gray.cbz", "w") as z:
        buf = pages / "g.png"
        gray(figure(False)).save(buf)
        z.write(buf, "001.png")
    before = {p.name: p.read_bytes() for p in pages.iterdir()}
    r = run(["colorize", "page.png", "-o", "out.png", "--reference", "broken.png", "--reference", "bw_ref.png",
             "--reference", "tiny.png", "--reference", "flat.png", "--reference", "gray.cbz"], pages)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning: --reference")]
    for name in ("broken.png", "bw_ref.png", "tiny.png", "gray.cbz"):
        assert sum(name in w for w in warnings) == 1, (name, r.stderr)
    assert (pages / "out.png").exists()
    assert all((pages / n).read_bytes() == b for n, b in before.items())  # no input changed


def test_a_missing_reference_is_a_usage_error_before_any_work(pages):
    r = run(["colorize", "page.png", "-o", "out.png", "--reference", "nothere.png"], pages)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == "error: --reference nothere.png: no such file or folder"
    assert not (pages / "out.png").exists()


def test_a_chapter_colors_its_black_and_white_pages_from_its_own_color_page(pages):
    with zipfile.ZipFile(pages / "chapter.cbz", "w") as z:
        for name, img in [("001.png", figure(True)), ("002.png", gray(figure(False, scale=0.8))),
                          ("003.png", gray(figure(False, scale=0.9, dx=-30, arms_up=True)))]:
            img.save(pages / "tmp.png")
            z.write(pages / "tmp.png", name)
    for extra in ([], ["--reference", "chapter.cbz"]):  # by default, and named as its own reference
        r = run(["colorize", "chapter.cbz", "--json", "--overwrite", *extra], pages)
        assert r.returncode == 0, r.stderr
        summary = json.loads(r.stdout)
        assert summary["colored"] == 2 and summary["already_in_color"] == 1
        records = {p["input"].split(":")[-1]: p for p in summary["pages"]}
        assert all(records[n]["reference_regions"] >= 4 for n in ("002.png", "003.png")), records
    r = run(["colorize", "chapter.cbz", "--json", "--overwrite", "--no-chapter-references"], pages)
    records = {p["input"].split(":")[-1]: p for p in json.loads(r.stdout)["pages"]}
    assert all("reference_regions" not in records[n] for n in ("002.png", "003.png"))


def test_python_api_takes_references_as_images():
    from mangacolor_cli import Colorizer
    c = Colorizer()
    out = c.colorize(gray(figure(False, scale=0.85)), references=[figure(True)])
    assert isinstance(out, Image.Image)
    assert _share_close(np.asarray(out), figure(True, scale=0.85), SKIN) > 0.8


def test_eval_scores_references_beside_the_run_without_with_segment_accuracy(tmp_path):
    for sub in ("bw", "color"):
        (tmp_path / "set" / sub).mkdir(parents=True)
    for i, (scale, dx) in enumerate([(0.85, 20), (0.8, -30)]):
        figure(True, scale=scale, dx=dx).save(tmp_path / "set" / "color" / f"{i:03d}.png")
        gray(figure(False, scale=scale, dx=dx)).save(tmp_path / "set" / "bw" / f"{i:03d}.png")
    figure(True).save(tmp_path / "ref.png")
    model = Path(__file__).resolve().parents[1] / "mangacolor_cli" / "weights" / "default.onnx"
    r, bad = run_together(["eval", "-m", str(model), "--data", "set", "--reference", "ref.png", "--json"],
                          ["eval", "--pred", "set/color", "--target", "set/color", "--reference", "ref.png"],
                          cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)["systems"]
    plain, referenced, baseline = summary["default"], summary["default + references"], summary["gray baseline"]
    assert referenced["ciede2000"] < 0.5 * baseline["ciede2000"]
    assert referenced["segment_accuracy"] > plain["segment_accuracy"] + 0.5
    assert 0.0 <= baseline["pixel_accuracy"] <= 1.0
    assert bad.returncode == 2 and "--reference" in bad.stderr


@pytest.mark.parametrize("fill", ["flat", "soft"])
def test_reference_colors_compose_the_same_in_torch_as_in_numpy(fill):
    import torch

    from models.cie import gray_to_l
    from models.paint import compose, compose_cpu
    page = np.asarray(gray(figure(False, scale=0.85)))
    regions = rg.segment_regions(page)
    m = refs.match(regions, page[::regions.factor, ::regions.factor], [refs.prepare_reference(np.asarray(figure(True)))])
    known = rg.Known(m.ids, m.lab)
    ab = np.zeros((1, 2, 40, 30), np.float32)
    cpu = compose_cpu.compose(ab, gray=page, hints=known, regions=regions, fill=fill)
    L = torch.from_numpy(gray_to_l(page / 255.0))[None, None]
    gpu_path = compose.compose(L, torch.from_numpy(ab), gray=page, hints=known, regions=regions, fill=fill).numpy()
    assert np.abs(cpu.astype(int) - gpu_path.astype(int)).max() <= 1


def test_a_match_whose_matched_neighbours_all_disagree_is_dropped_and_a_lone_one_stays():
    """Neighbour agreement (``refs._agreed``): page rows 0-1-2 in a row, row 3 alone; the reference's tokens
    0 and 1 are neighbours, token 2 borders neither, and all three differ in color. Rows 0 and 1 match tokens
    0 and 1 (they agree), row 2 matches token 2 beside row 1 (no matched neighbour of it agrees), row 3
    matches token 2 with no matched neighbour at all."""
    def pairs(*edges):
        return np.array([e for a, b in edges for e in ((a, b), (b, a))], np.int64).reshape(-1, 2)

    reference = refs.Reference(tokens=refs.Tokens(ids=np.arange(1, 4), features=np.zeros((3, 8), np.float32),
                                                  tone=np.ones(3, np.float32), adjacent=pairs((0, 1))),
                               lab=np.array([[50, 40, 0], [50, -40, 0], [50, 0, 40]], np.float32))
    ok = np.ones(4, bool)
    best = np.array([0, 1, 2, 2])
    kept = refs._agreed(ok, best, pairs((0, 1), (1, 2)), [reference])
    assert kept.tolist() == [True, True, False, True]
    # A lone match on a thin strip (between speed lines) goes; one with matched neighbours is judged by them.
    strip = np.array([True, False, False, True])
    assert refs._agreed(ok, best, pairs((0, 1), (1, 2)), [reference], strip).tolist() == [True, True, False, False]
    # With row 2 unmatched, nothing disagrees with anything.
    ok[2] = False
    assert refs._agreed(ok, best, pairs((0, 1), (1, 2)), [reference]).tolist() == [True, True, False, True]
    # Two references: the second's token rows come after the first's, and its own neighbours count.
    second = refs.Reference(tokens=refs.Tokens(ids=np.arange(1, 3), features=np.zeros((2, 8), np.float32),
                                               tone=np.ones(2, np.float32), adjacent=pairs((0, 1))),
                            lab=np.array([[50, 0, -40], [70, 30, 30]], np.float32))
    kept = refs._agreed(np.ones(2, bool), np.array([3, 4]), pairs((0, 1)), [reference, second])
    assert kept.tolist() == [True, True]
    kept = refs._agreed(np.ones(2, bool), np.array([2, 4]), pairs((0, 1)), [reference, second])
    assert kept.tolist() == [False, False]
    # Tokens of about one color agree wherever they lie (one color that lines cut into several regions).
    second.lab[1] = reference.lab[2] + 5.0
    assert refs._agreed(np.ones(2, bool), np.array([2, 4]), pairs((0, 1)), [reference, second]).tolist() == [True, True]


def test_a_pages_tokens_list_their_neighbours_both_ways():
    """``Tokens.adjacent``: the hair's token borders the face's (across the line between them), each pair in
    both orders, and only tokens' rows."""
    page = np.asarray(gray(figure(False)))
    regions = rg.segment_regions(page)
    f = regions.factor
    tokens = refs.describe(regions, page[::f, ::f])
    pairs = {tuple(p) for p in tokens.adjacent.tolist()}
    assert pairs and all((b, a) in pairs for a, b in pairs)
    assert tokens.adjacent.min() >= 0 and tokens.adjacent.max() < len(tokens.ids)
    truth = np.asarray(figure(True))[::f, ::f]

    def row_of(color):
        at = np.all(truth == color, axis=2) & (regions.labels > 0)
        label = np.bincount(regions.labels[at]).argmax()
        return int(np.flatnonzero(tokens.ids == label)[0])

    assert (row_of(HAIR), row_of(SKIN)) in pairs
