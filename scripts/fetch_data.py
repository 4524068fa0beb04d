#!/usr/bin/env python3
"""Build the training corpus from package registries: drawings, then synthetic manga pages.

    python scripts/fetch_data.py                 # everything, defaults (~10 min on 2 cores)
    python scripts/fetch_data.py --limit 200     # a small corpus for a quick try
    python scripts/fetch_data.py --no-extras     # only openclipart + OpenMoji
    python scripts/fetch_data.py --sources comicgen,dicebear-micah   # only these; others kept in the index

Steps (each skipped when its output is already there, so a rerun is cheap):
  1. download: Debian `openclipart-svg` (apt-get download + dpkg-deb -x, no root install),
     npm `openmoji@17.0.0` and optional flat-color emoji sets (npm pack, no install); the exact
     line-art/color pair sources of scripts/pair_sources.py: npm `comicgen@1.9.9` (figures composed
     from emotion x pose SVGs) and DiceBear 9.4.3 styles (npm install; node renders each seed in
     color and with white colors as its line art)
  2. render SVG -> RGBA PNG with rsvg-convert (or cairosvg), in parallel, trimmed to content
  3. drop empty, grayscale-only and duplicate drawings; split train/val by source drawing
  4. synthesize manga line art for every drawing without an inked twin (trainer/pages/lineart.py)
  5. compose one validation set per source into data/pages/val_<set>/{bw,color} (training pages are
     composed on the fly by trainer.pages.ComposedPages); --v1-pages also writes corpus v1's fixed
     page folders data/pages/{train,val,paired_train,paired_val}
  6. write data/manifest.json with counts, sources, versions and licenses
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict, dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from scripts import pair_sources  # noqa: E402
from trainer.pages import composer, corpus  # noqa: E402

# openclipart folders that hold illustrations; computer/shapes/signs are icons and symbols.
OPENCLIPART_CATEGORIES = (
    "animals", "people", "food", "plants", "transportation", "recreation", "buildings",
    "education", "science", "tools", "office", "special", "unsorted", "decorations",
    "containers", "electronics", "geography",
)
OPENMOJI_GROUPS = (
    "people-body", "smileys-emotion", "animals-nature", "food-drink", "travel-places",
    "activities", "objects", "extras-openmoji", "extras-unicode",
)
# Logos, UI glyphs, flags and abstract symbols are not drawings a manga page would hold.
OPENMOJI_SKIP_SUBGROUPS = (
    "brand", "ui-element", "flags", "queer-symbols", "symbol-other", "symbols",
    "subdivision-flag", "regional-indicator",
)
SKIN_TONE_CODES = ("1f3fb", "1f3fc", "1f3fd", "1f3fe", "1f3ff")
SKIN_TONE_SUFFIXES = ("-light", "-medium-light", "-medium", "-medium-dark", "-dark", "skin-tone")

SOURCES = {
    "openclipart": {
        "registry": "debian", "package": "openclipart-svg",
        "license": "Public domain (Creative Commons Public Domain Dedication)",
        "attribution": "Open Clip Art Library contributors (openclipart.org), via Debian openclipart-svg",
        "paired": False,
    },
    "openmoji": {
        "registry": "npm", "package": "openmoji@17.0.0",
        "license": "CC-BY-SA-4.0",
        "attribution": "OpenMoji, the open-source emoji and icon project (openmoji.org), CC BY-SA 4.0",
        "paired": True,
    },
    "twemoji": {
        "registry": "npm", "package": "@twemoji/svg@15.0.0", "extra": True,
        "license": "CC-BY-4.0 (graphics; the npm package metadata says MIT for the code)",
        "attribution": "Twemoji, Copyright Twitter, Inc. and other contributors (jdecked/twemoji), CC BY 4.0",
        "paired": False,
    },
    "fluent-emoji-flat": {
        "registry": "npm", "package": "@iconify-json/fluent-emoji-flat@1.2.6", "extra": True,
        "license": "MIT",
        "attribution": "Fluent Emoji by Microsoft Corporation, MIT, via Iconify",
        "paired": False,
    },
    "noto": {
        "registry": "npm", "package": "@iconify-json/noto@1.2.9", "extra": True,
        "license": "Apache-2.0",
        "attribution": "Noto Emoji by Google Inc., Apache License 2.0, via Iconify",
        "paired": False,
    },
    # Exact pairs (scripts/pair_sources.py): `group` splits them by character pose / seed, and only
    # pixel-identical figures count as duplicates ("dedupe": "exact"): two emotions on one pose, or
    # two faces of one style, share a 16x16 hash without being the same drawing.
    "comicgen": {
        "registry": "npm", "package": f"comicgen@{pair_sources.COMICGEN_VERSION}",
        "license": "CC0-1.0 (characters Dee, Dey, Priya, Ringo by Ramya Mylavarapu); package code MIT",
        "attribution": "comicgen by Gramener; characters by Ramya Mylavarapu, CC0",
        # pastel skin and shirts (#f9e6c8, #bcd1ec) fall under the saturation test of the grayscale
        # filter; the color twin of an inked figure is colored by construction
        "paired": True, "dedupe": "exact", "min_colored": 0.0,
    },
    **{f"dicebear-{style}": {
        "registry": "npm-install", "package": f"@dicebear/{style}@{pair_sources.DICEBEAR_VERSION}",
        "license": cfg["license"], "attribution": cfg["attribution"],
        "paired": cfg.get("line", True), "dedupe": "exact",
    } for style, cfg in pair_sources.DICEBEAR_STYLES.items()},
}


@dataclass(frozen=True)
class Candidate:
    """One source drawing to render: its color SVG and, for paired sources, its line-art SVG."""

    source: str
    key: str
    category: str
    color_svg: str
    line_svg: str | None = None
    group: str | None = None  # the split unit when several candidates share one drawing (pose, seed)


def log(msg: str) -> None:
    """Print one progress line, flushed so a piped log shows it at once."""
    print(f"[fetch] {msg}", flush=True)


def run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a command, raising a one-line error naming it when it fails."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"`{' '.join(cmd)}` failed: {tail[0]}")
    return proc


# ---------------------------------------------------------------- 1. download

def fetch_debian(package: str, dest: Path) -> Path:
    """Download a Debian package with apt-get download and unpack it with dpkg-deb -x (no install)."""
    done = dest / ".extracted"
    if done.exists():
        log(f"debian {package}: already unpacked in {dest}")
        return dest
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise RuntimeError("apt-get/dpkg-deb not found: the openclipart source needs a Debian-based system")
    policy = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True).stdout
    if "Candidate: (none)" in policy or "Candidate:" not in policy:
        log("apt lists do not know the package yet: running apt-get update")
        run(["apt-get", "update", "-qq"])
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.deb"):
        old.unlink()
    log(f"debian {package}: apt-get download into {dest}")
    run(["apt-get", "download", package], cwd=dest)
    deb = next(dest.glob("*.deb"))
    run(["dpkg-deb", "-x", str(deb), str(dest / "root")])
    done.write_text(deb.name + "\n")
    return dest


def fetch_npm(spec: str, dest: Path) -> Path:
    """Download an npm package tarball with npm pack (no install) and unpack it into dest/package."""
    done = dest / ".extracted"
    if done.exists():
        log(f"npm {spec}: already unpacked in {dest}")
        return dest
    if not shutil.which("npm"):
        raise RuntimeError("npm not found: install Node.js (Debian package npm) to fetch npm sources")
    dest.mkdir(parents=True, exist_ok=True)
    log(f"npm {spec}: npm pack into {dest}")
    out = run(["npm", "pack", spec, "--json", "--pack-destination", str(dest)]).stdout
    filename = json.loads(out[out.index("["):])[0]["filename"]
    with tarfile.open(dest / filename) as tar:
        tar.extractall(dest, filter="data")
    done.write_text(filename + "\n")
    return dest


def package_version(source: str, root: Path) -> str:
    """The version of the fetched package, read from the downloaded file itself."""
    if source == "openclipart":
        return (root / ".extracted").read_text().strip().split("_")[1].replace("%3a", ":")
    if source.startswith("dicebear-"):
        return pair_sources.dicebear_version(root, source.removeprefix("dicebear-"))
    return json.loads((root / "package" / "package.json").read_text())["version"]


# ---------------------------------------------------------------- candidates

def is_skin_tone_variant(name: str) -> bool:
    """True for emoji skin-tone variants, which repeat the base drawing's shapes."""
    low = name.lower()
    return any(code in low for code in SKIN_TONE_CODES) or low.endswith(SKIN_TONE_SUFFIXES) \
        or "skin-tone" in low


def openclipart_candidates(root: Path) -> list[Candidate]:
    """Colorable illustrations from the illustration folders of openclipart-svg."""
    base = root / "root" / "usr" / "share" / "openclipart" / "svg"
    out = []
    for category in OPENCLIPART_CATEGORIES:
        for svg in sorted((base / category).rglob("*.svg")):
            key = str(svg.relative_to(base).with_suffix("")).replace(os.sep, "__")
            out.append(Candidate("openclipart", key, category, str(svg)))
    return out


def openmoji_candidates(root: Path) -> list[Candidate]:
    """OpenMoji pairs (color/svg, black/svg), one per base drawing: skin tones share the line art."""
    pkg = root / "package"
    meta = json.loads((pkg / "data" / "openmoji.json").read_text())
    out = []
    for item in meta:
        if item["skintone"] or item["group"] not in OPENMOJI_GROUPS:
            continue
        if item["subgroups"] in OPENMOJI_SKIP_SUBGROUPS:
            continue
        hexcode = item["hexcode"]
        color, line = pkg / "color" / "svg" / f"{hexcode}.svg", pkg / "black" / "svg" / f"{hexcode}.svg"
        if color.exists() and line.exists():
            out.append(Candidate("openmoji", hexcode, item["group"], str(color), str(line)))
    return out


def twemoji_candidates(root: Path) -> list[Candidate]:
    """Twemoji drawings without skin-tone variants, flags or keycaps."""
    out = []
    for svg in sorted((root / "package").glob("*.svg")):
        codes = svg.stem.split("-")
        if is_skin_tone_variant(svg.stem) or "20e3" in codes:
            continue
        if any(0x1F1E6 <= int(c, 16) <= 0x1F1FF for c in codes):  # regional indicators: flags
            continue
        if int(codes[0], 16) < 0x2000:  # digits, letters and marks
            continue
        out.append(Candidate("twemoji", svg.stem, "emoji", str(svg)))
    return out


def iconify_candidates(source: str, root: Path) -> list[Candidate]:
    """Write each icon of an Iconify JSON set as an SVG file once, and list them."""
    icons = json.loads((root / "package" / "icons.json").read_text())
    svg_dir = root / "svg"
    svg_dir.mkdir(exist_ok=True)
    width, height = icons.get("width", 16), icons.get("height", 16)
    out = []
    for name, icon in sorted(icons["icons"].items()):
        if is_skin_tone_variant(name) or name.startswith(("flag-", "keycap", "regional-indicator")):
            continue
        path = svg_dir / f"{name}.svg"
        if not path.exists():
            w, h = icon.get("width", width), icon.get("height", height)
            path.write_text(f'<svg xmlns="http://www.w3.org/2000/svg" '
                            f'xmlns:xlink="http://www.w3.org/1999/xlink" width="{w}" height="{h}" '
                            f'viewBox="{icon.get("left", 0)} {icon.get("top", 0)} {w} {h}">'
                            f'{icon["body"]}</svg>')
        out.append(Candidate(source, name, "emoji", str(path)))
    return out


def list_candidates(source: str, root: Path, pair_counts: dict | None = None) -> list[Candidate]:
    """All candidate drawings of one fetched source.

    pair_counts: {"comicgen": figures per character, "dicebear": seeds per style, "seed": n}
    for the generated pair sources (scripts/pair_sources.py); their defaults when missing.
    """
    pair_counts = pair_counts or {}
    if source == "comicgen":
        pairs = pair_sources.comicgen_pairs(
            root, pair_counts.get("comicgen", pair_sources.COMICGEN_PER_CHARACTER), pair_counts.get("seed", 0))
        return [Candidate(**p._asdict()) for p in pairs]
    if source.startswith("dicebear-"):
        pairs = pair_sources.dicebear_pairs(source.removeprefix("dicebear-"), root,
                                            pair_counts.get("dicebear", pair_sources.DICEBEAR_PER_STYLE))
        return [Candidate(**p._asdict()) for p in pairs]
    if source == "openclipart":
        return openclipart_candidates(root)
    if source == "openmoji":
        return openmoji_candidates(root)
    if source == "twemoji":
        return twemoji_candidates(root)
    return iconify_candidates(source, root)


# ---------------------------------------------------------------- 2. render

def svg_renderer() -> str:
    """Pick the SVG renderer: rsvg-convert, installed from Debian if missing and root, else cairosvg."""
    if shutil.which("rsvg-convert"):
        return "rsvg"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("rsvg-convert missing: apt-get install -y librsvg2-bin")
        try:
            run(["apt-get", "install", "-y", "-qq", "librsvg2-bin"])
            return "rsvg"
        except RuntimeError as err:
            log(f"could not install librsvg2-bin ({err}); trying cairosvg")
    try:
        import cairosvg  # noqa: F401
        return "cairosvg"
    except ImportError:
        raise RuntimeError("no SVG renderer: install librsvg2-bin (rsvg-convert) or `pip install cairosvg`")


def render_svg(svg: str, size: int, renderer: str = "rsvg") -> Image.Image:
    """Render an SVG to an RGBA image that fits in size x size, keeping its aspect ratio."""
    if renderer == "rsvg":
        proc = subprocess.run(["rsvg-convert", "-w", str(size), "-h", str(size), "--keep-aspect-ratio",
                               "-f", "png", svg], capture_output=True, timeout=60)
        if proc.returncode != 0 or not proc.stdout:
            raise ValueError(proc.stderr.decode(errors="replace").strip()[:200] or "rsvg-convert failed")
        data = proc.stdout
    else:
        import cairosvg
        data = cairosvg.svg2png(url=svg, output_width=size)
    img = Image.open(io.BytesIO(data)).convert("RGBA")
    if max(img.size) != size:
        scale = size / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.LANCZOS)
    return img


def clear_white_backdrop(rgba: np.ndarray) -> np.ndarray:
    """Make opaque near-white regions touching the border transparent (a drawn white backdrop)."""
    from skimage.measure import label

    white = (rgba[..., 3] > 200) & (rgba[..., :3].min(axis=2) > 240)
    border = np.zeros_like(white)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    if not (white & border).any():
        return rgba
    labels = label(white, connectivity=1)
    touching = np.unique(labels[white & border])
    backdrop = np.isin(labels, touching[touching > 0])
    out = rgba.copy()
    out[backdrop, 3] = 0
    return out


def drawing_stats(rgba: np.ndarray) -> dict:
    """Coverage, colorfulness and an average hash of an RGBA drawing (composited on white)."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    rgb = rgba[..., :3].astype(np.float32) / 255.0 * alpha + (1.0 - alpha)
    opaque = alpha[..., 0] > 0.5
    coverage = float(opaque.mean())
    mx, mn = rgb.max(axis=2), rgb.min(axis=2)
    saturation = (mx - mn) / np.maximum(mx, 1e-6)
    colored = opaque & (saturation > 0.25) & (mx > 0.15)
    colored_fraction = float(colored.sum() / max(1, opaque.sum()))
    dark_fraction = float(((rgb.mean(axis=2) < 0.5) & opaque).mean())
    small = np.asarray(Image.fromarray((rgb * 255).astype(np.uint8)).resize((16, 16), Image.BILINEAR),
                       dtype=np.float32)
    gray = small.mean(axis=2)
    ahash = "".join("1" if v else "0" for v in (gray > gray.mean()).ravel())
    # Quantized mean color splits same-shape drawings that differ only in color (hearts, circles).
    tint = (small.reshape(-1, 3).mean(axis=0) // 32).astype(int).tolist()
    return {"coverage": coverage, "colored": colored_fraction, "dark": dark_fraction,
            "shape_hash": hex(int(ahash, 2)), "color_hash": f"{hex(int(ahash, 2))}:{tint}"}


def crop_box(*alphas: np.ndarray) -> tuple[int, int, int, int] | None:
    """The union bounding box (left, top, right, bottom) of the nonzero alpha of equal-size images."""
    union = np.zeros_like(alphas[0], dtype=bool)
    for a in alphas:
        union |= a > 8
    if not union.any():
        return None
    ys, xs = np.nonzero(union)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def render_candidate(job: tuple[Candidate, str, int, str]) -> dict:
    """Render one candidate (and its line art), trim both by one box, save PNGs, return its record."""
    cand, out_dir, size, renderer = job
    record = {"source": cand.source, "key": cand.key, "category": cand.category,
              "color_svg": cand.color_svg, "line_svg": cand.line_svg}
    if cand.group is not None:
        record["group"] = cand.group
    try:
        color = clear_white_backdrop(np.asarray(render_svg(cand.color_svg, size, renderer)))
        line = None
        if cand.line_svg:
            line = np.asarray(render_svg(cand.line_svg, size, renderer))
            if line.shape != color.shape:
                return {**record, "dropped": "line art and color differ in size"}
        box = crop_box(color[..., 3], *(() if line is None else (line[..., 3],)))
        if box is None:
            return {**record, "dropped": "empty"}
        l, t, r, b = box
        color = color[t:b, l:r]
        stats = drawing_stats(color)
        record["stats"] = stats
        digest = hashlib.sha1(color.tobytes())
        if line is not None:
            digest.update(np.ascontiguousarray(line[t:b, l:r]).tobytes())
        record["pixel_hash"] = digest.hexdigest()
        if stats["coverage"] < 0.02 or min(color.shape[:2]) < size // 16:
            return {**record, "dropped": "empty or sliver"}
        if stats["colored"] < SOURCES.get(cand.source, {}).get("min_colored", 0.05):
            return {**record, "dropped": "grayscale-only"}
        safe = cand.key.replace("/", "_")
        color_path = Path(out_dir) / cand.source / "color" / f"{safe}.png"
        color_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(color).save(color_path, optimize=False, compress_level=3)
        record["color"] = str(color_path)
        if line is not None:
            line = line[t:b, l:r]
            line_stats = drawing_stats(line)
            if line_stats["dark"] < 0.01:
                return {**record, "dropped": "near-white line art"}
            record["line_hash"] = line_stats["shape_hash"]
            line_path = Path(out_dir) / cand.source / "line" / f"{safe}.png"
            line_path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(line).save(line_path, optimize=False, compress_level=3)
            record["line"] = str(line_path)
        return record
    except Exception as err:  # one bad SVG must not stop the corpus; it is recorded as dropped
        return {**record, "dropped": f"render failed: {str(err).splitlines()[0][:120] if str(err) else type(err).__name__}"}


def render_all(cands: list[Candidate], out_dir: Path, size: int, renderer: str, jobs: int,
               previous: dict[tuple[str, str], dict]) -> list[dict]:
    """Render candidates in parallel, reusing records of a previous run whose PNGs still exist."""
    records, todo = [], []
    for c in cands:
        old = previous.get((c.source, c.key))
        if old and ("dropped" in old or Path(old["color"]).exists()):
            records.append(old)
        else:
            todo.append(c)
    if not todo:
        return records
    log(f"rendering {len(todo)} SVGs at {size}px with {renderer} on {jobs} processes "
        f"({len(records)} reused)")
    start = time.time()
    with Pool(jobs) as pool:
        for i, rec in enumerate(pool.imap_unordered(render_candidate,
                                                    [(c, str(out_dir), size, renderer) for c in todo],
                                                    chunksize=8), 1):
            records.append(rec)
            if i % 500 == 0 or i == len(todo):
                log(f"  rendered {i}/{len(todo)} ({time.time() - start:.0f}s)")
    return records


# ---------------------------------------------------------------- 3. filter, dedupe, split

def dedupe(records: list[dict]) -> list[dict]:
    """Keep the first drawing of each look: same colors within a source, same line art for pairs.

    Sources marked "dedupe": "exact" (generated figures that share poses or face shapes) drop only
    pixel-identical figures.
    """
    seen: set[tuple[str, str]] = set()
    for rec in sorted(records, key=lambda r: (r["source"], r["key"])):
        if "dropped" in rec:
            continue
        if SOURCES.get(rec["source"], {}).get("dedupe") == "exact" and "pixel_hash" in rec:
            keys = [(rec["source"], "x:" + rec["pixel_hash"])]
        else:
            keys = [(rec["source"], "c:" + rec["stats"]["color_hash"])]
            if "line_hash" in rec:
                keys.append((rec["source"], "l:" + rec["line_hash"]))
        if any(k in seen for k in keys):
            rec["dropped"] = "duplicate"
            continue
        seen.update(keys)
    return records


def split_of(source: str, key: str, seed: int, val_fraction: float) -> str:
    """Deterministic train/val assignment of one source drawing from a hash of (seed, source, key)."""
    digest = hashlib.sha256(f"{seed}:{source}:{key}".encode()).digest()
    return "val" if int.from_bytes(digest[:8], "big") / 2**64 < val_fraction else "train"


def record_split(rec: dict, seed: int, val_fraction: float) -> str:
    """The split of a record: by its group when it has one (a character pose, a DiceBear seed), so
    all figures of one group land on the same side; else by its key (one source drawing)."""
    return split_of(rec["source"], rec.get("group") or rec["key"], seed, val_fraction)


def limit_candidates(cands: list[Candidate], limit: int | None, seed: int) -> list[Candidate]:
    """A deterministic, category-spread subset of at most `limit` candidates."""
    if limit is None or len(cands) <= limit:
        return cands
    # A salt of its own, so the subset is not correlated with the train/val split hash.
    order = sorted(cands, key=lambda c: hashlib.sha256(f"limit:{seed}:{c.source}:{c.key}".encode()).digest())
    return sorted(order[:limit], key=lambda c: c.key)


# ---------------------------------------------------------------- sample chapter

# Held-out figures of the sources a manga reader would recognize: inked characters, faces, objects.
SAMPLE_SOURCES = {"comicgen": 14, "dicebear-adventurer": 5, "dicebear-micah": 5, "dicebear-open-peeps": 4,
                  "openclipart": 14}
SAMPLE_LICENSE_NOTE = (
    "Synthetic black-and-white manga pages composed by mangacolor (trainer/pages) from validation-split "
    "drawings that no mangacolor model trains on: comicgen characters by Ramya Mylavarapu (Gramener, CC0 1.0); "
    "DiceBear avatar styles Adventurer by Lisa Wischofsky (CC BY 4.0), Micah by Micah Lanier (CC BY 4.0) and "
    "Open Peeps by Pablo Stanley (CC0 1.0), rendered with DiceBear 9.4.3; public-domain clip art from the "
    "Open Clip Art Library (Debian openclipart-svg), its line art synthesized from the color drawing. "
    "This chapter is shared under CC BY 4.0; balloon text in DejaVu Sans.")


def sample_drawings(records: list[dict], data: Path, size: int = 1024, seed: int = 7) -> list:
    """Validation drawings of SAMPLE_SOURCES re-rendered at a size fit for 1200x1700 pages, each with
    inked line art (its own twin, or synthesized from the high-resolution color render)."""

    renderer = svg_renderer()
    hi = data / "drawings_hi"
    out = []
    for source, count in SAMPLE_SOURCES.items():
        pool = sorted((r for r in records if r["source"] == source and r.get("split") == "val" and "dropped" not in r),
                      key=lambda r: hashlib.sha256(f"sample:{seed}:{r['key']}".encode()).hexdigest())
        taken = 0
        for r in pool:
            if taken == count:
                break
            safe = r["key"].replace("/", "_")
            color = hi / source / "color" / f"{safe}.png"
            line = hi / source / ("line" if r.get("line_svg") else "synth") / f"{safe}.png"
            if not color.exists():
                cand = Candidate(source, r["key"], r.get("category", ""), r["color_svg"], r.get("line_svg"),
                                 r.get("group"))
                if "dropped" in render_candidate((cand, str(hi), size, renderer)):
                    continue
            if not line.exists() and corpus.synthesize_file(color, line) is None:
                continue
            out.append(composer.Drawing(f"{source}/{r['key']}", str(color), str(line)))
            taken += 1
    return out


def build_sample(data: Path, out: Path) -> Path:
    """Rebuild the sample chapter (8 pages of 1200x1700, ComicInfo.xml) from held-out drawings."""
    index = data / "drawings" / "index.json"
    records = json.loads(index.read_text())["records"]
    drawings = sample_drawings(records, data)
    log(f"sample chapter: {len(drawings)} held-out drawings rendered at 1024 px")
    composer.build_sample_chapter(drawings, out, notes=SAMPLE_LICENSE_NOTE)
    log(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return out


# ---------------------------------------------------------------- main

def write_index(index_path: Path, records: list[dict], built: set[str], size: int,
                seed: int) -> list[dict]:
    """Write the drawing index: this run's records plus the records of sources it did not build.

    The index is read again under a lock right before writing, so two runs building different
    sources (`--sources`) keep each other's records. Returns the records kept from other sources
    (none when the old index was made at another render size).
    """
    import fcntl

    index_path.parent.mkdir(parents=True, exist_ok=True)
    with open(index_path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        others: list[dict] = []
        if index_path.exists():
            try:
                old = json.loads(index_path.read_text())
            except ValueError:
                old = {}
            if old.get("size") == size:
                others = [r for r in old.get("records", []) if r["source"] not in built]
            elif old:
                log(f"index: the old index was rendered at {old.get('size')} px, not {size}: "
                    "its records are not kept")
        tmp = index_path.with_suffix(f".json.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"size": size, "seed": seed, "records": others + records}))
        tmp.replace(index_path)
    return others


def disk_usage(path: Path) -> int:
    """Total bytes of the files under path."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> int:
    """Command line entry: fetch, render, split, compose, write the manifest."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=REPO / "data", help="output folder (git-ignored)")
    p.add_argument("--limit", type=int, default=None, help="at most this many drawings per source")
    p.add_argument("--no-extras", action="store_true", help="skip twemoji, fluent-emoji-flat and noto")
    p.add_argument("--size", type=int, default=384, help="drawing render size (long side, px)")
    p.add_argument("--jobs", type=int, default=2, help="parallel processes")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the page layouts")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of drawings held out for validation")
    p.add_argument("--train-pages", type=int, default=3000)
    p.add_argument("--val-pages", type=int, default=300)
    p.add_argument("--paired-pages", type=int, default=200)
    p.add_argument("--paired-train-pages", type=int, default=1000,
                   help="paired bw/color pages from training drawings (data/pages/paired_train)")
    p.add_argument("--page-size", type=str, default="512x724", help="WxH of composed pages")
    p.add_argument("--no-pages", action="store_true", help="stop after the drawings")
    p.add_argument("--val-set-pages", type=int, default=40, help="pages per validation set (one set per source)")
    p.add_argument("--sample-chapter", type=Path, default=None, metavar="CBZ",
                   help="only rebuild the sample chapter from the built corpus (e.g. examples/sample_chapter.cbz)")
    p.add_argument("--v1-pages", action="store_true",
                   help="also write corpus v1's fixed page folders (data/pages/train, val, paired_*)")
    p.add_argument("--sources", type=str, default=None,
                   help="comma-separated sources to build (default: all); the index keeps the records "
                        f"of the others. Known: {','.join(SOURCES)}")
    p.add_argument("--comicgen-per-character", type=int, default=pair_sources.COMICGEN_PER_CHARACTER,
                   help="comicgen emotion x pose figures per character")
    p.add_argument("--dicebear-per-style", type=int, default=pair_sources.DICEBEAR_PER_STYLE,
                   help="DiceBear seeds per style")
    args = p.parse_args(argv)

    start = time.time()
    data = args.data.resolve()
    if args.sample_chapter is not None:
        build_sample(data, args.sample_chapter)
        return 0
    cache, drawings_dir = data / "cache", data / "drawings"
    sources = [s for s in SOURCES if not (args.no_extras and SOURCES[s].get("extra"))]
    if args.sources:
        wanted = [s.strip() for s in args.sources.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in SOURCES]
        if unknown:
            p.error(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(SOURCES)}")
        sources = [s for s in SOURCES if s in wanted]

    fetched: dict[str, dict] = {}
    for source in sources:
        spec = SOURCES[source]
        try:
            if spec["registry"] == "debian":
                root = fetch_debian(spec["package"], cache / source)
            elif spec["registry"] == "npm-install":  # DiceBear: one install holds core and all styles
                root = pair_sources.fetch_dicebear(cache / "dicebear")
            else:
                root = fetch_npm(spec["package"], cache / source)
            fetched[source] = {"root": root, "version": package_version(source, root)}
        except (RuntimeError, OSError, StopIteration, KeyError, ValueError) as err:
            log(f"SKIPPING {source}: {err}")
    if not fetched:
        log(f"error: none of {', '.join(sources)} could be fetched; nothing to build")
        return 1

    renderer = svg_renderer()
    index_path = drawings_dir / "index.json"
    previous = {}
    if index_path.exists():
        old = json.loads(index_path.read_text())
        if old.get("size") == args.size:
            previous = {(r["source"], r["key"]): r for r in old["records"]}

    cands: list[Candidate] = []
    pair_counts = {"comicgen": args.comicgen_per_character, "dicebear": args.dicebear_per_style,
                   "seed": args.seed}
    for source, info in list(fetched.items()):
        try:
            found = list_candidates(source, info["root"], pair_counts)
        except (RuntimeError, OSError, ValueError, KeyError) as err:
            log(f"SKIPPING {source}: {err}")
            del fetched[source]
            continue
        chosen = limit_candidates(found, args.limit, args.seed)
        info["candidates"] = len(found)
        log(f"{source} {info['version']}: {len(found)} candidate drawings, using {len(chosen)}")
        cands += chosen
    records = dedupe(render_all(cands, drawings_dir, args.size, renderer, args.jobs, previous))
    for rec in records:
        if "dropped" not in rec:
            rec["split"] = record_split(rec, args.seed, args.val_fraction)
    drawings_dir.mkdir(parents=True, exist_ok=True)
    # With --sources, the index keeps the other sources' records; a full run replaces the index.
    others = write_index(index_path, records, set(fetched) if args.sources else set(SOURCES),
                         args.size, args.seed)
    if others:
        log(f"index: kept {len(others)} records of sources not built in this run")
    kept = [r for r in records + others if "dropped" not in r]

    counts: dict[str, dict] = {}
    for source in fetched:
        mine = [r for r in records if r["source"] == source]
        dropped: dict[str, int] = {}
        for r in mine:
            if "dropped" in r:
                reason = r["dropped"].split(":")[0]
                dropped[reason] = dropped.get(reason, 0) + 1
        counts[source] = {
            "candidates": fetched[source]["candidates"], "rendered": len(mine),
            "kept": sum("dropped" not in r for r in mine),
            "train": sum(r.get("split") == "train" for r in mine),
            "val": sum(r.get("split") == "val" for r in mine),
            "paired_line_art": sum("line" in r and "dropped" not in r for r in mine),
            "dropped": dropped,
        }
        log(f"{source}: kept {counts[source]['kept']} (train {counts[source]['train']}, "
            f"val {counts[source]['val']}), dropped {dropped}")

    page_counts = {}
    synthesized = corpus.add_synthesized_line_art(index_path, args.jobs, log=log)
    log(f"{synthesized} drawings have synthesized line art")
    if not args.no_pages:
        page_counts = corpus.build_validation_sets(index_path, data / "pages", args.val_set_pages, args.seed, log=log)
    if args.v1_pages:
        width, height = (int(v) for v in args.page_size.lower().split("x"))
        page_counts |= composer.build_corpus_pages(
            kept, data / "pages", size=(width, height), train_pages=args.train_pages,
            val_pages=args.val_pages, paired_pages=args.paired_pages, seed=args.seed, jobs=args.jobs,
            log=log, paired_train_pages=args.paired_train_pages)

    old_manifest = {}
    if (data / "manifest.json").exists() and args.sources:
        try:
            old_manifest = json.loads((data / "manifest.json").read_text())
        except ValueError:
            old_manifest = {}
    old_sources = {s: v for s, v in old_manifest.get("sources", {}).items() if s not in fetched}
    old_counts = {s: v for s, v in old_manifest.get("drawings", {}).items() if s not in fetched}
    manifest = {
        "built_by": "scripts/fetch_data.py",
        "arguments": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "renderer": renderer,
        "sources": {s: {"registry": SOURCES[s]["registry"], "package": SOURCES[s]["package"],
                        "version": fetched[s]["version"], "license": SOURCES[s]["license"],
                        "attribution": SOURCES[s]["attribution"], "paired": SOURCES[s]["paired"]}
                    for s in fetched} | old_sources,
        "skipped_sources": [s for s in sources if s not in fetched],
        "drawings": counts | old_counts,
        "drawings_total": {"kept": len(kept), "train": sum(r["split"] == "train" for r in kept),
                           "val": sum(r["split"] == "val" for r in kept)},
        "pages": page_counts,
        "split": f"by source drawing: sha256(seed:source:group-or-key) < {args.val_fraction} -> val "
                 "(group: comicgen character pose, DiceBear seed)",
        "seconds": round(time.time() - start, 1),
        "bytes": {"cache": disk_usage(cache), "drawings": disk_usage(drawings_dir),
                  "pages": disk_usage(data / "pages") if (data / "pages").exists() else 0},
    }
    (data / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log(f"done in {manifest['seconds']}s; manifest: {data / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
