"""Hints judged under the published Hint-AUC protocol (Madono et al., TVCG 2026; the ``hintauc`` package).

For every page of a paired set (``DIR/bw`` + ``DIR/color``) the protocol draws deterministic scribbles
from the *target's* regions (Felzenszwalb regions at 64x64, the longest path inside each; DHT) and
gives each system the scribbles of the largest share ``a`` of the regions, for ``a`` in 0, 0.01,
0.03, 0.05, 0.10, 0.25, 0.50, 1.0. Each output is scored against the target (CIEDE2000 by default,
hintauc's evaluator: both resized to 256x256), and Hint-AUC is the area under metric(a). Systems:
mangacolor models given the scribbles as ``--hints``, and the classic baseline they must beat, Levin
et al. 2004 (``levin.levin_colorize``) given the same scribbles.

``hintauc`` is optional (``pip install --no-deps hintauc==0.3.3 opencv-python-headless``: its own
requirements pin numpy below 2 through astropy, which the rest of mangacolor cannot run with; the
dependency-free ``geodesic`` scribble paths need neither). The hints of a page are generated once
and cached (``cache_dir``, keyed by the target's bytes and the protocol's settings).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import UsageError

LEVIN = "levin 2004"
GRAY = "gray page"
HINT_SIZE = 64
PATH_METHOD = "geodesic"
# The protocol's hint ratios (hintauc.DEFAULT_ALPHAS).
ALPHAS = (0.0, 0.01, 0.03, 0.05, 0.10, 0.25, 0.50, 1.0)
INSTALL_HINT = "pip install --no-deps hintauc==0.3.3 opencv-python-headless"

# A hint source: (target RGB HxWx3 uint8) -> a function of the ratio a giving (hint RGB HxWx3 uint8, mask HxW bool).
HintSource = Callable[[np.ndarray], Callable[[float], tuple[np.ndarray, np.ndarray]]]
# A metric: (prediction RGB, target RGB) -> a number, lower is better.
Metric = Callable[[np.ndarray, np.ndarray], float]


def _hintauc():
    try:
        import hintauc
    except ImportError:
        raise UsageError(f"the Hint-AUC protocol needs the hintauc package: {INSTALL_HINT}") from None
    return hintauc


def dht_hints(cache_dir: Path | None = None) -> HintSource:
    """The protocol's deterministic scribbles (hintauc's DHT, ``geodesic`` paths), cached per target."""
    hintauc = _hintauc()

    def source(target: np.ndarray) -> Callable[[float], tuple[np.ndarray, np.ndarray]]:
        h, w = target.shape[:2]
        bgr = np.ascontiguousarray(target[..., ::-1])
        result = None
        cached = None
        if cache_dir is not None:
            key = hashlib.sha256(bgr.tobytes() + f"{h}x{w}:{HINT_SIZE}:{PATH_METHOD}:{hintauc.__version__}".encode())
            cached = Path(cache_dir) / f"{key.hexdigest()[:32]}.npz"
            if cached.is_file():
                with np.load(cached) as z:
                    result = hintauc.HintResult(**{k: z[k] for k in ("region", "scribble_mask", "scribble_color",
                                                                      "flatten", "dot_mask", "dot_color")},
                                                size=HINT_SIZE, path_method=PATH_METHOD)
        if result is None:
            result = hintauc.generate_hints(bgr, size=HINT_SIZE, path_method=PATH_METHOD)
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_suffix(".tmp.npz")
                np.savez_compressed(tmp, region=result.region, scribble_mask=result.scribble_mask,
                                    scribble_color=result.scribble_color, flatten=result.flatten,
                                    dot_mask=result.dot_mask, dot_color=result.dot_color)
                tmp.replace(cached)

        def at(alpha: float) -> tuple[np.ndarray, np.ndarray]:
            # The protocol's hint map itself (HINT_SIZE square): mangacolor scales it to the page as a hint
            # map (hue and chroma); Levin gets it scaled as hintauc.hint_inputs scales it (nearest).
            color, mask = result.at_ratio(alpha, hint_type="scribble", tie_break="stable")
            return np.ascontiguousarray(color[..., ::-1]), mask > 0
        return at
    return source


def dht_metric() -> tuple[Metric, dict]:
    """hintauc's CIEDE2000 (both images resized to 256x256, skimage's deltaE_ciede2000) and its protocol record."""
    hintauc = _hintauc()
    evaluator = hintauc.Evaluator(metrics=("deltae",))
    record = hintauc.protocol_record(evaluator, ALPHAS, "scribble", HINT_SIZE, PATH_METHOD, "medoid",
                                     tie_break="stable")
    return (lambda pred, target: evaluator(pred, target)["deltae"]), record


def trapezoid_auc(curve: dict[float, float]) -> float:
    """Area under ``metric(a)`` over a in [0, 1] by the trapezoid rule (hintauc's ``hint_auc``)."""
    xs = sorted(curve)
    return float(sum((xs[i + 1] - xs[i]) * (curve[xs[i]] + curve[xs[i + 1]]) / 2 for i in range(len(xs) - 1)))


@dataclass
class HintProtocolResult:
    """Per system: the mean metric at every ratio, and its Hint-AUC."""

    name: str
    alphas: list[float]
    pages: int
    curves: dict[str, dict[float, float]] = field(default_factory=dict)
    protocol: dict = field(default_factory=dict)

    @property
    def auc(self) -> dict[str, float]:
        return {system: trapezoid_auc(curve) for system, curve in self.curves.items()}

    def to_dict(self) -> dict:
        return {"set": self.name, "pages": self.pages, "alphas": self.alphas,
                "curves": {s: {str(a): v for a, v in c.items()} for s, c in self.curves.items()},
                "hint_auc": self.auc, "protocol": self.protocol}


def _at_page_size(system):
    """A system that needs its hints at the page's size: a hint map scaled to it (nearest neighbour)."""
    from models.paint.regions import scale_hint_map

    def run(gray: np.ndarray, color: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if mask.shape != gray.shape[:2]:
            color = scale_hint_map(color, gray.shape[:2])
            mask = scale_hint_map(mask, gray.shape[:2])
        return system(gray, color, mask)
    return run


def _hint_map_or_page_size(system):
    """mangacolor takes the protocol's map as a hint map (``models.paint.regions.is_hint_map``: hue and chroma)
    where the page is at least twice its size; a page smaller than that gets it scaled to the page."""
    from models.paint.regions import is_hint_map

    scaled = _at_page_size(system)

    def run(gray: np.ndarray, color: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return system(gray, color, mask) if is_hint_map(mask.shape, gray.shape[:2]) else scaled(gray, color, mask)
    return run


def hint_rgba(color: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Scribbles as the RGBA hint image ``--hints`` reads: opaque where drawn, transparent elsewhere."""
    return np.dstack([color, np.where(mask, 255, 0).astype(np.uint8)])


def evaluate_hint_protocol(pairs: Sequence[tuple[str, np.ndarray, np.ndarray]],
                           systems: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]],
                           hints: HintSource, metric: Metric, *, alphas: Sequence[float],
                           name: str = "", protocol: dict | None = None,
                           progress: Callable[[int, int], None] | None = None) -> HintProtocolResult:
    """Score ``systems`` (name -> ``fn(gray, hint_rgb, hint_mask) -> RGB``) on ``pairs`` ((key, gray, target))
    at every ratio of ``alphas``; the gray page itself is scored as the ``GRAY`` row (no hints)."""
    alphas = [float(a) for a in alphas]
    if not alphas or alphas[0] != 0.0 or alphas[-1] != 1.0 or sorted(alphas) != alphas:
        raise UsageError(f"hint ratios must rise from 0 to 1, got {alphas}")
    sums: dict[str, dict[float, float]] = {s: {a: 0.0 for a in alphas} for s in (*systems, GRAY)}
    for i, (_key, gray, target) in enumerate(pairs):
        at = hints(target)
        gray_score = metric(np.repeat(gray[..., None], 3, axis=2), target)
        for a in alphas:
            sums[GRAY][a] += gray_score
            color, mask = at(a)
            for system, fn in systems.items():
                sums[system][a] += metric(fn(gray, color, mask), target)
        if progress:
            progress(i + 1, len(pairs))
    n = max(len(pairs), 1)
    curves = {s: {a: v / n for a, v in c.items()} for s, c in sums.items()}
    return HintProtocolResult(name=name, alphas=alphas, pages=len(pairs), curves=curves, protocol=protocol or {})


def write_json(results: Sequence[HintProtocolResult], path: str | Path) -> str:
    text = json.dumps([r.to_dict() for r in results], indent=2)
    if str(path) != "-":
        from models.toolbox.files import write_text_atomic
        write_text_atomic(Path(path), text + "\n")
    return text


def evaluate_models_with_hints(model_specs: Sequence[str], data: str | Path, *, size: int | None = None,
                               device: str = "auto", pages: int | None = None, cache_dir: Path | None = None,
                               levin: bool = True, hints: HintSource | None = None,
                               metric: tuple[Metric, dict] | None = None,
                               progress: Callable[[int, int], None] | None = None) -> HintProtocolResult:
    """The protocol on one paired set (``DATA/bw`` + ``DATA/color``, the first ``pages`` pages in order):
    each model through the Colorizer with the scribbles as its hints, Levin 2004 beside them."""
    from ..engine.colorizer import Colorizer
    from . import scoring
    from .levin import levin_colorize

    layout, found, _only_bw, _only_color = scoring.data_pairs(data)
    if layout != "paired":
        raise UsageError(f"{data}: the hint protocol needs a paired set (bw/ and color/ folders)")
    if pages is not None:
        found = found[:pages]
    hint_source = hints or dht_hints(cache_dir)
    score, record = metric or dht_metric()
    systems: dict[str, Callable] = {}
    for spec in model_specs:
        colorizer = Colorizer(str(spec), device=device, size=size, recolor=True)
        label = scoring.model_label(spec, systems)
        systems[label] = _hint_map_or_page_size((lambda c: lambda gray, color, mask: c.colorize(gray, hints=hint_rgba(color, mask)))(colorizer))
    if levin:
        systems[LEVIN] = _at_page_size(levin_colorize)
    pairs = ((key, scoring.read_gray(bw), scoring.read_rgb(color)) for key, bw, color in found)
    result = evaluate_hint_protocol(list(pairs), systems, hint_source, score, alphas=ALPHAS,
                                    name=Path(data).resolve().name, protocol=record, progress=progress)
    return result
