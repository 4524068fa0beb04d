"""Step 2 of ``scripts/fetch_data.py``: each candidate's SVG (and its line art) rendered to an RGBA PNG with
rsvg-convert (or cairosvg), in parallel, white backdrops cleared, trimmed to content, with the statistics
the filter reads (coverage, colored share, shape hash)."""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image

from scripts.corpus_sources import SOURCES, Candidate, log, run

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
