"""What the training corpus is drawn from and how it is fetched (``scripts/fetch_data.py``, steps 1 and the
candidates of 2): the sources (registry packages, their licenses and how each is read), the download with
apt-get download / npm pack (no install), and each source's candidate drawings."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from scripts import pair_sources

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
