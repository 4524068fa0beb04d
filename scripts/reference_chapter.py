"""Build the reference-pages example and the README's picture of it (needs ``scripts/fetch_data.py`` first).

    python scripts/reference_chapter.py    # -> examples/reference_chapter.cbz, docs/images/reference_chapter.jpg

A four-page chapter composed like the sample chapter (``trainer.pages``: panels, screentones, balloons,
scan artefacts) from two comicgen characters (Dee and Priya, CC0) in poses and emotions drawn apart:
page 1 is in color (a chapter's opening color page), pages 2-4 are black and white.
``mangacolor colorize examples/reference_chapter.cbz`` colors pages 2-4 from page 1 (an archive's own color
pages are references by default).
The picture: the color page, a B/W page, the default model alone, and with the color page as reference.
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
from scripts.readme_pictures import save_sheet  # noqa: E402
from trainer.pages.composer import Drawing, DrawingCache, page_rng  # noqa: E402
from trainer.pages.dataset import compose_pair  # noqa: E402

CHARACTERS = ("dee", "priya")
SIZE = (1200, 1700)
# The page the README shows beside the color page 1.
PICTURE_PAGE = 4


def drawings(character: str, part: int) -> list[Drawing]:
    """Half of a character's figures (``part`` 0 or 1), so the color page and the B/W pages share no pose."""
    folder = ROOT / "data" / "drawings" / "comicgen"
    files = sorted((folder / "color").glob(f"{character}__*.png"))
    if not files:
        raise SystemExit("no comicgen drawings: run python scripts/fetch_data.py first")
    return [Drawing(f"comicgen/{f.stem}", str(f), str(folder / "line" / f.name)) for f in files[part::2]]


def build() -> list[tuple[str, Image.Image, Image.Image]]:
    cache = DrawingCache()
    pages = []
    for i in range(4):
        pool = [d for c in CHARACTERS for d in drawings(c, 0 if i == 0 else 1)]
        bw, color = compose_pair(pool, page_rng(7, "reference_chapter", i), cache, *SIZE, gray_rate=0.0)
        pages.append((f"{i + 1:03d}.jpg", bw, color))
    return pages


def main() -> None:
    pages = build()
    out = ROOT / "examples" / "reference_chapter.cbz"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for k, (name, bw, color) in enumerate(pages):
            buf = io.BytesIO()
            (color if k == 0 else bw).save(buf, format="JPEG", quality=85)
            z.writestr(name, buf.getvalue())
    print(out)
    print(picture(out))


def picture(archive: Path) -> str:
    """The README's picture: the color page 1, B/W page PICTURE_PAGE, the model alone, with page 1 as
    reference; the pages as the archive holds them (JPEG), as ``mangacolor colorize`` reads them."""
    with zipfile.ZipFile(archive) as z:
        reference = np.asarray(Image.open(io.BytesIO(z.read("001.jpg"))).convert("RGB"))
        page = np.asarray(Image.open(io.BytesIO(z.read(f"{PICTURE_PAGE:03d}.jpg"))).convert("L"))
    colorizer = Colorizer()
    plain = colorizer.colorize(page)
    referenced = colorizer.colorize(page, references=[reference])
    panels = [reference, np.repeat(page[..., None], 3, axis=2), plain, np.asarray(referenced)]
    return str(save_sheet(panels, ROOT / "docs" / "images" / "reference_chapter.jpg"))


if __name__ == "__main__":
    main()
