"""Exact line-art/color pair sources for scripts/fetch_data.py: comicgen and DiceBear.

comicgen (npm `comicgen`, characters CC0): four hand-inked characters are drawn twice with the
same ink, a black-and-white version with gray flats (`dee`, `dey`, `priya`, `ringo`) and a color
version (`deenuova`, `deynuovo`, `priyanuova`, `ringonuovo`). A figure is an emotion SVG (the head)
overlaid on a pose SVG (the body), both drawn in a 500x600 viewBox; comicgen's own template
(`svg/dee/index.svg`) places the emotion first and the pose on top, each as a nested <svg> of
the full figure box. `compose_figure` does the same and writes one SVG per figure and side, so
the renderer of fetch_data.py takes it like any other file.

DiceBear (npm `@dicebear/*`): `scripts/dicebear_render.mjs` renders a seed in color and the same
seed with every color option set to white (outlines and dark features stay ink) as its line art.
Its PRNG draws once per option whatever the color list holds, so both have the same shapes.

Both return `Pair` tuples; fetch_data.py turns them into its `Candidate`s. A pair's `group` is the
unit of the train/val split (a character pose for comicgen, a seed for DiceBear).
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Callable, NamedTuple

REPO = Path(__file__).resolve().parent.parent
DICEBEAR_SCRIPT = REPO / "scripts" / "dicebear_render.mjs"

COMICGEN_VERSION = "1.9.9"
# black-and-white (gray-flat) character -> its color twin with the same ink
COMICGEN_CHARACTERS = {"dee": "deenuova", "dey": "deynuovo", "priya": "priyanuova", "ringo": "ringonuovo"}
COMICGEN_PER_CHARACTER = 600
COMICGEN_SIZE = (500, 600)

DICEBEAR_VERSION = "9.4.3"
DICEBEAR_PER_STYLE = 1500
# style -> how its line art is made.
#   keep_dark: color options set to black in the line art (inked in manga), not white
#   line: False when the style cannot give line art (lorelei's hair has no outline): color only
#   color: options of the color render that replace the style's defaults
SKIN = ["f2d3b1", "ecad80", "d08b5b", "9e5622", "763900", "ffdbb4"]
HAIR = ["ac6511", "cb6820", "ab2a18", "e5d7a3", "b9a05f", "796a45", "6a4e35", "562306", "0e0e0e",
        "afafaf", "3eac2c", "85c2c6", "dba3be", "592454"]
DICEBEAR_STYLES: dict[str, dict] = {
    "adventurer": {"license": "CC-BY-4.0 (design by Lisa Wischofsky); code MIT",
                   "attribution": "Adventurer by Lisa Wischofsky, CC BY 4.0, via DiceBear"},
    "open-peeps": {"license": "CC0-1.0 (design by Pablo Stanley); code MIT",
                   "attribution": "Open Peeps by Pablo Stanley, CC0, via DiceBear"},
    # Most micah hair styles have no outline: solid black hair (as manga inks it) keeps the shape.
    "micah": {"license": "CC-BY-4.0 (design by Micah Lanier); code MIT",
              "attribution": "Avatar Illustration System by Micah Lanier, CC BY 4.0, via DiceBear",
              "keep_dark": ("hairColor", "glassesColor")},
    # lorelei is drawn black on white by default; colored here (skin, hair), and color-only.
    "lorelei": {"license": "CC0-1.0 (design by Lisa Wischofsky); code MIT",
                "attribution": "Lorelei by Lisa Wischofsky, CC0, via DiceBear",
                "line": False, "color": {"skinColor": SKIN, "hairColor": HAIR,
                                         "hairAccessoriesColor": ["e78276", "fdea6b", "78e185", "8fa7df",
                                                                  "e279c7"]}},
}


class Pair(NamedTuple):
    """One figure to render: its color SVG, its line-art SVG (or None) and its split group."""

    source: str
    key: str
    category: str
    color_svg: str
    line_svg: str | None
    group: str


def _log(msg: str) -> None:
    print(f"[fetch] {msg}", flush=True)


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"`{' '.join(cmd)}` failed: {tail[0]}")
    return proc.stdout


def _order(salt: str) -> bytes:
    return hashlib.sha256(salt.encode()).digest()


def _write_if_changed(path: Path, text: str) -> None:
    if path.exists() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


# ---------------------------------------------------------------- comicgen

_PROLOG = re.compile(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<!--.*?-->", re.S)


def svg_part(text: str, prefix: str) -> str:
    """One part SVG as an element to nest: prolog and comments dropped, its ids prefixed.

    Parts reuse ids ("a", "b" for their masks), so an emotion's mask would hide the pose's paths
    when both sit in one document; every id and every reference to it gets `prefix`.
    """
    body = _PROLOG.sub("", text).strip()
    if not body.startswith("<svg"):
        raise ValueError("not an SVG document")
    body = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', body)
    body = re.sub(r"url\(\s*#([^)\s]+)\s*\)", lambda m: f"url(#{prefix}{m.group(1)})", body)
    body = re.sub(r'(href)="#([^"]+)"', lambda m: f'{m.group(1)}="#{prefix}{m.group(2)}"', body)
    return body


def compose_figure(emotion_svg: str, pose_svg: str, size: tuple[int, int] = COMICGEN_SIZE) -> str:
    """One SVG of a comicgen figure: the emotion (head) under the pose (body), as comicgen draws it.

    Each part keeps its own viewBox as a nested <svg> filling the figure box, like comicgen's
    `<svg viewBox="0 0 500 600" width="500" height="600">` wrapper around each part.
    """
    w, h = size
    parts = [svg_part(emotion_svg, "e-"), svg_part(pose_svg, "p-")]
    inner = "".join(f'<svg x="0" y="0" width="{w}" height="{h}" viewBox="0 0 {w} {h}">{p}</svg>'
                    for p in parts)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'width="{w}" height="{h}" viewBox="0 0 {w} {h}">{inner}</svg>\n')


def comicgen_combos(svg_root: Path, bw: str, color: str) -> list[tuple[str, str, str]]:
    """(angle, pose, emotion) figures that both the black-and-white and the color character have."""
    out = []
    for angle_dir in sorted(p for p in (svg_root / bw).iterdir() if p.is_dir()):
        angle = angle_dir.name
        twin = svg_root / color / angle
        names = {}
        for part in ("emotion", "pose"):
            a = {p.stem for p in (angle_dir / part).glob("*.svg")}
            b = {p.stem for p in (twin / part).glob("*.svg")} if twin.is_dir() else set()
            names[part] = sorted(a & b)
        out += [(angle, pose, emo) for pose in names["pose"] for emo in names["emotion"]]
    return out


def comicgen_pairs(root: Path, per_character: int | None = COMICGEN_PER_CHARACTER,
                   seed: int = 0) -> list[Pair]:
    """Compose comicgen figures (both sides) into root/figures and list them as pairs.

    At most `per_character` emotion x pose figures per character, picked by a seeded hash so
    every pose and emotion appears; figures whose composed SVGs repeat another's are skipped.
    """
    svg_root = root / "package" / "svg"
    out_dir = root / "figures"
    pairs = []
    for bw, color in COMICGEN_CHARACTERS.items():
        combos = comicgen_combos(svg_root, bw, color)
        combos.sort(key=lambda c: _order(f"comicgen:{seed}:{bw}:{'/'.join(c)}"))
        seen: set[str] = set()
        chosen = 0
        for angle, pose, emotion in combos:
            if per_character is not None and chosen >= per_character:
                break
            texts = {}
            for side, char in (("line", bw), ("color", color)):
                emo = (svg_root / char / angle / "emotion" / f"{emotion}.svg").read_text()
                body = (svg_root / char / angle / "pose" / f"{pose}.svg").read_text()
                texts[side] = compose_figure(emo, body)
            digest = hashlib.sha256((texts["line"] + texts["color"]).encode()).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            key = f"{bw}__{angle}__{pose}__{emotion}"
            paths = {side: out_dir / side / f"{key}.svg" for side in texts}
            for side, text in texts.items():
                _write_if_changed(paths[side], text)
            pairs.append(Pair("comicgen", key, bw, str(paths["color"]), str(paths["line"]),
                              f"{bw}/{angle}/{pose}"))
            chosen += 1
    return sorted(pairs, key=lambda p: p.key)


# ---------------------------------------------------------------- DiceBear

def is_dark(hex_color: str, threshold: float = 0.25) -> bool:
    """True for a hex color (rrggbb) darker than `threshold` in Rec. 601 luma (0..1)."""
    h = hex_color.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    r, g, b = (int(h[i:i + 2], 16) / 255 for i in (0, 2, 4))
    return 0.299 * r + 0.587 * g + 0.114 * b < threshold


def white_options(color_defaults: dict[str, list[str]], keep_dark: tuple[str, ...] = ()) -> dict:
    """The options of a style's line art: every color option white, ink kept dark.

    An option whose default colors are all dark (eyes, brows, mouth lines) is ink and keeps
    them; an option in `keep_dark` becomes black; every other one becomes white ("ffffff").
    """
    out = {}
    for name, colors in color_defaults.items():
        if name == "backgroundColor":
            continue
        if name in keep_dark:
            out[name] = ["000000"]
        elif colors and all(is_dark(c) for c in colors):
            out[name] = list(colors)
        else:
            out[name] = ["ffffff"]
    return out


def dicebear_specs(version: str = DICEBEAR_VERSION) -> list[str]:
    """The exact npm specs the DiceBear sources install: core plus the four styles."""
    return [f"@dicebear/core@{version}"] + [f"@dicebear/{s}@{version}" for s in DICEBEAR_STYLES]


_REPORTED: set[Path] = set()  # install folders already logged (one install serves four sources)


def fetch_dicebear(dest: Path, version: str = DICEBEAR_VERSION) -> Path:
    """npm install the DiceBear core and styles (exact versions) into dest, once."""
    specs = dicebear_specs(version)
    done = dest / ".installed"
    if done.exists() and done.read_text().split() == specs:
        if dest not in _REPORTED:
            _log(f"npm {' '.join(specs)}: already installed in {dest}")
            _REPORTED.add(dest)
        return dest
    if not shutil.which("npm") or not shutil.which("node"):
        raise RuntimeError("npm/node not found: install Node.js to fetch the DiceBear sources")
    dest.mkdir(parents=True, exist_ok=True)
    _log(f"npm install --prefix {dest} {' '.join(specs)}")
    _run(["npm", "install", "--prefix", str(dest), "--no-audit", "--no-fund", "--save-exact",
          "--no-package-lock", *specs])
    done.write_text("\n".join(specs) + "\n")
    return dest


def dicebear_version(root: Path, style: str) -> str:
    """The installed version of a DiceBear style package."""
    pkg = root / "node_modules" / "@dicebear" / style / "package.json"
    return json.loads(pkg.read_text())["version"]


def dicebear_schema(root: Path, styles: list[str]) -> dict[str, dict[str, list[str]]]:
    """Each style's color options and their default colors, read from its installed schema."""
    out = _run(["node", str(DICEBEAR_SCRIPT), str(root), "schema", *styles])
    return json.loads(out)


def dicebear_options(style: str, defaults: dict[str, list[str]]) -> tuple[dict, dict | None]:
    """(color options, line-art options or None) of one style."""
    cfg = DICEBEAR_STYLES[style]
    color = dict(cfg.get("color", {}))
    if not cfg.get("line", True):
        return color, None
    return color, white_options({**defaults, **color}, tuple(cfg.get("keep_dark", ())))


def dicebear_seeds(style: str, count: int) -> list[str]:
    """The deterministic seeds of a style: style-00000, style-00001, ..."""
    return [f"{style}-{i:05d}" for i in range(count)]


def dicebear_pairs(style: str, root: Path, count: int = DICEBEAR_PER_STYLE,
                   schema: Callable[[Path, list[str]], dict] = dicebear_schema) -> list[Pair]:
    """Render (once) and list `count` seeds of one DiceBear style as pairs (lorelei: color only)."""
    out_dir = root / "svg" / style
    seeds = dicebear_seeds(style, count)
    color_opts, line_opts = dicebear_options(style, schema(root, [style])[style])
    settings = {"style": style, "color_options": color_opts, "line_options": line_opts}
    stamp = out_dir / "options.json"
    if stamp.exists() and json.loads(stamp.read_text()) != settings:
        _log(f"dicebear {style}: options changed, rewriting its SVGs")
        shutil.rmtree(out_dir)
    missing = [s for s in seeds if not (out_dir / "color" / f"{s}.svg").exists()
               or (line_opts is not None and not (out_dir / "line" / f"{s}.svg").exists())]
    if missing:
        out_dir.mkdir(parents=True, exist_ok=True)
        _log(f"dicebear {style}: node {DICEBEAR_SCRIPT.name} renders {len(missing)} seeds to SVG")
        job = out_dir / "job.json"
        job.write_text(json.dumps({**settings, "seeds": missing, "out": str(out_dir)}))
        _run(["node", str(DICEBEAR_SCRIPT), str(root), "render", str(job)])
        stamp.write_text(json.dumps(settings))
    pairs = []
    for s in seeds:
        line = str(out_dir / "line" / f"{s}.svg") if line_opts is not None else None
        pairs.append(Pair(f"dicebear-{style}", s, style, str(out_dir / "color" / f"{s}.svg"), line, s))
    return pairs
