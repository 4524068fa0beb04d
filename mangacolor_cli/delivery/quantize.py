"""int8 ONNX models, written only behind a quality gate (docs/PERFORMANCE.md, "int8").

onnxruntime's static quantization (QDQ, per-channel int8 weights, uint8 activations calibrated on
real pages) makes a model smaller and, on CPUs with VNNI, faster, but it can flip a region's color:
measured on the default model, its CIEDE2000 rose by 0.24 on the validation pages and its
colorfulness halved. So an int8 file is never made silently: :func:`quantize_int8` scores the fp32
model and its int8 twin on the validation sets the caller names, through the same Colorizer and
metrics as ``mangacolor eval``, and writes the int8 file only when on every set its mean CIEDE2000
is within ``tolerance`` (0.1) of the fp32 model's. The measurement is stored in the file's metadata
(``mangacolor.quality_gate``), and ``Colorizer.describe`` names the precision.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from models.toolbox.errors import first_line
from models.toolbox.files import atomic_path
from models.toolbox.images import DecodedPage, to_rgb8, to_uint8

from ..engine.backends import META_PREFIX
from ..errors import InputError, JobError, UsageError

# The gate: int8's mean CIEDE2000 at most this much above fp32's, on every validation set.
GATE_TOLERANCE = 0.1
CALIBRATION_PAGES = 16
logger = logging.getLogger("mangacolor.delivery")


@dataclass
class QuantizeResult:
    """What the gate measured: per set, fp32's and int8's mean CIEDE2000; ``path`` is None when refused."""

    sets: dict[str, dict[str, float]] = field(default_factory=dict)
    tolerance: float = GATE_TOLERANCE
    calibration_pages: int = 0
    path: Path | None = None

    @property
    def passed(self) -> bool:
        return bool(self.sets) and all(s["int8"] - s["fp32"] <= self.tolerance for s in self.sets.values())

    def describe(self) -> str:
        rows = ", ".join(f"{name} {s['fp32']:.2f} -> {s['int8']:.2f} ({s['int8'] - s['fp32']:+.2f})"
                         for name, s in self.sets.items())
        return f"CIEDE2000 fp32 -> int8: {rows}; tolerance +{self.tolerance:g}"

    def to_dict(self) -> dict:
        return {"sets": self.sets, "tolerance": self.tolerance, "calibration_pages": self.calibration_pages,
                "passed": self.passed, "path": None if self.path is None else str(self.path)}


def calibration_pages(source: str | os.PathLike, limit: int = CALIBRATION_PAGES) -> list[DecodedPage]:
    """Up to ``limit`` gray pages of ``source``, anything ``colorize`` reads (a folder, a CBZ/ZIP/CBR, an
    image; an eval set's ``bw/`` when it has one), spread over it in page order; color pages as their gray."""
    from ..pages.images import decode_page
    from ..pages.planning import plan_jobs

    root = Path(source)
    if not root.exists():
        raise InputError(f"{root}: no such file or folder (calibration pages)")
    if (root / "bw").is_dir():
        root = root / "bw"
    refs, jobs = [], plan_jobs([root])  # read only: a job's output is written by finish(), never called here
    try:
        for job in jobs:
            refs += job.pages()
        if not refs:
            raise InputError(f"{root}: no pages to calibrate on")
        n = min(limit, len(refs))
        picked = sorted({round(i * (len(refs) - 1) / max(1, n - 1)) for i in range(n)})
        return [_gray8(decode_page(refs[i].read(), refs[i].label)) for i in picked]
    finally:
        for job in jobs:
            job.close()


def _gray8(page: DecodedPage) -> DecodedPage:
    """An 8-bit gray page: gray pages rounded to 8 bits, color pages as eval derives their gray input."""
    from ..evaluation.scoring import derive_gray

    return DecodedPage(pixels=to_uint8(page.pixels) if page.is_gray else derive_gray(to_rgb8(page.pixels)))


def quantize_int8(model: str | os.PathLike, output: str | os.PathLike, gate_sets: Sequence[str | os.PathLike],
                  calibrate: str | os.PathLike, *, tolerance: float = GATE_TOLERANCE,
                  pages: int = CALIBRATION_PAGES, progress: Callable[[str], None] | None = None,
                  page_progress: Callable[[int, int], None] | None = None) -> QuantizeResult:
    """Quantize the float32 ONNX ``model`` to int8 (calibrated on ``pages`` gray pages of ``calibrate``),
    score both on each of ``gate_sets`` (eval sets: ``DIR/bw`` + ``DIR/color``, or color pages) and
    write ``output`` only when the gate passes. ``progress`` gets each step's line (default: the
    ``mangacolor.delivery`` logger, at INFO); ``page_progress(done, total)``, the pages of the set being
    scored (as ``mangacolor eval`` reports them). Returns the measurement either way; raises
    ``UsageError``, ``InputError`` or ``ModelError`` before any work (bad arguments, a missing or empty
    set, a model that does not load) and ``JobError`` for a model that cannot be quantized.
    """
    from ..engine.colorizer import Colorizer
    from ..evaluation.scoring import data_pairs, evaluate_models

    say = progress or logger.info
    model, output = Path(model), Path(output)
    if model.suffix.lower() != ".onnx":
        raise UsageError(f"{model}: quantize takes an .onnx model (export a checkpoint first: mangacolor export)")
    if not gate_sets:
        raise UsageError("give at least one --data validation set for the quality gate")
    if output.resolve() == model.resolve():
        raise UsageError(f"{output}: the int8 model must not replace its float32 source")
    for data in gate_sets:
        data_pairs(data)  # a --data set that is missing or holds no pages stops it before the work, not after
    fp32 = Colorizer(model, device="cpu", batch_size=1)
    if fp32.precision != "float32":
        raise UsageError(f"{model}: a {fp32.precision} model; quantize takes a float32 one")
    calib = calibration_pages(calibrate, pages)
    say(f"calibrating on {len(calib)} pages of {calibrate}")
    result = QuantizeResult(tolerance=tolerance, calibration_pages=len(calib))
    work = Path(tempfile.mkdtemp(prefix="mangacolor-int8-"))
    try:
        candidate = work / "int8.onnx"
        quantize_file(model, candidate, [fp32.model_input(p)[None, None] for p in calib], work)
        for data in gate_sets:
            say(f"scoring float32 and int8 on {data}")
            scored = evaluate_models([model, candidate], data, device="cpu", batch_size=1, samples=0,
                                     report_thumbs=0, progress=None if page_progress is None else
                                     lambda _label, done, total: page_progress(done, total))
            first, second = scored.models
            result.sets[Path(data).name] = {"fp32": scored.summary[first]["ciede2000"],
                                            "int8": scored.summary[second]["ciede2000"]}
        if result.passed:
            _set_meta(candidate, {"precision": "int8", "quality_gate": json.dumps(result.to_dict(), sort_keys=True),
                                  "quantized_from": model.name})
            with atomic_path(output) as tmp:
                shutil.copyfile(candidate, tmp)
            result.path = output
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def quantize_file(model: Path, out: Path, inputs: list[np.ndarray], work: Path) -> None:
    """``model`` quantized to int8 into ``out`` (static QDQ, per-channel int8 weights, uint8 activations
    calibrated on ``inputs``, model inputs ``[1, 1, h, w]``), with no gate; ``work``: a folder for its temp file."""
    import onnxruntime.quantization as q
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Pages(q.CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter({"input": x} for x in inputs)

        def get_next(self):
            return next(self._it, None)

    prepared = work / "prepared.onnx"
    try:
        quant_pre_process(str(model), str(prepared), skip_symbolic_shape=True)
        q.quantize_static(str(prepared), str(out), Pages(), quant_format=q.QuantFormat.QDQ, per_channel=True,
                          activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8)
    except Exception as e:  # onnx/onnxruntime raise their own untyped errors for graphs they cannot quantize
        raise JobError(f"{model}: cannot be quantized to int8 ({type(e).__name__}: {first_line(e)})") from None


def _set_meta(path: Path, items: dict[str, str]) -> None:
    import onnx

    proto = onnx.load(str(path))
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key[len(META_PREFIX):] not in items]
    del proto.metadata_props[:]
    for key, value in kept + [(META_PREFIX + k, v) for k, v in items.items()]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))
