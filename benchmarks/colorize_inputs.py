"""What ``bench_colorize.py`` measures on: the chapter (gray 1200x1700 JPEG pages of line art with
screentones, as a CBZ) and the model files (the one asked for, the first shipped default from git
history, or a random-weight U-Net)."""

from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]

PAGE_W, PAGE_H = 1200, 1700
# The first shipped default model (commit fe5dd0f, mangacolor_cli/weights/default.onnx), from git history.
V1_COMMIT, V1_PATH = "fe5dd0f", "mangacolor_cli/weights/default.onnx"


def model_from_history(name: str, folder: Path) -> str:
    """``v1`` -> the first shipped default model, written from git history into ``folder``; else ``name``."""
    if name != "v1":
        return name
    out = folder / "default_v1.onnx"
    if not out.exists():
        blob = subprocess.run(["git", "-C", str(ROOT), "show", f"{V1_COMMIT}:{V1_PATH}"], capture_output=True, check=True)
        out.write_bytes(blob.stdout)
    return str(out)


def model_working_size(model: str | None) -> int | None:
    """The working size a model file carries (ONNX metadata, checkpoint meta), or None."""
    if not model or not Path(model).is_file():
        return None
    try:
        if model.endswith(".onnx"):
            from mangacolor_cli.engine.backends import read_onnx_meta
            size = read_onnx_meta(model).get("working_size", "")
            return int(size) if str(size).isdigit() else None
        from models import read_checkpoint
        return int(read_checkpoint(model).get("meta", {}).get("working_size") or 0) or None
    except Exception:
        return None


# ---------------------------------------------------------------------------- the chapter
def _screentone(size: tuple[int, int], pitch: int, radius: float, rng: np.random.Generator) -> Image.Image:
    """A halftone dot pattern (black dots on white) of the given pitch, slightly rotated like a real tone."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = np.deg2rad(rng.uniform(15, 45))
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    du = (u % pitch) - pitch / 2
    dv = (v % pitch) - pitch / 2
    dots = (du * du + dv * dv) < radius * radius
    return Image.fromarray(np.where(dots, 0, 255).astype(np.uint8), "L")


def draw_manga_page(seed: int) -> Image.Image:
    """A 1200x1700 gray page: panels with thick borders, screentoned shapes, hatching, speed lines, balloons."""
    rng = np.random.default_rng(seed)
    page = Image.new("L", (PAGE_W, PAGE_H), 255)
    d = ImageDraw.Draw(page)
    margin, gutter = 60, 24
    rows = int(rng.integers(3, 5))
    heights = rng.dirichlet(np.ones(rows)) * (PAGE_H - 2 * margin - gutter * (rows - 1))
    y = margin
    for row_h in heights:
        cols = int(rng.integers(1, 4))
        widths = rng.dirichlet(np.ones(cols)) * (PAGE_W - 2 * margin - gutter * (cols - 1))
        x = margin
        for col_w in widths:
            box = (int(x), int(y), int(x + col_w), int(y + row_h))
            _draw_panel(page, d, box, rng)
            d.rectangle(box, outline=0, width=5)
            x += col_w + gutter
        y += row_h + gutter
    return page


def _draw_panel(page: Image.Image, d: ImageDraw.ImageDraw, box: tuple[int, int, int, int],
                rng: np.random.Generator) -> None:
    x0, y0, x1, y1 = box
    w, h = max(x1 - x0, 8), max(y1 - y0, 8)
    if rng.random() < 0.5:  # speed lines from a vanishing point
        cx, cy = x0 + w * rng.uniform(0.3, 0.7), y0 + h * rng.uniform(0.3, 0.7)
        for angle in rng.uniform(0, 2 * np.pi, 60):
            r0, r1 = rng.uniform(0.3, 0.5) * min(w, h), max(w, h)
            d.line([(cx + r0 * np.cos(angle), cy + r0 * np.sin(angle)),
                    (cx + r1 * np.cos(angle), cy + r1 * np.sin(angle))], fill=0, width=1)
    for _ in range(int(rng.integers(2, 6))):  # screentoned shapes with ink outlines
        sw, sh = int(rng.uniform(0.2, 0.6) * w), int(rng.uniform(0.2, 0.6) * h)
        sx, sy = x0 + int(rng.uniform(0, w - sw)), y0 + int(rng.uniform(0, h - sh))
        mask = Image.new("L", (sw, sh), 0)
        shape = ImageDraw.Draw(mask)
        (shape.ellipse if rng.random() < 0.5 else shape.rectangle)([0, 0, sw - 1, sh - 1], fill=255)
        tone = _screentone((sw, sh), int(rng.integers(4, 9)), rng.uniform(1.0, 2.5), rng)
        page.paste(tone, (sx, sy), mask)
        d.ellipse([sx, sy, sx + sw, sy + sh], outline=0, width=int(rng.integers(2, 5)))
    for _ in range(int(rng.integers(5, 20))):  # hatching
        hx, hy = x0 + rng.uniform(0, w), y0 + rng.uniform(0, h)
        for k in range(8):
            d.line([(hx + 4 * k, hy), (hx + 4 * k + 20, hy + 30)], fill=int(rng.integers(0, 80)), width=1)
    if rng.random() < 0.7:  # a speech balloon with "text"
        bw, bh = int(w * 0.35), int(h * 0.3)
        bx, by = x0 + int(rng.uniform(0, w - bw)), y0 + int(rng.uniform(0, h - bh))
        d.ellipse([bx, by, bx + bw, by + bh], fill=255, outline=0, width=3)
        for line in range(3):
            ly = by + bh * (0.3 + 0.2 * line)
            d.line([(bx + bw * 0.25, ly), (bx + bw * 0.75, ly)], fill=30, width=6)


def build_chapter(folder: Path, pages: int, quality: int = 85) -> Path:
    """``pages`` JPEG pages in a stored CBZ (as scans usually come); returns its path."""
    path = folder / f"chapter-{pages}p.cbz"
    if path.exists():
        return path
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(pages):
            buf = io.BytesIO()
            draw_manga_page(i).save(buf, "JPEG", quality=quality)
            zf.writestr(f"{i + 1:03d}.jpg", buf.getvalue())
    return path


def chapter_pages(path: Path) -> list[bytes]:
    with zipfile.ZipFile(path) as zf:
        return [zf.read(name) for name in sorted(zf.namelist())]


# ---------------------------------------------------------------------------- the model
def prepare_model(args, folder: Path) -> dict:
    """The model files each backend loads: {'torch': .pt or None, 'onnx': .onnx, 'source': description}."""
    import torch

    import models
    from mangacolor_cli.engine.backends import export_onnx
    from mangacolor_cli.engine.runner import DEFAULT_MODEL

    model = args.model or (str(DEFAULT_MODEL) if DEFAULT_MODEL.is_file() else None)
    model = model_from_history(model, folder) if model else None
    if model and model.endswith(".onnx"):
        return {"torch": None, "onnx": model, "source": model}
    if model:
        net = models.load_model(model)
        pt = model
    else:
        torch.manual_seed(0)
        net = models.create("unet", base=args.base, depth=args.depth, dropout=0.1).eval()
        pt = str(folder / f"unet-b{args.base}-d{args.depth}.pt")
        models.save_checkpoint(pt, net, meta={"working_size": args.size})
    onnx_path = folder / (Path(pt).stem + ".onnx")
    if not onnx_path.exists():
        export_onnx(net.eval(), onnx_path, working_size=args.size)
    source = model or f"random-weight unet base={args.base} depth={args.depth}"
    return {"torch": pt, "onnx": str(onnx_path), "source": source}
