"""The exact-pair sources of the data build (comicgen figures, DiceBear faces), on tiny inputs.

No network and no npm: the comicgen package and the DiceBear schema are faked by hand.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from scripts import fetch_data, pair_sources

SVG = "{http://www.w3.org/2000/svg}"

# A head with a mask named "a", and a body that also names its mask "a" (as comicgen's parts do).
EMOTION = ('<?xml version="1.0" encoding="utf-8"?>\n<!-- Generator: test -->\n'
           '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 50 60"><defs>'
           '<mask id="a" maskUnits="userSpaceOnUse"><rect x="0" y="0" width="50" height="30" fill="#fff"/>'
           '</mask></defs><circle cx="25" cy="12" r="8" fill="#f9e6c8" mask="url(#a)"/></svg>')
POSE = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'viewBox="0 0 50 60"><defs><mask id="a"><rect x="0" y="20" width="50" height="40" fill="#fff"/>'
        '</mask><path id="b" d="M20,20h10v35h-10z"/></defs>'
        '<use xlink:href="#b" fill="#bcd1ec" mask="url( #a )"/></svg>')


def test_compose_figure_nests_emotion_under_pose_with_their_own_ids():
    svg = pair_sources.compose_figure(EMOTION, POSE, size=(50, 60))
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("viewBox") == "0 0 50 60"
    wrappers = root.findall(f"{SVG}svg")
    assert len(wrappers) == 2, "one wrapper per part, the emotion first (the pose is drawn on top)"
    for wrapper in wrappers:
        assert (wrapper.get("width"), wrapper.get("height"), wrapper.get("viewBox")) == ("50", "60", "0 0 50 60")
    head, body = (w.find(f"{SVG}svg") for w in wrappers)
    assert head.find(f".//{SVG}circle") is not None and body.find(f".//{SVG}use") is not None
    ids = [el.get("id") for el in root.iter() if el.get("id")]
    assert sorted(ids) == ["e-a", "p-a", "p-b"], "ids are unique in the composed figure"
    assert head.find(f".//{SVG}circle").get("mask") == "url(#e-a)"
    use = body.find(f".//{SVG}use")
    assert use.get("mask") == "url(#p-a)"
    assert use.get("{http://www.w3.org/1999/xlink}href") == "#p-b"
    assert "<?xml" not in svg and "Generator" not in svg


@pytest.mark.skipif(not shutil.which("rsvg-convert"), reason="needs rsvg-convert")
def test_composed_figure_renders_head_and_body(tmp_path):
    path = tmp_path / "fig.svg"
    path.write_text(pair_sources.compose_figure(EMOTION, POSE, size=(50, 60)))
    png = tmp_path / "fig.png"
    subprocess.run(["rsvg-convert", "-o", str(png), str(path)], check=True)
    from PIL import Image

    rgba = np.asarray(Image.open(png).convert("RGBA"))
    assert rgba[12, 25, 3] == 255 and rgba[12, 25, 2] < 220, "head (skin) drawn, through its own mask"
    assert rgba[40, 25, 3] == 255 and rgba[40, 25, 2] > rgba[40, 25, 0], "body (blue shirt) drawn"
    assert rgba[5, 5, 3] == 0, "background stays transparent"


def _fake_comicgen(root: Path) -> None:
    """bw character 'dee' and its color twin 'deenuova'; the twin lacks one emotion, bw one pose."""
    svg = root / "package" / "svg"
    parts = {
        ("dee", "straight", "emotion"): ["smile", "sad", "angry"],
        ("dee", "straight", "pose"): ["wave", "sit"],
        ("deenuova", "straight", "emotion"): ["smile", "sad"],
        ("deenuova", "straight", "pose"): ["wave", "sit", "run"],
        ("dee", "side", "emotion"): ["smile"],
        ("dee", "side", "pose"): ["turn"],
        ("deenuova", "side", "emotion"): ["smile"],
        ("deenuova", "side", "pose"): ["turn"],
    }
    for (char, angle, part), names in parts.items():
        d = svg / char / angle / part
        d.mkdir(parents=True)
        for i, name in enumerate(names):
            fill = "#fff" if char == "dee" else "#f9e6c8"
            d.joinpath(f"{name}.svg").write_text(
                f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 500 600">'
                f'<rect x="{10 * i}" y="0" width="5" height="5" fill="{fill}" id="{angle}-{name}"/></svg>')


def test_comicgen_pairs_only_figures_both_sides_have_grouped_by_pose(tmp_path, monkeypatch):
    _fake_comicgen(tmp_path)
    monkeypatch.setattr(pair_sources, "COMICGEN_CHARACTERS", {"dee": "deenuova"})
    pairs = pair_sources.comicgen_pairs(tmp_path, per_character=None)
    keys = sorted(p.key for p in pairs)
    assert keys == sorted(["dee__straight__wave__smile", "dee__straight__wave__sad",
                           "dee__straight__sit__smile", "dee__straight__sit__sad",
                           "dee__side__turn__smile"])
    for p in pairs:
        assert p.source == "comicgen" and p.category == "dee"
        _, angle, pose, _ = p.key.split("__")
        assert p.group == f"dee/{angle}/{pose}"
        assert Path(p.line_svg).exists() and Path(p.color_svg).exists()
        assert "#fff" in Path(p.line_svg).read_text() and "#f9e6c8" in Path(p.color_svg).read_text()
    # a figure whose composed SVGs repeat another's is skipped
    d = tmp_path / "package" / "svg"
    for char in ("dee", "deenuova"):
        shutil.copy(d / char / "straight" / "pose" / "wave.svg", d / char / "straight" / "pose" / "wave2.svg")
    assert len(pair_sources.comicgen_pairs(tmp_path, per_character=None)) == len(pairs)
    capped = pair_sources.comicgen_pairs(tmp_path, per_character=3)
    assert len(capped) == 3
    assert capped == pair_sources.comicgen_pairs(tmp_path, per_character=3), "deterministic"


def test_white_options_whitens_fills_and_keeps_ink():
    defaults = {"hairColor": ["ac6511", "0e0e0e"], "skinColor": ["f2d3b1"], "eyesColor": ["000000"],
                "mouthColor": ["1a1a1a", "000000"], "glassesColor": ["f4d150", "000000"],
                "backgroundColor": ["b6e3f4"]}
    out = pair_sources.white_options(defaults, keep_dark=("glassesColor",))
    assert out == {"hairColor": ["ffffff"], "skinColor": ["ffffff"], "eyesColor": ["000000"],
                   "mouthColor": ["1a1a1a", "000000"], "glassesColor": ["000000"]}
    assert pair_sources.is_dark("000") and pair_sources.is_dark("#2c1b18")
    assert not pair_sources.is_dark("ffdbb4") and not pair_sources.is_dark("ab2a18")


def test_dicebear_options_per_style():
    micah = {"hairColor": ["f9c9b6", "000000"], "baseColor": ["f9c9b6"], "eyesColor": ["000000"],
             "glassesColor": ["f4d150"]}
    color, line = pair_sources.dicebear_options("micah", micah)
    assert color == {}
    assert line == {"hairColor": ["000000"], "baseColor": ["ffffff"], "eyesColor": ["000000"],
                    "glassesColor": ["000000"]}
    color, line = pair_sources.dicebear_options("lorelei", {"hairColor": ["000000"], "skinColor": ["ffffff"]})
    assert line is None, "lorelei is color-only"
    assert color["skinColor"] and not all(c == "ffffff" for c in color["skinColor"])


def test_dicebear_pairs_list_seeds_as_groups_without_rendering_again(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(pair_sources, "_run", lambda cmd, cwd=None: calls.append(cmd) or "")
    schema = lambda root, styles: {"adventurer": {"hairColor": ["ac6511"], "skinColor": ["f2d3b1"]}}  # noqa: E731
    out = tmp_path / "svg" / "adventurer"
    for side in ("color", "line"):
        (out / side).mkdir(parents=True)
        for s in pair_sources.dicebear_seeds("adventurer", 3):
            (out / side / f"{s}.svg").write_text("<svg/>")
    pairs = pair_sources.dicebear_pairs("adventurer", tmp_path, count=3, schema=schema)
    assert calls == [], "nothing missing, node is not run"
    assert [p.key for p in pairs] == ["adventurer-00000", "adventurer-00001", "adventurer-00002"]
    assert all(p.group == p.key and p.source == "dicebear-adventurer" and p.line_svg for p in pairs)
    pairs = pair_sources.dicebear_pairs("adventurer", tmp_path, count=4, schema=schema)
    assert len(calls) == 1 and calls[0][0] == "node" and calls[0][-2] == "render"
    job = json.loads((out / "job.json").read_text())
    assert job["seeds"] == ["adventurer-00003"]
    assert job["line_options"] == {"hairColor": ["ffffff"], "skinColor": ["ffffff"]}


# ---------------------------------------------------------------- fetch_data wiring


def test_group_split_never_puts_one_group_on_both_sides():
    records = [{"source": "comicgen", "key": f"c{g}__e{e}", "group": f"pose{g}"}
               for g in range(60) for e in range(12)]
    splits: dict[str, set[str]] = {}
    for rec in records:
        splits.setdefault(rec["group"], set()).add(fetch_data.record_split(rec, 0, 0.2))
    assert all(len(s) == 1 for s in splits.values()), "a group is split across train and val"
    sides = [next(iter(s)) for s in splits.values()]
    assert "val" in sides and "train" in sides
    # without a group, the key decides (the split of the sources that have no groups is unchanged)
    rec = {"source": "openmoji", "key": "1F600"}
    assert fetch_data.record_split(rec, 0, 0.1) == fetch_data.split_of("openmoji", "1F600", 0, 0.1)


def test_exact_dedupe_keeps_pair_figures_that_share_a_coarse_hash():
    stats = {"color_hash": "0x1:[1, 1, 1]"}
    recs = [{"source": "comicgen", "key": k, "stats": stats, "line_hash": "0x1", "pixel_hash": h}
            for k, h in (("a", "x1"), ("b", "x2"), ("c", "x1"))]
    recs += [{"source": "openmoji", "key": k, "stats": stats, "line_hash": "0x1"} for k in ("a", "b")]
    out = {(r["source"], r["key"]): r.get("dropped") for r in fetch_data.dedupe(recs)}
    assert out == {("comicgen", "a"): None, ("comicgen", "b"): None, ("comicgen", "c"): "duplicate",
                   ("openmoji", "a"): None, ("openmoji", "b"): "duplicate"}


def test_write_index_keeps_the_records_of_sources_not_built(tmp_path):
    index = tmp_path / "index.json"
    old = [{"source": "openmoji", "key": "1"}, {"source": "comicgen", "key": "old"}]
    index.write_text(json.dumps({"size": 384, "seed": 0, "records": old}))
    mine = [{"source": "comicgen", "key": "new"}]
    others = fetch_data.write_index(index, mine, {"comicgen"}, 384, 0)
    assert others == [{"source": "openmoji", "key": "1"}]
    assert json.loads(index.read_text())["records"] == others + mine
    fetch_data.write_index(index, mine, {"comicgen"}, 512, 0)
    assert json.loads(index.read_text())["records"] == mine, "records of another render size are not kept"


def test_pair_sources_are_in_the_source_table():
    for name in ("comicgen", "dicebear-adventurer", "dicebear-open-peeps", "dicebear-micah", "dicebear-lorelei"):
        spec = fetch_data.SOURCES[name]
        assert spec["license"] and spec["attribution"] and spec["dedupe"] == "exact"
    assert fetch_data.SOURCES["dicebear-lorelei"]["paired"] is False
    assert fetch_data.SOURCES["comicgen"]["paired"] is True
