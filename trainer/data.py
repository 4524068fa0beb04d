"""Training data (docs/ARCHITECTURE.md, "Training data"): folders of pages -> batches of gray input and color target.

Layouts, picked by :func:`build_datasets` (``layout='auto'`` looks at the folder):

* ``color``    a folder of color pages (recursive); the gray input is derived by :func:`manga_look`.
               A ``val/`` subfolder, if present, is the validation split.
* ``paired``   ``DIR/bw`` and ``DIR/color`` holding the same relative paths (nested folders too),
               matched by relative path without extension. ``DIR/val/bw`` + ``DIR/val/color`` if present.
* ``aligned``  pix2pix's A|B format: each image is two halves side by side; ``aligned_input`` says
               which half is the gray input (never auto-detected: pass ``layout='aligned'``).
* ``unpaired`` CycleGAN: gray pages in ``DIR/trainA`` and color pages in ``DIR/trainB``, or
               ``data=GRAY_DIR, data_b=COLOR_DIR``. Validation holds out color pages of B and derives
               their gray input, so the numbers compare with the paired layouts.

Every sample is drawn with a numpy Generator seeded by ``(seed, epoch, position)``, so a batch is a
function of the seed and the step alone: the same with 0 or 8 workers, and after a resume
(``trainer.sampling``). Without a gray twin, the gray input is the color page's manga look (``trainer.transforms``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from models.color import gray_to_l, normalize_l, rgb_to_ab_norm, rgb_to_gray
from models.toolbox.errors import first_line
from models.toolbox.folders import image_paths, keyed_images, page_key, pair_keyed
from models.toolbox.images import ImageDecodeError, on_paper, read_image

from .choices import ALIGNED_INPUTS, LAYOUTS
from .transforms import manga_look
# Re-exported: tests, eval and scripts import these from trainer.data.
from .sampling import EpochSampler, worker_init

__all__ = ["COMPOSED_EPOCH_PAGES", "DEFAULT_MAX_SCALE", "STATS_EPOCH", "DataError", "DataSplit", "EpochSampler",
           "PageDataset", "PageRef", "UnpairedDataset", "build_datasets", "detect_layout", "image_to_tensor",
           "list_images", "load_rgb", "make_batch", "manga_look", "split_by_source", "worker_init"]

# Pages a "composed" epoch holds: each is composed anew, so this only sets the validation cadence.
COMPOSED_EPOCH_PAGES = 2000
# Pages are scaled so their short side is size * U(1, max_scale) before a crop: crops see whole
# panels and lines about as thick as at the inference working size.
DEFAULT_MAX_SCALE = 2.0
# Stream ids that keep the per-sample random streams of train, validation and stats apart.
_VAL_STREAM = 0x7A1
STATS_EPOCH = 0x57A75


class DataError(ValueError):
    """A data folder or image that cannot be used; ``str(err)`` is one line naming the path."""


# ---------------------------------------------------------------------------- files and decoding
def list_images(root: str | Path, exclude: Sequence[Path] = ()) -> list[Path]:
    """Image files under ``root`` (recursive, hidden entries skipped), in natural order (2 before 10)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    return image_paths(root, exclude=exclude)  # the one folder walk (models.toolbox.folders)


def load_rgb(path: str | Path, min_side: int | None = None) -> Image.Image:
    """Decode an image as RGB, EXIF orientation applied, transparency composited on white paper.

    ``min_side`` lets JPEG decode at a reduced scale whose short side is still at least that.
    """
    try:
        page = read_image(path, min_side=min_side)
    except ImageDecodeError as e:
        raise DataError(f"{path}: cannot decode image ({e.reason})") from None
    return Image.fromarray(on_paper(page), "RGB")


def _check_header(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: not a readable image ({first_line(e)})") from None


def image_to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB -> float ``[3, H, W]`` in [0, 1]."""
    arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


# ---------------------------------------------------------------------------- batches
def make_batch(gray: torch.Tensor, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
    """The model contract's batch from gray input ``[B,1,H,W]`` and color target ``[B,3,H,W]``.

    ``L`` is the lightness of what the model sees (the gray page), ``ab`` the chroma of the target.
    """
    return {"L": normalize_l(gray_to_l(gray)), "gray": gray, "ab": rgb_to_ab_norm(rgb), "rgb": rgb}


# ---------------------------------------------------------------------------- geometry
def _plan(size_wh: tuple[int, int], size: int, rng: np.random.Generator | None, max_scale: float):
    """Target (w, h) after scaling and the crop box; random when ``rng`` is given, centered otherwise."""
    w, h = size_wh
    short = size * (float(rng.uniform(1.0, max_scale)) if rng is not None else 1.0)
    k = short / min(w, h)
    tw, th = max(size, round(w * k)), max(size, round(h * k))
    if rng is not None:
        x0, y0 = int(rng.integers(0, tw - size + 1)), int(rng.integers(0, th - size + 1))
    else:
        x0, y0 = (tw - size) // 2, (th - size) // 2
    return (tw, th), (x0, y0, x0 + size, y0 + size)


def _crop(img: Image.Image, target_wh, box) -> Image.Image:
    if img.size != tuple(target_wh):
        img = img.resize(target_wh, Image.Resampling.BICUBIC, reducing_gap=3.0)
    return img.crop(box)


# ---------------------------------------------------------------------------- datasets
@dataclass(frozen=True)
class PageRef:
    """One source page: its color target and, where the data has one, its gray input."""

    color: Path
    gray: Path | None = None
    aligned: str | None = None  # 'left' or 'right': which half of ``color`` is the gray input
    key: str = ""               # relative path without extension, for matching and splitting


class PageDataset(Dataset):
    """Crops of (gray input, color target) pages; items are ``{'gray': [1,S,S], 'rgb': [3,S,S]}``.

    Keys are ``(index, epoch, position)`` from :class:`EpochSampler` in training (random scale,
    crop, flip, manga look) or plain ints for validation (centered crop, a fixed manga look).
    """

    def __init__(self, pages: Sequence[PageRef], size: int, seed: int, *, use_manga_look: bool = True,
                 max_scale: float = DEFAULT_MAX_SCALE):
        self.pages = list(pages)
        self.size = size
        self.seed = seed
        self.use_manga_look = use_manga_look
        self.max_scale = max_scale

    def __len__(self) -> int:
        return len(self.pages)

    def _rng(self, key) -> tuple[int, np.random.Generator, bool]:
        if isinstance(key, (tuple, list)):
            index, epoch, pos = (int(k) for k in key)
            return index, np.random.default_rng([self.seed, epoch, pos]), True
        return int(key), np.random.default_rng([self.seed, _VAL_STREAM, int(key)]), False

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        index, rng, train = self._rng(key)
        page = self.pages[index]
        return self._sample(page, rng, train)

    def _sample(self, page: PageRef, rng: np.random.Generator, train: bool) -> dict[str, torch.Tensor]:
        size = self.size
        color = load_rgb(page.color, min_side=size if page.aligned is None else None)
        gray_img = None
        if page.aligned is not None:
            w, h = color.size
            left, right = color.crop((0, 0, w // 2, h)), color.crop((w // 2, 0, 2 * (w // 2), h))
            gray_img, color = (left, right) if page.aligned == "left" else (right, left)
        elif page.gray is not None:
            gray_img = load_rgb(page.gray, min_side=size)
        target_wh, box = _plan(color.size, size, rng if train else None, self.max_scale)
        flip = train and rng.random() < 0.5
        color = _crop(color, target_wh, box)
        rgb = image_to_tensor(color)
        if gray_img is not None:
            gray = rgb_to_gray(image_to_tensor(_crop(gray_img, target_wh, box))[None])[0]
        elif self.use_manga_look:
            gray = manga_look(rgb, rng)
        else:
            gray = rgb_to_gray(rgb[None])[0]
        if flip:
            rgb, gray = rgb.flip(-1), gray.flip(-1)
        return {"gray": gray.contiguous(), "rgb": rgb.contiguous()}


class UnpairedDataset(Dataset):
    """CycleGAN data: gray crops from pages A and color crops from unrelated pages B.

    An epoch walks ``max(len(A), len(B))`` items: A cycles by index, B is drawn at random.
    """

    def __init__(self, gray_pages: Sequence[Path], color_pages: Sequence[Path], size: int, seed: int,
                 max_scale: float = DEFAULT_MAX_SCALE):
        self.a = PageDataset([PageRef(color=p) for p in gray_pages], size, seed, use_manga_look=False,
                             max_scale=max_scale)
        self.b = PageDataset([PageRef(color=p) for p in color_pages], size, seed, use_manga_look=False,
                             max_scale=max_scale)
        self.pages = self.a.pages

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        index, epoch, pos = (int(k) for k in key)
        rng = np.random.default_rng([self.a.seed, epoch, pos])
        gray = self.a._sample(self.a.pages[index % len(self.a)], rng, True)["gray"]
        rgb = self.b._sample(self.b.pages[int(rng.integers(len(self.b)))], rng, True)["rgb"]
        return {"gray": gray, "rgb": rgb}


# ---------------------------------------------------------------------------- splits and layouts
def split_by_source(keys: Sequence[str], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (train, val): whole source files go to one side, chosen by a seeded hash of their key.

    ``round(val_fraction * n)`` files (at least 1 when there are 2 or more and the fraction is > 0)
    are held out; which ones depends only on the seed and the file names.
    """
    n = len(keys)
    if n < 2 or val_fraction <= 0:
        return list(range(n)), []
    k = min(n - 1, max(1, round(val_fraction * n)))
    ranked = sorted(range(n), key=lambda i: hashlib.sha1(f"{seed}:{keys[i]}".encode()).hexdigest())
    val = sorted(ranked[:k])
    held = set(val)
    return [i for i in range(n) if i not in held], val


def _color_pages(root: Path, exclude: Sequence[Path] = ()) -> list[PageRef]:
    return [PageRef(color=p, key=page_key(p, root)) for p in list_images(root, exclude)]


def _paired_pages(root: Path) -> list[PageRef]:
    bw_root, color_root = root / "bw", root / "color"
    for side in (bw_root, color_root):
        if not side.is_dir():
            raise DataError(f"{side}: not a folder")
    pairs, _, _ = pair_keyed(keyed_images(bw_root, strict=False), keyed_images(color_root, strict=False))
    if not pairs:
        raise DataError(f"{root}: no page in bw/ has a counterpart with the same relative path in color/")
    return [PageRef(color=color, gray=bw, key=k) for k, bw, color in pairs]


def _aligned_pages(root: Path, input_side: str, exclude: Sequence[Path] = ()) -> list[PageRef]:
    return [PageRef(color=p, aligned=input_side, key=page_key(p, root)) for p in list_images(root, exclude)]


def detect_layout(data: Path, data_b: Path | None = None) -> str:
    """The layout a data folder has: 'composed' (rendered drawings with an index.json, as
    ``scripts/fetch_data.py`` writes to data/drawings), 'unpaired', 'paired' or 'color' (aligned is never guessed)."""
    if data_b is None and (data / "index.json").is_file():
        return "composed"
    if data_b is not None or ((data / "trainA").is_dir() and (data / "trainB").is_dir()):
        return "unpaired"
    if (data / "bw").is_dir() and (data / "color").is_dir():
        return "paired"
    return "color"


@dataclass
class DataSplit:
    """What :func:`build_datasets` found: datasets and a one-line description."""

    train: Dataset
    val: PageDataset | None
    layout: str
    n_train_files: int
    n_val_files: int
    val_source: str = "split"   # 'split' (held out by file), 'folder' (DIR/val) or the --val-data path
    val_layout: str = ""

    def describe(self) -> str:
        if self.layout == "composed":
            return (f"pages composed on the fly from {self.n_train_files} training drawings, "
                    f"{self.n_val_files} validation pages ({self.val_source})")
        where = {"split": "held out by file", "folder": "the val/ folder"}.get(self.val_source, self.val_source)
        return (f"{self.layout} data: {self.n_train_files} training pages, {self.n_val_files} validation pages"
                f" ({where}{', ' + self.val_layout if self.val_layout and self.val_layout != self.layout else ''})")


def _spread(pages: list, limit: int | None) -> list:
    """At most ``limit`` pages, evenly spaced over the list (not just its first chapter)."""
    if not limit or len(pages) <= limit:
        return pages
    return [pages[i * len(pages) // limit] for i in range(limit)]


def build_datasets(data: str | Path, data_b: str | Path | None = None, *, layout: str = "auto", size: int = 256,
                   seed: int = 0, val_fraction: float = 0.1, use_manga_look: bool = True,
                   aligned_input: str = "left", max_scale: float = DEFAULT_MAX_SCALE,
                   val_limit: int | None = None, val_data: str | Path | None = None) -> DataSplit:
    """Find the pages under ``data`` (and ``data_b``) and build the training and validation datasets.

    Validation pages come from ``val_data`` when given (a color folder, or ``bw/`` + ``color/``
    pairs: real gray inputs), else from ``DIR/val``, else a split of the training files by source
    file. Every file is checked to be a readable image; a problem is a one-line :class:`DataError`.
    """
    data = Path(data)
    data_b = Path(data_b) if data_b is not None else None
    val_data = Path(val_data) if val_data is not None else None
    for folder in (data, data_b, val_data):
        if folder is not None and not folder.is_dir():
            raise DataError(f"{folder}: data folder not found")
    if layout not in LAYOUTS:
        raise DataError(f"{data}: unknown layout {layout!r} (one of {', '.join(LAYOUTS)})")
    if aligned_input not in ALIGNED_INPUTS:
        raise DataError(f"{data}: aligned input side must be 'left' or 'right', not {aligned_input!r}")
    if layout == "auto":
        layout = detect_layout(data, data_b)
    if layout == "composed":
        return _composed_datasets(data, size, seed, val_data, val_limit)

    def pages_in(root: Path, kind: str, exclude: Sequence[Path] = ()) -> list[PageRef]:
        if kind == "paired":
            return _paired_pages(root)
        if kind == "aligned":
            return _aligned_pages(root, aligned_input, exclude)
        return _color_pages(root, exclude)

    val_layout = ""
    if val_data is not None:
        val_layout = "aligned" if layout == "aligned" else ("paired" if detect_layout(val_data) == "paired" else "color")

    if layout == "unpaired":
        a_root, b_root = (data, data_b) if data_b is not None else (data / "trainA", data / "trainB")
        a_pages, b_pages = list_images(a_root), _color_pages(b_root)
        if not a_pages:
            raise DataError(f"{a_root}: no gray images found")
        if not b_pages:
            raise DataError(f"{b_root}: no color images found")
        if val_data is not None:
            train_b, val_pages, source = b_pages, pages_in(val_data, val_layout), str(val_data)
        else:
            train_idx, val_idx = split_by_source([p.key for p in b_pages], val_fraction, seed)
            train_b, val_pages, source = [b_pages[i] for i in train_idx], [b_pages[i] for i in val_idx], "split"
        val_pages = _spread(val_pages, val_limit)
        for p in a_pages + [r.color for r in train_b]:
            _check_header(p)
        _check_pages(val_pages)
        train = UnpairedDataset(a_pages, [r.color for r in train_b], size, seed, max_scale)
        val = PageDataset(val_pages, size, seed, use_manga_look=use_manga_look) if val_pages else None
        return DataSplit(train, val, layout, len(a_pages) + len(train_b), len(val_pages), source, val_layout)

    val_dir = data / "val"
    has_val_dir = val_dir.is_dir() and (layout != "paired" or detect_layout(val_dir) == "paired")
    if val_data is not None:
        train_pages, val_pages, source = pages_in(data, layout), pages_in(val_data, val_layout), str(val_data)
    elif has_val_dir:
        train_pages, val_pages, source = pages_in(data, layout, exclude=[val_dir]), pages_in(val_dir, layout), "folder"
    else:
        pages = pages_in(data, layout)
        train_idx, val_idx = split_by_source([p.key for p in pages], val_fraction, seed)
        train_pages, val_pages, source = [pages[i] for i in train_idx], [pages[i] for i in val_idx], "split"
    if not train_pages:
        raise DataError(f"{data}: no training images found ({layout} layout)")
    val_pages = _spread(val_pages, val_limit)
    _check_pages(train_pages + val_pages)
    train = PageDataset(train_pages, size, seed, use_manga_look=use_manga_look, max_scale=max_scale)
    val = PageDataset(val_pages, size, seed, use_manga_look=use_manga_look) if val_pages else None
    return DataSplit(train, val, layout, len(train_pages), len(val_pages), source, val_layout)


def _composed_datasets(data: Path, size: int, seed: int, val_data: Path | None,
                       val_limit: int | None) -> DataSplit:
    """Training pages composed on the fly from the train-split drawings of ``data/index.json``;
    validation from ``val_data`` (bw/ + color/ pairs), else composed from the val-split drawings."""
    from .pages import ComposedPages, drawings_from_index

    index = data / "index.json"
    if not index.is_file():
        raise DataError(f"{data}: no index.json of rendered drawings (run python scripts/fetch_data.py)")
    try:
        train_drawings = drawings_from_index(index, "train")
        val_drawings = drawings_from_index(index, "val")
    except (ValueError, KeyError) as e:
        raise DataError(f"{index}: not a drawings index ({e})") from None
    if not train_drawings:
        raise DataError(f"{index}: no training drawings")
    train = ComposedPages(train_drawings, size, seed, length=COMPOSED_EPOCH_PAGES)
    if val_data is not None:
        val_layout = detect_layout(val_data)
        pages = _paired_pages(val_data) if val_layout == "paired" else _color_pages(val_data)
        pages = _spread(pages, val_limit)
        _check_pages(pages)
        val = PageDataset(pages, size, seed, use_manga_look=True) if pages else None
        return DataSplit(train, val, "composed", len(train_drawings), len(pages), str(val_data), val_layout)
    val = ComposedPages(val_drawings, size, seed, length=val_limit or 64) if val_drawings else None
    return DataSplit(train, val, "composed", len(train_drawings), len(val) if val else 0, "split", "composed")


def _check_pages(pages: Sequence[PageRef]) -> None:
    for ref in pages:
        _check_header(ref.color)
        if ref.gray is not None:
            _check_header(ref.gray)
