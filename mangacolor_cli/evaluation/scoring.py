"""Scoring (docs/ARCHITECTURE.md, "Metrics"): predictions or models against color pages, beside a gray baseline.

Two ways in:
  * ``evaluate_dirs(pred_dir, target_dir)`` scores existing outputs, paired by relative path
    (extension-insensitive); unpaired files on either side are listed, never silently dropped.
  * ``evaluate_models([m1, m2], data)`` runs each model (checkpoint or ONNX, through the Colorizer)
    on a paired set (``data/bw`` + ``data/color``) or on color pages (gray derived from them).

Either returns an ``EvalResult``: per-image metrics for every system (the models or the predictions,
and the **gray baseline**: the gray input itself taken as the prediction), their means, the pairs
that could not be scored and small previews for grids and the HTML report. ``reports`` writes them.
"""

from __future__ import annotations

import io
import os
import time
import zlib
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from models.color import rgb_to_gray
from trainer import metrics as M
from trainer.metrics import METRICS
from trainer.data import manga_look as training_manga_look
from trainer.device import DeviceError, resolve_device
from trainer.images import (IMAGE_EXTENSIONS, ImageDecodeError, natural_path_key, on_paper, read_image, tensor_to_uint8,
                            uint8_to_tensor)

from ..errors import InputError, MangacolorError, UsageError

GRAY_BASELINE = "gray baseline"
# SSIM's 7x7 window: a smaller page is listed as not scored, never a traceback.
MIN_SCORED_SIDE = 7
MANGA_LOOK_SEED = 1234
PREVIEW_HEIGHT = 224
THUMB_HEIGHT = 88
MAX_REPORT_THUMBS = 400

ProgressFn = Callable[[str, int, int], None]


# ------------------------------------------------------------------------------------ results
@dataclass
class EvalResult:
    """Everything an eval measured. ``scores[system][key]`` is a dict of metric -> float."""

    systems: list[str]
    keys: list[str]
    scores: dict[str, dict[str, dict[str, float]]]
    summary: dict[str, dict[str, float]]
    missing_predictions: list[str] = field(default_factory=list)
    missing_targets: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    # Previews as encoded JPEG bytes: ``previews[key][column]`` for the sample keys (grid) and
    # ``thumbs[key][column]`` for the report's per-image rows; columns are 'input', systems, 'target'.
    sample_keys: list[str] = field(default_factory=list)
    previews: dict[str, dict[str, bytes]] = field(default_factory=dict)
    thumbs: dict[str, dict[str, bytes]] = field(default_factory=dict)
    description: str = ""

    @property
    def models(self) -> list[str]:
        """The scored systems other than the gray baseline."""
        return [s for s in self.systems if s != GRAY_BASELINE]


# ------------------------------------------------------------------------------------ files and pairing
def image_files(root: Path) -> dict[str, Path]:
    """Images under ``root`` keyed by relative path without extension (posix). Two files with the
    same key (``01.png`` and ``01.jpg``) are ambiguous: an InputError naming both."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in IMAGE_EXTENSIONS or not path.is_file():
            continue
        key = path.relative_to(root).with_suffix("").as_posix()
        if key in found:
            raise InputError(f"{path}: same page as {found[key]} (pairing ignores the extension)")
        found[key] = path
    return found


def pair_files(left_root: Path, right_root: Path) -> tuple[list[tuple[str, Path, Path]], list[str], list[str]]:
    """Pair images of two folders by relative path, extension-insensitive.

    Returns ``(pairs, only_left, only_right)``: pairs as ``(key, left, right)`` in natural order, and
    the keys found on one side only.
    """
    for root in (left_root, right_root):
        if not root.is_dir():
            raise InputError(f"{root}: {'not a folder' if root.exists() else 'no such folder'}")
    left, right = image_files(left_root), image_files(right_root)
    keys = sorted(left.keys() & right.keys(), key=natural_path_key)
    pairs = [(k, left[k], right[k]) for k in keys]
    only_left = sorted(left.keys() - right.keys(), key=natural_path_key)
    only_right = sorted(right.keys() - left.keys(), key=natural_path_key)
    return pairs, only_left, only_right


def read_rgb(path: Path) -> np.ndarray:
    """An image file as ``uint8 [H, W, 3]`` sRGB through the one image loader (``trainer.images``),
    transparency composited on white paper as the training data is."""
    return on_paper(_read(path))


def read_gray(path: Path) -> np.ndarray:
    """An image file as ``uint8 [H, W]`` gray (a color file gives its luminance, ``rgb_to_gray``)."""
    page = _read(path)
    if page.is_gray and page.alpha is None and page.pixels.dtype == np.uint8:
        return page.pixels
    return tensor_to_uint8(rgb_to_gray(uint8_to_tensor(on_paper(page))[None])[0])


def _read(path: Path):
    try:
        return read_image(path)
    except ImageDecodeError as e:
        raise InputError(str(e)) from None


def derive_gray(rgb: np.ndarray, manga_look: bool = False, key: str = "") -> np.ndarray:
    """The gray input for a color page ``uint8 [H, W, 3]`` -> ``uint8 [H, W]``: its luminance
    (``models.color.rgb_to_gray``), or with ``manga_look`` the training data's manga look transform,
    seeded by the page's key so every run and every model sees the same input."""
    x = uint8_to_tensor(rgb)[None]
    if manga_look:
        gray = training_manga_look(x, np.random.default_rng([MANGA_LOOK_SEED, zlib.crc32(key.encode("utf-8"))]))
    else:
        gray = rgb_to_gray(x)
    return tensor_to_uint8(gray[0])


# ------------------------------------------------------------------------------------ scoring
def metric_device(device: str) -> torch.device:
    """``--device`` -> where the metrics run (``trainer.device.resolve_device``); a bad one is a UsageError."""
    try:
        return resolve_device(device)
    except DeviceError as e:
        raise UsageError(str(e)) from None


class BatchScorer:
    """Collects (key, prediction, target) and scores them in same-size batches on ``device``."""

    def __init__(self, device: torch.device | None = None, batch_size: int = 8):
        self.device = device or resolve_device("auto")
        self.batch_size = batch_size
        self._pending: dict[tuple, list[tuple[str, torch.Tensor, torch.Tensor]]] = defaultdict(list)
        self.scores: dict[str, dict[str, float]] = {}

    def add(self, key: str, pred: np.ndarray, target: np.ndarray) -> None:
        p, t = uint8_to_tensor(pred), uint8_to_tensor(target)
        if p.shape[0] == 1:
            p = p.expand(3, -1, -1)
        shape = tuple(t.shape)
        self._pending[shape].append((key, p, t))
        if len(self._pending[shape]) >= self.batch_size:
            self._flush(shape)

    def finish(self) -> dict[str, dict[str, float]]:
        for shape in list(self._pending):
            self._flush(shape)
        return self.scores

    def _flush(self, shape: tuple) -> None:
        items = self._pending.pop(shape, [])
        if not items:
            return
        preds = torch.stack([p for _, p, _ in items]).to(self.device)
        targets = torch.stack([t for _, _, t in items]).to(self.device)
        values = {k: v.cpu().tolist() for k, v in M.compute_all(preds, targets).items()}
        for i, (key, _, _) in enumerate(items):
            self.scores[key] = {k: float(values[k][i]) for k in METRICS}


def summarize(scores: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean of every metric over the images (PSNR's mean is ``inf`` if any image is identical)."""
    out: dict[str, float] = {"n": len(scores)}
    for col in METRICS:
        vals = [s[col] for s in scores.values()]
        out[col] = float(np.mean(vals)) if vals else float("nan")
    return out


def _encode_jpeg(img: np.ndarray, height: int) -> bytes:
    from PIL import Image

    im = Image.fromarray(img).convert("RGB")
    w = max(1, round(im.width * height / im.height))
    im = im.resize((w, height), Image.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def choose_samples(keys: Sequence[str], n: int) -> list[str]:
    """``n`` keys spread evenly over ``keys`` (deterministic)."""
    if n <= 0 or not keys:
        return []
    if n >= len(keys):
        return list(keys)
    idx = np.linspace(0, len(keys) - 1, n).round().astype(int)
    return [keys[i] for i in sorted(set(idx.tolist()))]


class _Thumbs:
    """Small previews for the report's per-page rows, encoded as pages stream past (first ``limit`` pages)."""

    def __init__(self, keys: Sequence[str], limit: int):
        self._keys = set(list(keys)[:limit])
        self.thumbs: dict[str, dict[str, bytes]] = defaultdict(dict)

    def add(self, key: str, column: str, img: np.ndarray) -> None:
        if key in self._keys:
            self.thumbs[key][column] = _encode_jpeg(img, THUMB_HEIGHT)


def _sample_previews(keys: Sequence[str], samples: int,
                     render: Callable[[str], dict[str, np.ndarray]]) -> tuple[list[str], dict[str, dict[str, bytes]]]:
    # Samples are drawn from the pages that scored, so a failed page never leaves a hole in the grid;
    # re-reading (and re-running) a handful of pages is cheaper than keeping every page's preview.
    chosen = choose_samples(list(keys), samples)
    return chosen, {k: {col: _encode_jpeg(img, PREVIEW_HEIGHT) for col, img in render(k).items()} for k in chosen}


def _check_same_size(key: str, pred_path: Path, pred: np.ndarray, target_path: Path, target: np.ndarray) -> None:
    if pred.shape[:2] != target.shape[:2]:
        ph, pw = pred.shape[:2]
        th, tw = target.shape[:2]
        raise InputError(f"{pred_path}: {pw}x{ph} but its target {target_path} is {tw}x{th}")
    if min(target.shape[:2]) < MIN_SCORED_SIDE:
        th, tw = target.shape[:2]
        raise InputError(f"{target_path}: {tw}x{th} is too small to score (SSIM needs at least "
                         f"{MIN_SCORED_SIDE}x{MIN_SCORED_SIDE})")


def _threaded(fn, items: Iterable, workers: int = 2) -> Iterator:
    # Decoding in threads beside the metric math; results keep input order.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(fn, items)


def evaluate_dirs(pred_dir: str | os.PathLike, target_dir: str | os.PathLike, *, samples: int = 4,
                  report_thumbs: int = MAX_REPORT_THUMBS, device: torch.device | None = None,
                  batch_size: int = 8, progress: ProgressFn | None = None) -> EvalResult:
    """Score the images in ``pred_dir`` against ``target_dir`` (paired by relative path).

    The gray baseline is the target's luminance (``models.color.rgb_to_gray``) taken as the prediction.
    A pair that cannot be read or differs in size is listed in ``errors`` and left out of the means.
    """
    pred_root, target_root = Path(pred_dir), Path(target_dir)
    pairs, only_pred, only_target = pair_files(pred_root, target_root)
    system = pred_root.name or "pred"
    if system == GRAY_BASELINE:
        system = "pred"
    scorer, baseline = BatchScorer(device, batch_size), BatchScorer(device, batch_size)
    thumbs = _Thumbs([k for k, _, _ in pairs], report_thumbs)
    errors: list[tuple[str, str]] = []

    def load(pair):
        key, p, t = pair
        try:
            pred, target = read_rgb(p), read_rgb(t)
            _check_same_size(key, p, pred, t, target)
            return key, pred, target, None
        except MangacolorError as e:
            return key, None, None, str(e)

    done = 0
    for key, pred, target, err in _threaded(load, pairs):
        done += 1
        if err is None:
            gray = derive_gray(target)
            scorer.add(key, pred, target)
            baseline.add(key, gray, target)
            for column, img in (("input", gray), (system, pred), ("target", target)):
                thumbs.add(key, column, img)
        else:
            errors.append((key, err))
        if progress:
            progress(system, done, len(pairs))
    scores = {system: scorer.finish(), GRAY_BASELINE: baseline.finish()}
    ok_keys = [k for k, _, _ in pairs if k in scores[system]]
    paths = {k: (p, t) for k, p, t in pairs}

    def render(key: str) -> dict[str, np.ndarray]:
        target = read_rgb(paths[key][1])
        return {"input": derive_gray(target), system: read_rgb(paths[key][0]), "target": target}

    sample_keys, previews = _sample_previews(ok_keys, samples, render)
    return EvalResult(
        systems=[system, GRAY_BASELINE], keys=ok_keys, scores=scores,
        summary={s: summarize(v) for s, v in scores.items()},
        missing_predictions=only_target, missing_targets=only_pred, errors=errors,
        sample_keys=sample_keys, previews=previews, thumbs=dict(thumbs.thumbs),
        description=f"predictions {pred_root} vs targets {target_root}")


# ------------------------------------------------------------------------------------ running models
def data_pairs(data: str | os.PathLike) -> tuple[str, list[tuple[str, Path, Path | None]], list[str], list[str]]:
    """The pages of an eval set: ``(layout, pages, only_bw, only_color)``.

    ``DATA/bw`` + ``DATA/color`` is a paired set (``layout == 'paired'``, pages ``(key, bw, color)``);
    any other folder is read as color pages whose gray input is derived (pages ``(key, None, color)``).
    """
    root = Path(data)
    if not root.is_dir():
        raise InputError(f"{root}: {'not a folder' if root.exists() else 'no such folder'}")
    if (root / "bw").is_dir() and (root / "color").is_dir():
        pairs, only_bw, only_color = pair_files(root / "bw", root / "color")
        return "paired", list(pairs), only_bw, only_color
    files = image_files(root)
    if not files:
        raise InputError(f"{root}: no images (expected bw/ + color/ folders or color pages)")
    keys = sorted(files, key=natural_path_key)
    return "color", [(k, None, files[k]) for k in keys], [], []


def model_label(spec: str | os.PathLike, taken: Iterable[str]) -> str:
    """A short row name for a model argument: the file's stem, or the whole argument when that is taken."""
    stem = Path(str(spec)).stem or str(spec)
    return str(spec) if stem in set(taken) or stem == GRAY_BASELINE else stem


def evaluate_models(model_specs: Sequence[str | os.PathLike], data: str | os.PathLike, *, size: int | None = None,
                    manga_look: bool = False, device: str = "auto", batch_size: int = 4, samples: int = 4,
                    report_thumbs: int = MAX_REPORT_THUMBS, progress: ProgressFn | None = None,
                    fills: Sequence[str] | None = None, palettes: Sequence[str] | None = None) -> EvalResult:
    """Run each model (a ``.pt`` checkpoint or ``.onnx`` file, through the Colorizer at working size
    ``size``) on the pages of ``data`` and score its output against the color pages, beside the gray
    baseline. Pages are decoded once and each chunk goes through every model in turn; pages/s is
    each model's own time in ``Colorizer.colorize``. ``fills``: the compose's fill (flat|soft,
    ``Colorizer``'s default when None); several give each model a row per fill ("name (flat)").
    ``palettes``: likewise for ``--palette`` (safe|vivid), a row per fill and palette.
    """
    import copy

    from models import compose as page_compose
    from models import regions as page_regions

    from ..engine.colorizer import Colorizer

    if not model_specs:
        raise UsageError("give at least one --model")
    layout, pages, only_bw, only_color = data_pairs(data)
    colorizers: dict[str, Colorizer] = {}
    fills = list(dict.fromkeys(fills or []))
    for fill in fills:
        if fill not in page_compose.FILLS:
            raise UsageError(f"--fill must be one of {', '.join(page_compose.FILLS)}, got {fill!r}")
    palettes = list(dict.fromkeys(palettes or []))
    for palette in palettes:
        if palette not in page_regions.PALETTES:
            raise UsageError(f"--palette must be one of {', '.join(page_regions.PALETTES)}, got {palette!r}")
    for spec in model_specs:
        label = model_label(spec, colorizers)
        base = Colorizer(str(spec), device=device, size=size, batch_size=batch_size, recolor=True,
                         **({"fill": fills[0]} if fills else {}), **({"palette": palettes[0]} if palettes else {}))
        if len(fills) <= 1 and len(palettes) <= 1:
            colorizers[label] = base
            continue
        for fill in fills or [base.fill]:
            for palette in palettes or [base.palette]:
                named = [v for v, many in ((fill, len(fills) > 1), (palette, len(palettes) > 1)) if many]
                colorizers[f"{label} ({', '.join(named)})"] = variant = copy.copy(base)  # one loaded model
                variant.fill, variant.palette = fill, palette
    scorers = {name: BatchScorer(metric_device(device), batch_size) for name in [*colorizers, GRAY_BASELINE]}
    seconds = {name: 0.0 for name in colorizers}
    thumbs = _Thumbs([k for k, _, _ in pages], report_thumbs)
    errors: list[tuple[str, str]] = []
    total = len(pages)

    def load(page):
        key, bw_path, color_path = page
        try:
            target = read_rgb(color_path)
            if bw_path is None:
                gray = derive_gray(target, manga_look, key)
            else:
                gray = read_gray(bw_path)
                _check_same_size(key, bw_path, gray, color_path, target)
            return key, gray, target, None
        except MangacolorError as e:
            return key, None, None, str(e)

    done = 0
    chunk: list[tuple[str, np.ndarray, np.ndarray]] = []

    def run_chunk() -> None:
        for name, colorizer in colorizers.items():
            t0 = time.perf_counter()
            preds = colorizer.colorize([g for _, g, _ in chunk])
            seconds[name] += time.perf_counter() - t0
            for (key, _, target), pred in zip(chunk, preds):
                scorers[name].add(key, pred, target)
                thumbs.add(key, name, pred)
        for key, gray, target in chunk:
            scorers[GRAY_BASELINE].add(key, gray, target)
            thumbs.add(key, "input", gray)
            thumbs.add(key, "target", target)
        chunk.clear()

    for key, gray, target, err in _threaded(load, pages):
        if err is not None:
            errors.append((key, err))
        else:
            chunk.append((key, gray, target))
        if len(chunk) >= batch_size:
            done += len(chunk)
            run_chunk()
        if progress:
            progress("pages", done + len(errors), total)
    done += len(chunk)
    if chunk:
        run_chunk()
    if progress:
        progress("pages", total, total)

    systems = [*colorizers, GRAY_BASELINE]
    scores = {name: scorers[name].finish() for name in systems}
    summary = {name: summarize(scores[name]) for name in systems}
    for name in colorizers:
        n = summary[name]["n"]
        summary[name]["pages_per_s"] = n / seconds[name] if seconds[name] > 0 else float("nan")
    ok_keys = [k for k, _, _ in pages if k in scores[GRAY_BASELINE]]
    by_key = {page[0]: page for page in pages}

    def render(key: str) -> dict[str, np.ndarray]:
        _, gray, target, _ = load(by_key[key])
        return {"input": gray, **{name: c.colorize([gray])[0] for name, c in colorizers.items()}, "target": target}

    sample_keys, previews = _sample_previews(ok_keys, samples, render)
    gray_from = "bw/ pages" if layout == "paired" else ("manga look" if manga_look else "luminance")
    sizes = {c.size for c in colorizers.values()}
    return EvalResult(
        systems=systems, keys=ok_keys, scores=scores, summary=summary,
        missing_predictions=only_color, missing_targets=only_bw, errors=errors,
        sample_keys=sample_keys, previews=previews, thumbs=dict(thumbs.thumbs),
        description=f"{Path(data)} ({len(pages)} pages, gray input from {gray_from}, "
                    f"working size {', '.join(str(s) for s in sorted(sizes))})")
