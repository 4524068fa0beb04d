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

import os
import time
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from models.cie import rgb_to_gray8
from models.toolbox.folders import SamePageError, keyed_images, pair_keyed
from models.toolbox.images import ImageDecodeError, natural_path_key, on_paper, read_image
from models.toolbox.page_metrics import GRAY_BASELINE, METRICS, TargetMetrics, gray_baseline

from ..errors import InputError, MangacolorError, UsageError, require_folder
from .previews import MAX_REPORT_THUMBS, PREVIEW_HEIGHT, THUMB_HEIGHT, Previews, choose_samples  # noqa: F401
from .segments import SEGMENT_METRICS, segment_score

if TYPE_CHECKING:  # only a GPU's scores need it (``tensor_scores``)
    import torch

# SSIM's 7x7 window: a smaller page is listed as not scored, never a traceback.
MIN_SCORED_SIDE = 7
MANGA_LOOK_SEED = 1234

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
    try:  # hidden files included, as eval always read them
        return keyed_images(root, hidden=True)
    except SamePageError as e:
        raise InputError(str(e)) from None


def pair_files(left_root: Path, right_root: Path) -> tuple[list[tuple[str, Path, Path]], list[str], list[str]]:
    """Pair images of two folders by relative path, extension-insensitive.

    Returns ``(pairs, only_left, only_right)``: pairs as ``(key, left, right)`` in natural order, and
    the keys found on one side only.
    """
    for root in (left_root, right_root):
        require_folder(root)
    return pair_keyed(image_files(left_root), image_files(right_root))


def read_rgb(path: Path) -> np.ndarray:
    """An image file as ``uint8 [H, W, 3]`` sRGB through the one image loader (``models.toolbox.images``),
    transparency composited on white paper as the training data is."""
    return on_paper(_read(path))


def read_gray(path: Path) -> np.ndarray:
    """An image file as ``uint8 [H, W]`` gray (a color file gives its lightness gray, ``models.cie.rgb_to_gray8``)."""
    page = _read(path)
    if page.is_gray and page.alpha is None and page.pixels.dtype == np.uint8:
        return page.pixels
    return rgb_to_gray8(on_paper(page))


def _read(path: Path):
    try:
        return read_image(path)
    except ImageDecodeError as e:
        raise InputError(str(e)) from None


def derive_gray(rgb: np.ndarray, manga_look: bool = False, key: str = "") -> np.ndarray:
    """The gray input for a color page ``uint8 [H, W, 3]`` -> ``uint8 [H, W]``: its lightness gray
    (``models.cie.rgb_to_gray8``, numpy), or with ``manga_look`` the training data's manga look transform
    (torch), seeded by the page's key so every run and every model sees the same input."""
    if not manga_look:
        return rgb_to_gray8(rgb)
    from models.toolbox.images import tensor_to_uint8, uint8_to_tensor
    from trainer.data import manga_look as training_manga_look

    x = uint8_to_tensor(rgb)[None]
    gray = training_manga_look(x, np.random.default_rng([MANGA_LOOK_SEED, zlib.crc32(key.encode("utf-8"))]))
    return tensor_to_uint8(gray[0])


# ------------------------------------------------------------------------------------ scoring
def metric_device(device: str) -> torch.device:
    """``--device`` -> where the metrics run (``models.toolbox.device.resolve_device``); a bad one is a UsageError."""
    from models.toolbox.device import DeviceError, resolve_device

    try:
        return resolve_device(device)
    except DeviceError as e:
        raise UsageError(str(e)) from None


class PageScorer:
    """Scores every system's prediction of a page against its target as the page arrives, so the
    progress shown is the work done: on the CPU through ``models.toolbox.metrics.TargetMetrics`` (exact
    integer sums; the target's share computed once for all systems), on a GPU through
    ``compute_all``, one batch per page. ``scores[system][key]`` is a dict of metric -> float. ``device``
    None: the CPU, without importing torch (the scores are the same)."""

    def __init__(self, systems: Sequence[str], device: torch.device | None = None):
        self.device = device
        self.scores: dict[str, dict[str, dict[str, float]]] = {system: {} for system in systems}

    def add(self, key: str, target: np.ndarray, preds: dict[str, np.ndarray]) -> None:
        """Score ``preds`` (system -> ``uint8 [H, W, 3]`` or gray ``[H, W]``) against ``target`` ``uint8 [H, W, 3]``."""
        if self.device is None or self.device.type == "cpu":
            on_target = TargetMetrics(target)
            scores = {system: on_target.score(pred) for system, pred in preds.items()}
        else:
            scores = tensor_scores(target, preds, self.device)
        for system, values in scores.items():
            self.scores[system][key] = values


def tensor_scores(target: np.ndarray, preds: dict[str, np.ndarray],
                  device: torch.device) -> dict[str, dict[str, float]]:
    """``PageScorer``'s way on a GPU: every system's prediction of a page in one ``compute_all`` batch."""
    import torch

    from models.toolbox import metrics as M
    from models.toolbox.images import uint8_to_tensor

    batch = torch.stack([uint8_to_tensor(p).expand(3, -1, -1) for p in preds.values()]).to(device)
    targets = uint8_to_tensor(target).to(device)[None].expand(len(preds), -1, -1, -1)
    values = {k: v.cpu().tolist() for k, v in M.compute_all(batch, targets).items()}
    return {system: {k: float(values[k][i]) for k in METRICS} for i, system in enumerate(preds)}


def summarize(scores: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean of every metric over the images (PSNR's mean is ``inf`` if any image is identical)."""
    out: dict[str, float] = {"n": len(scores)}
    for col in METRICS:
        vals = [s[col] for s in scores.values()]
        out[col] = float(np.mean(vals)) if vals else float("nan")
    return out


def _check_same_size(key: str, pred_path: Path, pred: np.ndarray, target_path: Path, target: np.ndarray) -> None:
    if pred.shape[:2] != target.shape[:2]:
        ph, pw = pred.shape[:2]
        th, tw = target.shape[:2]
        raise InputError(f"{pred_path}: {pw}x{ph} but its target {target_path} is {tw}x{th}")
    if min(target.shape[:2]) < MIN_SCORED_SIDE:
        th, tw = target.shape[:2]
        raise InputError(f"{target_path}: {tw}x{th} is too small to score (SSIM needs at least "
                         f"{MIN_SCORED_SIDE}x{MIN_SCORED_SIDE})")


def _threaded(fn, items: Iterable, workers: int = 2, ahead: int = 4) -> Iterator:
    # Decoding in threads beside the metric math, a few pages ahead (never the whole set in memory);
    # results keep input order.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def evaluate_dirs(pred_dir: str | os.PathLike, target_dir: str | os.PathLike, *, samples: int = 4,
                  report_thumbs: int = MAX_REPORT_THUMBS, device: str | torch.device | None = None,
                  progress: ProgressFn | None = None) -> EvalResult:
    """Score the images in ``pred_dir`` against ``target_dir`` (paired by relative path).

    The gray baseline is the target's lightness gray (``derive_gray``) taken as the prediction. ``device``: where
    the metrics run; None, ``"auto"`` or ``"cpu"``: the CPU, without loading torch (exact integer sums, the
    same scores); another ``--device`` string or a torch device: there (``metric_device``).
    A pair that cannot be read or differs in size is listed in ``errors`` and left out of the means.
    ``progress(system, done, total)`` follows every page's reading, scoring and previews.
    """
    pred_root, target_root = Path(pred_dir), Path(target_dir)
    pairs, only_pred, only_target = pair_files(pred_root, target_root)
    system = pred_root.name or "pred"
    if system == GRAY_BASELINE:
        system = "pred"
    if isinstance(device, str):
        device = None if device in ("auto", "cpu") else metric_device(device)
    scorer = PageScorer([system, GRAY_BASELINE], device)
    previews = Previews([k for k, _, _ in pairs], samples, report_thumbs)
    errors: list[tuple[str, str]] = []
    paths = {k: (p, t) for k, p, t in pairs}

    def load(key: str) -> dict[str, np.ndarray]:
        pred_path, target_path = paths[key]
        pred, target = read_rgb(pred_path), read_rgb(target_path)
        _check_same_size(key, pred_path, pred, target_path, target)
        return {"input": derive_gray(target), system: pred, "target": target}

    def load_or_error(pair) -> tuple[str, dict[str, np.ndarray] | None, str | None]:
        try:
            return pair[0], load(pair[0]), None
        except MangacolorError as e:
            return pair[0], None, str(e)

    def tick(done: int, total: int) -> None:
        if progress:
            progress(system, done, total)

    tick(0, len(pairs))
    for done, (key, columns, err) in enumerate(_threaded(load_or_error, pairs), 1):
        if err is None:
            scorer.add(key, columns["target"],
                       {system: columns[system], GRAY_BASELINE: gray_baseline(columns["input"])})
            previews.add(key, columns)
        else:
            errors.append((key, err))
        tick(done, len(pairs))
    scores = scorer.scores
    ok_keys = [k for k, _, _ in pairs if k in scores[system]]
    sample_keys, sample_previews = previews.samples_of(
        ok_keys, load, lambda i, n: tick(len(pairs) + i, len(pairs) + n))
    return EvalResult(
        systems=[system, GRAY_BASELINE], keys=ok_keys, scores=scores,
        summary={s: summarize(v) for s, v in scores.items()},
        missing_predictions=only_target, missing_targets=only_pred, errors=errors,
        sample_keys=sample_keys, previews=sample_previews, thumbs=previews.thumbs,
        description=f"predictions {pred_root} vs targets {target_root}")


# ------------------------------------------------------------------------------------ running models
def data_pairs(data: str | os.PathLike) -> tuple[str, list[tuple[str, Path, Path | None]], list[str], list[str]]:
    """The pages of an eval set: ``(layout, pages, only_bw, only_color)``.

    ``DATA/bw`` + ``DATA/color`` is a paired set (``layout == 'paired'``, pages ``(key, bw, color)``);
    any other folder is read as color pages whose gray input is derived (pages ``(key, None, color)``).
    """
    root = require_folder(data)
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
                    fills: Sequence[str] | None = None, palettes: Sequence[str] | None = None,
                    region_models: Sequence[str] | None = None, references: Sequence[Any] | None = None,
                    warn: Callable[[str], None] | None = None) -> EvalResult:
    """Run each model (a ``.pt`` checkpoint or ``.onnx`` file, through the Colorizer at working size
    ``size``) on the pages of ``data`` and score its output against the color pages, beside the gray
    baseline. Pages are decoded once and each chunk goes through every model in turn, then is scored
    (``progress("pages", done, total)`` after each page); pages/s is each model's own time in
    ``Colorizer.colorize``. ``fills``: the compose's fill (flat|soft,
    ``Colorizer``'s default when None); several give each model a row per fill ("name (flat)").
    ``palettes``: likewise for ``--palette`` (safe|vivid), a row per fill and palette.
    ``region_models``: likewise for ``--region-model`` (auto|none|a file), a row per choice.
    ``references``: colored reference pages (``--reference``; paths, images or prepared ones): every row
    gets a twin "+ references" colored with them, and every row, the gray page's too, the paint-bucket
    measures (``evaluation.segments``: segment and pixel accuracy). ``warn`` gets a line for each
    reference left out.
    """
    import copy

    from models.paint.fills import FILLS
    from models.paint.regions import PALETTES, segment_regions

    from ..engine.colorizer import Colorizer
    from ..engine.region_model import load_region_model

    if not model_specs:
        raise UsageError("give at least one --model")
    layout, pages, only_bw, only_color = data_pairs(data)
    colorizers: dict[str, Colorizer] = {}
    fills = list(dict.fromkeys(fills or []))
    for fill in fills:
        if fill not in FILLS:
            raise UsageError(f"--fill must be one of {', '.join(FILLS)}, got {fill!r}")
    palettes = list(dict.fromkeys(palettes or []))
    for palette in palettes:
        if palette not in PALETTES:
            raise UsageError(f"--palette must be one of {', '.join(PALETTES)}, got {palette!r}")
    region_models = list(dict.fromkeys(region_models or []))
    for spec in model_specs:
        label = model_label(spec, colorizers)
        base = Colorizer(str(spec), device=device, size=size, batch_size=batch_size, recolor=True,
                         **({"fill": fills[0]} if fills else {}), **({"palette": palettes[0]} if palettes else {}),
                         **({"region_model": region_models[0]} if region_models else {}))
        if len(fills) <= 1 and len(palettes) <= 1 and len(region_models) <= 1:
            colorizers[label] = base
            continue
        loaded = {choice: base.region_model if i == 0 else load_region_model(choice, base.model_path)
                  for i, choice in enumerate(region_models)}
        for fill in fills or [base.fill]:
            for palette in palettes or [base.palette]:
                for choice in region_models or [None]:
                    named = [v for v, many in ((fill, len(fills) > 1), (palette, len(palettes) > 1),
                                               (f"regions {choice}", len(region_models) > 1)) if many]
                    colorizers[f"{label} ({', '.join(named)})"] = variant = copy.copy(base)  # one loaded model
                    variant.fill, variant.palette = fill, palette
                    if choice is not None:
                        variant.region_model = loaded[choice]
    if references:
        from ..engine.references import load_references

        prepared = load_references(references, warn or (lambda message: None))
        if not prepared:
            raise UsageError("--reference: no color page to take colors from")
        with_references = {}
        for name, colorizer in colorizers.items():
            colorizer.references = []
            twin = copy.copy(colorizer)  # the same loaded model
            twin.references = prepared
            with_references[name] = colorizer
            with_references[f"{name} + references"] = twin
        colorizers = with_references
    systems = [*colorizers, GRAY_BASELINE]
    scorer = PageScorer(systems, metric_device(device))
    seconds = {name: 0.0 for name in colorizers}
    previews = Previews([k for k, _, _ in pages], samples, report_thumbs)
    errors: list[tuple[str, str]] = []
    by_key = {page[0]: page for page in pages}

    def load(page) -> tuple[str, np.ndarray | None, np.ndarray | None, str | None]:
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

    def tick(done: int, total: int) -> None:
        if progress:
            progress("pages", done, total)

    done = 0
    chunk: list[tuple[str, np.ndarray, np.ndarray]] = []

    def run_chunk() -> None:
        nonlocal done
        outputs = {}
        for name, colorizer in colorizers.items():
            t0 = time.perf_counter()
            outputs[name] = colorizer.colorize([g for _, g, _ in chunk])
            seconds[name] += time.perf_counter() - t0
        for i, (key, gray, target) in enumerate(chunk):
            preds = {name: outputs[name][i] for name in colorizers}
            scorer.add(key, target, {**preds, GRAY_BASELINE: gray_baseline(gray)})
            if references:
                regions = segment_regions(gray)
                for name, pred in {**preds, GRAY_BASELINE: gray_baseline(gray)}.items():
                    rgb = pred if pred.ndim == 3 else np.repeat(pred[..., None], 3, axis=2)
                    seg = segment_score(gray, rgb, target, regions)
                    scorer.scores[name][key].update(segment_accuracy=seg.segment_accuracy,
                                                    pixel_accuracy=seg.pixel_accuracy)
            previews.add(key, {"input": gray, **preds, "target": target})
            done += 1
            tick(done + len(errors), len(pages))
        chunk.clear()

    tick(0, len(pages))
    for key, gray, target, err in _threaded(load, pages):
        if err is not None:
            errors.append((key, err))
            tick(done + len(errors), len(pages))
        else:
            chunk.append((key, gray, target))
        if len(chunk) >= batch_size:
            run_chunk()
    if chunk:
        run_chunk()

    scores = scorer.scores
    summary = {name: summarize(scores[name]) for name in systems}
    if references:
        for name in systems:
            for col in SEGMENT_METRICS:
                vals = [s[col] for s in scores[name].values() if col in s and not np.isnan(s[col])]
                summary[name][col] = float(np.mean(vals)) if vals else float("nan")
    for name in colorizers:
        n = summary[name]["n"]
        summary[name]["pages_per_s"] = n / seconds[name] if seconds[name] > 0 else float("nan")
    ok_keys = [k for k, _, _ in pages if k in scores[GRAY_BASELINE]]

    def render(key: str) -> dict[str, np.ndarray]:
        _, gray, target, _ = load(by_key[key])
        return {"input": gray, **{name: c.colorize([gray])[0] for name, c in colorizers.items()}, "target": target}

    sample_keys, sample_previews = previews.samples_of(
        ok_keys, render, lambda i, n: tick(len(pages) + i, len(pages) + n))
    gray_from = "bw/ pages" if layout == "paired" else ("manga look" if manga_look else "luminance")
    sizes = {c.size for c in colorizers.values()}
    return EvalResult(
        systems=systems, keys=ok_keys, scores=scores, summary=summary,
        missing_predictions=only_color, missing_targets=only_bw, errors=errors,
        sample_keys=sample_keys, previews=sample_previews, thumbs=previews.thumbs,
        description=f"{Path(data)} ({len(pages)} pages, gray input from {gray_from}, "
                    f"working size {', '.join(str(s) for s in sorted(sizes))})")
