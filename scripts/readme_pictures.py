"""Redraw the README's pictures from the sample chapter, with the default model.

    python scripts/readme_pictures.py
    # -> docs/images/sample_001_before_after.jpg, sample_007_before_after.jpg: the input, the default
    #    output (the safe palette), --palette vivid
    # -> docs/images/sample_001_hints.jpg: the input, the hint dots of examples/hints/001.png over a
    #    faded input, the default model alone, the default model with the hints
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mangacolor_cli import Colorizer  # noqa: E402

PANEL_HEIGHT = 600
GAP = 16


def chapter_page(name: str) -> np.ndarray:
    with zipfile.ZipFile(ROOT / "examples" / "sample_chapter.cbz") as z:
        return np.asarray(Image.open(io.BytesIO(z.read(name))).convert("L"))


def main() -> None:
    safe, vivid = Colorizer(), Colorizer(palette="vivid")
    for number in ("001", "007"):
        page = chapter_page(f"{number}.jpg")
        panels = [np.repeat(page[..., None], 3, axis=2), safe.colorize(page), vivid.colorize(page)]
        print(save_sheet(panels, ROOT / "docs" / "images" / f"sample_{number}_before_after.jpg"))
    page = chapter_page("001.jpg")
    hints = np.asarray(Image.open(ROOT / "examples" / "hints" / "001.png").convert("RGBA"))
    colorizer = safe
    plain = colorizer.colorize(page)
    hinted = colorizer.colorize(page, hints=hints)
    faded = np.repeat((255 - (255 - page.astype(np.float32)) * 0.3)[..., None], 3, axis=2)
    # The dots, grown so they show at the picture's scale.
    dots = Image.fromarray(hints).resize((page.shape[1] // 8, page.shape[0] // 8), Image.NEAREST)
    dots = np.asarray(dots.resize((page.shape[1], page.shape[0]), Image.NEAREST))
    alpha = dots[..., 3:4] / 255.0
    with_dots = faded * (1 - alpha) + dots[..., :3] * alpha
    panels = [np.repeat(page[..., None], 3, axis=2), with_dots, plain, hinted]
    print(save_sheet(panels, ROOT / "docs" / "images" / "sample_001_hints.jpg"))


def save_sheet(panels: list[np.ndarray], out: Path) -> Path:
    """Pages of one size side by side, PANEL_HEIGHT high with GAP between them, as a JPEG at ``out``."""
    h, w = panels[0].shape[:2]
    width = round(w * PANEL_HEIGHT / h)
    sheet = Image.new("RGB", (len(panels) * width + (len(panels) - 1) * GAP, PANEL_HEIGHT), "white")
    for i, panel in enumerate(panels):
        img = Image.fromarray(np.clip(panel, 0, 255).astype(np.uint8)).resize((width, PANEL_HEIGHT), Image.LANCZOS)
        sheet.paste(img, (i * (width + GAP), 0))
    sheet.save(out, quality=88)
    return out


if __name__ == "__main__":
    main()
