"""Reference pages measured: held-out figures colored from one colored drawing of the same character.

Sets (built in memory, deterministic, from ``data/drawings``: run ``scripts/fetch_data.py`` first):

* ``comicgen``: comicgen's four characters; the reference is one colored figure of each, the targets
  other poses and emotions of the same character (comicgen's own inked B/W version, and the gray page
  of the color figure);
* ``dicebear``, ``openmoji``: held-out (validation split) drawings; the reference is the colored
  drawing, the target a deformed copy (flip, rotation, scale, elastic warp, another place on the page)
  of its line art and of its gray page;
* ``chapters``: four-page chapters composed like ``examples/reference_chapter.cbz`` (``trainer.pages``:
  panels, screentones, speed lines, balloons, scan artefacts), two comicgen characters each, every pair
  of the four once, with other seeds than the example's: page 1 in color is the reference, pages 2-4
  (other poses) the targets, as their B/W pages and as the gray pages of their colors. What a chapter's
  own color page gives, where panel backgrounds, speed lines and tones can take a character's colors.

Each target page is colored by the default model without references, with its own reference, and with
every reference of its set at once (``mixed``: what a chapter's color pages showing other characters
give), and with the references of the other characters only (``others``: color pages that show none of
the page's characters), and scored against the target: CIEDE2000 (the page, as ``eval``), its gain over the gray page,
colorfulness vs the target's, and the paint-bucket measures (``evaluation.segments``): segment
accuracy (regions within CIEDE2000 5) and pixel accuracy.

    python benchmarks/bench_references.py                       # every set, 8 targets a character
    python benchmarks/bench_references.py --sets comicgen --targets 4 --json out.json
    python benchmarks/bench_references.py --sets chapters --modes none,reference
    python benchmarks/bench_references.py --timing              # CPU time: 16 pages with 2 references vs none
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from mangacolor_cli import Colorizer  # noqa: E402
from mangacolor_cli.engine import references as reference_pages  # noqa: E402
from mangacolor_cli.evaluation.segments import segment_score  # noqa: E402
from models.cie import luma8  # noqa: E402
from models.paint import references as refs  # noqa: E402
from models.toolbox import metrics  # noqa: E402

PAGE = (512, 724)
DRAWINGS = ROOT / "data" / "drawings"
COMICGEN = ("dee", "dey", "priya", "ringo")
MODES = ("none", "reference", "mixed", "others")


def place(rgba: Image.Image, rng: np.random.Generator, size=PAGE, fill=(0.7, 0.95)) -> Image.Image:
    """A drawing on a white page at a random scale and place."""
    W, H = size
    s = min(H * rng.uniform(*fill) / rgba.height, W * 0.92 / rgba.width)
    im = rgba.resize((max(1, round(rgba.width * s)), max(1, round(rgba.height * s))), Image.Resampling.LANCZOS)
    page = Image.new("RGB", size, "white")
    page.paste(im, (int(rng.integers(0, W - im.width + 1)), int(rng.integers(0, H - im.height + 1))), im)
    return page


def deform(images: list[Image.Image], rng: np.random.Generator) -> list[Image.Image]:
    """The same random flip, rotation, scale and elastic warp applied to each RGBA image."""
    from scipy.ndimage import gaussian_filter, map_coordinates
    flip = rng.random() < 0.5
    angle = float(rng.uniform(-10, 10))
    scale = float(rng.uniform(0.75, 1.0))
    w, h = images[0].size
    field_y = gaussian_filter(rng.normal(0, 1, (h, w)), 12) * 60
    field_x = gaussian_filter(rng.normal(0, 1, (h, w)), 12) * 60
    out = []
    for im in images:
        if flip:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
        im = im.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
        a = np.asarray(im).astype(np.float32)
        hh, ww = a.shape[:2]
        yy, xx = np.mgrid[0:hh, 0:ww].astype(np.float32)
        fy = np.asarray(Image.fromarray(field_y.astype(np.float32)).resize((ww, hh)))
        fx = np.asarray(Image.fromarray(field_x.astype(np.float32)).resize((ww, hh)))
        warped = np.stack([map_coordinates(a[..., c], [yy + fy, xx + fx], order=1, mode="constant", cval=0)
                           for c in range(a.shape[2])], axis=-1)
        out.append(Image.fromarray(np.clip(warped + 0.5, 0, 255).astype(np.uint8), "RGBA"))
    return out


def gray_of(page: Image.Image) -> Image.Image:
    return Image.fromarray(luma8(np.asarray(page)))


def build_sets(names: list[str], targets: int, seed: int = 0) -> dict[str, list[dict]]:
    """{set: [ {name, reference: RGB page, targets: [(line page, gray page, color page)]} ]}."""
    sets: dict[str, list[dict]] = {}
    index = json.loads((DRAWINGS / "index.json").read_text())["records"]
    if "comicgen" in names:
        chars = []
        for k, c in enumerate(COMICGEN):
            files = sorted(glob.glob(str(DRAWINGS / "comicgen" / "color" / f"{c}__*.png")))
            if not files:
                continue
            rng = np.random.default_rng([seed, k])
            ref_file = next(f for f in files if "__straight__" in f)
            reference = place(Image.open(ref_file).convert("RGBA"), rng)
            rest = [f for f in files if f != ref_file]
            pairs = []
            for f in rng.choice(rest, min(targets, len(rest)), replace=False):
                r = np.random.default_rng([seed, k, len(pairs)])
                color = place(Image.open(f).convert("RGBA"), r)
                line = place(Image.open(f.replace("/color/", "/line/")).convert("RGBA"),
                             np.random.default_rng([seed, k, len(pairs)]))
                pairs.append((gray_of(line), gray_of(color), color))
            chars.append({"name": c, "reference": reference, "targets": pairs})
        sets["comicgen"] = chars
    for name, sources in (("dicebear", ("dicebear-adventurer", "dicebear-open-peeps", "dicebear-micah")),
                          ("openmoji", ("openmoji",))):
        if name not in names:
            continue
        recs = sorted((r for r in index if r.get("split") == "val" and r["source"] in sources and r.get("line")),
                      key=lambda r: r["key"])
        rng = np.random.default_rng([seed, len(name)])
        chosen = [recs[i] for i in sorted(rng.choice(len(recs), min(len(recs), max(4, targets)), replace=False))]
        chars = []
        for k, r in enumerate(chosen):
            color_rgba = Image.open(r["color"]).convert("RGBA")
            line_rgba = Image.open(r["line"]).convert("RGBA")
            reference = place(color_rgba, np.random.default_rng([seed, 7, k]))
            pairs = []
            for t in range(2):
                dc, dl = deform([color_rgba, line_rgba], np.random.default_rng([seed, 8, k, t]))
                color = place(dc, np.random.default_rng([seed, 9, k, t]))
                line = place(dl, np.random.default_rng([seed, 9, k, t]))
                pairs.append((gray_of(line), gray_of(color), color))
            chars.append({"name": r["key"], "reference": reference, "targets": pairs})
        sets[name] = chars
    if "chapters" in names:
        sets["chapters"] = build_chapters(seed)
    return sets


def build_chapters(seed: int = 0) -> list[dict]:
    """Six composed chapters (one per pair of comicgen characters): the color page 1 as the reference,
    pages 2-4 as targets. The reference goes through the CLI's preparation (its size cap)."""
    from mangacolor_cli.engine.references import _scaled
    from scripts.reference_chapter import drawings  # the example's split of each character's figures
    from trainer.pages.composer import DrawingCache, page_rng
    from trainer.pages.dataset import compose_pair

    cache = DrawingCache()
    chapters = []
    pairs = [(a, b) for i, a in enumerate(COMICGEN) for b in COMICGEN[i + 1:]]
    for k, pair in enumerate(pairs):
        pages = []
        for i in range(4):
            pool = [d for c in pair for d in drawings(c, 0 if i == 0 else 1)]
            rng = page_rng(1000 + seed, f"bench_chapter_{k}", i)
            bw, color = compose_pair(pool, rng, cache, 1200, 1700, gray_rate=0.0)
            pages.append((bw, color))
        reference = _scaled(np.asarray(pages[0][1].convert("RGB")))
        targets = [(bw, gray_of(color.convert("RGB")), color.convert("RGB")) for bw, color in pages[1:]]
        chapters.append({"name": "+".join(pair), "reference": Image.fromarray(reference), "targets": targets})
    return chapters


def page_scores(out: np.ndarray, target: np.ndarray, bw: np.ndarray) -> dict[str, float]:
    o = torch.from_numpy(out).permute(2, 0, 1)[None].float() / 255.0
    t = torch.from_numpy(target).permute(2, 0, 1)[None].float() / 255.0
    seg = segment_score(bw, out, target)
    return {"ciede2000": float(metrics.ciede2000(o, t)), "colorfulness": float(metrics.colorfulness(o * 255.0)),
            "target_colorfulness": float(metrics.colorfulness(t * 255.0)),
            "segment_accuracy": seg.segment_accuracy, "pixel_accuracy": seg.pixel_accuracy}


def measure(sets: dict[str, list[dict]], colorizer: Colorizer, modes: tuple[str, ...] = MODES) -> dict:
    results = {}
    for set_name, chars in sets.items():
        prepared = {c["name"]: refs.prepare_references(np.asarray(c["reference"]), name=c["name"]) for c in chars}
        rows = {kind: {m: [] for m in ("gray",) + modes} for kind in ("line", "gray")}
        for c in chars:
            for line, gray, color in c["targets"]:
                target = np.asarray(color)
                for kind, bw in (("line", line), ("gray", gray)):
                    bw_arr = np.asarray(bw)
                    rows[kind]["gray"].append(page_scores(np.repeat(bw_arr[..., None], 3, axis=2), target, bw_arr))
                    for mode in modes:
                        colorizer.references = {
                            "none": [], "reference": prepared[c["name"]],
                            "mixed": [r for rs in prepared.values() for r in rs],
                            "others": [r for name, rs in prepared.items() if name != c["name"] for r in rs]}[mode]
                        out = np.asarray(colorizer.colorize(bw_arr))
                        rows[kind][mode].append(page_scores(out, target, bw_arr))
        for kind, by_mode in rows.items():
            gray_de = np.mean([r["ciede2000"] for r in by_mode["gray"]])
            summary = {}
            for mode, rs in by_mode.items():
                de = float(np.mean([r["ciede2000"] for r in rs]))
                summary[mode] = {
                    "ciede2000": round(de, 3),
                    "gain_over_gray_pct": round(100.0 * (1.0 - de / gray_de), 1),
                    "colorfulness_vs_target_pct": round(100.0 * np.mean([r["colorfulness"] for r in rs])
                                                        / max(np.mean([r["target_colorfulness"] for r in rs]), 1e-9), 1),
                    "segment_accuracy": round(float(np.nanmean([r["segment_accuracy"] for r in rs])), 3),
                    "pixel_accuracy": round(float(np.nanmean([r["pixel_accuracy"] for r in rs])), 3),
                }
            results[f"{set_name}/{kind}"] = {"pages": len(by_mode["gray"]), "characters": len(chars), **summary}
    return results


def print_table(results: dict) -> None:
    print(f"{'set':<18}{'pages':>6}  {'mode':<10}{'dE2000':>8}{'gain %':>8}{'color %':>9}{'seg acc':>9}{'pix acc':>9}")
    for name, r in results.items():
        for mode in ("gray",) + MODES:
            if mode not in r:
                continue
            m = r[mode]
            print(f"{name:<18}{r['pages']:>6}  {mode:<10}{m['ciede2000']:>8.3f}{m['gain_over_gray_pct']:>8.1f}"
                  f"{m['colorfulness_vs_target_pct']:>9.1f}{m['segment_accuracy']:>9.3f}{m['pixel_accuracy']:>9.3f}")


def _cpu_seconds(args: list[str], cwd: str) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def timing(reps: int = 3) -> dict:
    """CPU seconds of ``mangacolor colorize`` on a 16-page chapter, without and with 2 reference pages."""
    sample = ROOT / "examples" / "sample_chapter.cbz"
    exe = str(Path(sys.executable).with_name("mangacolor"))
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(sample) as z_in, zipfile.ZipFile(Path(tmp) / "ch16.cbz", "w") as z_out:
            names = [n for n in z_in.namelist() if n.lower().endswith((".png", ".jpg", ".jpeg"))]
            for copy in range(2):
                for n in names:
                    z_out.writestr(f"{copy}_{Path(n).name}", z_in.read(n))
        pages = len(names) * 2
        for k, c in enumerate(("dee", "priya")):
            f = sorted(glob.glob(str(DRAWINGS / "comicgen" / "color" / f"{c}__straight__*.png")))[0]
            place(Image.open(f).convert("RGBA"), np.random.default_rng(k), size=(1200, 1700)).save(Path(tmp) / f"ref{k}.png")
        plain, referenced = [], []
        for rep in range(reps):
            for out, extra in (("a.cbz", []), ("b.cbz", ["--reference", "ref0.png", "--reference", "ref1.png"])):
                seconds = _cpu_seconds([exe, "colorize", "ch16.cbz", "-o", out, "--overwrite", *extra], tmp)
                (plain if not extra else referenced).append(seconds)
        res = {"pages": pages, "references": 2, "cpu_seconds_without": round(float(np.median(plain)), 2),
               "cpu_seconds_with": round(float(np.median(referenced)), 2)}
        res["ratio"] = round(res["cpu_seconds_with"] / res["cpu_seconds_without"], 3)
        return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default="comicgen,dicebear,openmoji,chapters")
    p.add_argument("--modes", default=",".join(MODES), help=f"which of {', '.join(MODES)} to run")
    p.add_argument("--targets", type=int, default=8, help="targets per comicgen character (drawings for the others)")
    p.add_argument("--timing", action="store_true", help="measure the CPU time of 16 pages with 2 references instead")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--feature-weights", default=None,
                   help="comma-separated weights to try instead of models.paint.references.FEATURE_WEIGHTS "
                        "(e.g. from scripts/fit_reference_weights.py)")
    p.add_argument("--tone-weight", type=float, default=None, help="with --feature-weights: the TONE_WEIGHT to try")
    p.add_argument("--label", default=None, help="the key the results are stored under in --json")
    args = p.parse_args()
    if args.feature_weights:
        refs.FEATURE_WEIGHTS = np.array([float(x) for x in args.feature_weights.split(",")])
    if args.tone_weight is not None:
        refs.TONE_WEIGHT = args.tone_weight
    if args.timing:
        res = timing()
        print(json.dumps(res, indent=2))
    else:
        start = time.time()
        sets = build_sets([s.strip() for s in args.sets.split(",") if s.strip()], args.targets)
        modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
        unknown = set(modes) - set(MODES)
        if unknown:
            p.error(f"--modes: unknown {', '.join(sorted(unknown))} (choose from {', '.join(MODES)})")
        res = measure(sets, Colorizer(), modes)
        print_table(res)
        print(f"({time.time() - start:.0f} s)")
    if args.json:
        old = json.loads(args.json.read_text()) if args.json.exists() else {}
        old.update({"timing": res} if args.timing else {args.label: res} if args.label else res)
        args.json.write_text(json.dumps(old, indent=2) + "\n")


if __name__ == "__main__":
    main()
