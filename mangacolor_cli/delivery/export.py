"""The export job: checkpoint -> ONNX file, checked against PyTorch on a real page before it counts
(docs/ARCHITECTURE.md, "Export").

    >>> from mangacolor_cli.delivery.export import export_checkpoint
    >>> result = export_checkpoint("run/best.pt", "model.onnx")
    >>> result.max_abs_diff            # largest |onnxruntime - PyTorch| over the page's ab, normalized units
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from models import CheckpointError, ColorModel, load_model
from models.color import AB_SCALE
from models.toolbox.errors import first_line
from models.toolbox.files import atomic_path
from models.toolbox.images import DecodedPage, ImageDecodeError, read_image

from ..errors import InputError, JobError, MangacolorError, ModelError, UsageError
from ..engine.backends import export_onnx
from ..engine.colorizer import Colorizer, PageLike

DEFAULT_WORKING_SIZE = 512
FP32_TOLERANCE = 1e-3
# float16 weights and activations carry ~3 significant digits; deep nets accumulate a few ulps.
HALF_TOLERANCE = 5e-2
logger = logging.getLogger("mangacolor.delivery")


class ExportCheckError(JobError):
    """The exported graph's output differs from PyTorch's by more than the tolerance."""


@dataclass
class ExportResult:
    """What ``export_checkpoint`` wrote and how closely the file reproduces the PyTorch model."""

    path: Path
    model: str
    working_size: int
    opset: int
    half: bool
    check_shape: tuple[int, int]
    max_abs_diff: float
    tolerance: float
    provider: str


def synthetic_page(height: int = 768, width: int = 544, seed: int = 0) -> np.ndarray:
    """A deterministic line-art manga page, ``uint8 [H, W]`` gray: panel borders, ink strokes and
    circles, a screentone patch, speech balloons and solid blacks, on white paper."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(img)
    m = max(4, width // 40)
    panels = [(m, m, width - m, height // 3), (m, height // 3 + m, width // 2 - m // 2, height - m),
              (width // 2 + m // 2, height // 3 + m, width - m, height - m)]
    for x0, y0, x1, y1 in panels:
        draw.rectangle((x0, y0, x1, y1), outline=0, width=max(2, m // 2))
        for _ in range(6):
            cx, cy = rng.integers(x0, x1), rng.integers(y0, y1)
            r = int(rng.integers(8, max(9, (x1 - x0) // 4)))
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=0, width=int(rng.integers(1, 4)))
        for _ in range(10):
            pts = [(int(rng.integers(x0, x1)), int(rng.integers(y0, y1))) for _ in range(3)]
            draw.line(pts, fill=int(rng.integers(0, 60)), width=int(rng.integers(1, 3)))
    # Screentone: a dot grid in the lower-left panel.
    x0, y0, x1, y1 = panels[1]
    for y in range(y0 + 10, (y0 + y1) // 2, 6):
        for x in range(x0 + 10, x1 - 10, 6):
            draw.ellipse((x, y, x + 2, y + 2), fill=90)
    # Solid black (hair) and a speech balloon with "text" strokes.
    x0, y0, x1, y1 = panels[2]
    draw.polygon([(x0 + 10, y1 - 10), ((x0 + x1) // 2, (y0 + y1) // 2), (x1 - 10, y1 - 10)], fill=0)
    bx, by = (x0 + x1) // 2, y0 + 40
    draw.ellipse((bx - 50, by - 25, bx + 50, by + 25), fill=255, outline=0, width=2)
    for k in range(3):
        draw.line((bx - 30, by - 10 + 10 * k, bx + 30, by - 10 + 10 * k), fill=20, width=2)
    return np.asarray(img, dtype=np.uint8).copy()


def load_check_page(path: str | os.PathLike) -> DecodedPage:
    """The page to verify an export on, through the one page decoder; errors name the file."""
    try:
        return read_image(path)
    except ImageDecodeError as e:
        raise InputError(str(e)) from None


def compare_with_torch(model: ColorModel, onnx_path: str | os.PathLike, page: PageLike,
                       working_size: int) -> tuple[float, tuple[int, int], str]:
    """Run ``page`` through the PyTorch model (CPU, float32) and the ONNX file exactly as colorize
    does (resized to ``working_size``, padded to the stride); returns the largest absolute difference
    of their ab outputs in normalized units (ab/110), the working shape and the ONNX provider."""
    reference = Colorizer(model, backend="torch", device="cpu", size=working_size, half=False)
    exported = Colorizer(str(onnx_path), backend="onnx", device="cpu", size=working_size)
    expected = reference.predict_ab([page])[0]
    got = exported.predict_ab([page])[0]
    if got.shape != expected.shape:
        raise ExportCheckError(f"{onnx_path}: ONNX output shape {tuple(got.shape)} != PyTorch's {tuple(expected.shape)}")
    diff = (got.float() - expected.float()).abs().max().item() / AB_SCALE
    return diff, reference.working_shape(page), exported.provider


def exporter_opsets() -> tuple[int, int]:
    """The lowest and highest ONNX opset torch's exporter writes."""
    try:
        from torch.onnx._constants import ONNX_MAX_OPSET, ONNX_MIN_OPSET
    except ImportError:  # a torch that moved them: the range of torch 2.x
        return 7, 20
    return ONNX_MIN_OPSET, ONNX_MAX_OPSET


def check_opset(opset: int) -> None:
    """Refuse, before any work, an opset the exporter cannot write: it would fail deep inside and print its
    whole graph (121 lines for a tiny U-Net) on the way."""
    low, high = exporter_opsets()
    if not low <= opset <= high:
        raise UsageError(f"--opset {opset}: the ONNX exporter writes opsets {low} to {high}")


def run_checkpoint(path: Path) -> Path:
    """A checkpoint, or a training run's folder: its ``best.pt`` (the EMA weights that validated best),
    else its ``last.pt`` (a run stopped before its first validation), as ``--resume`` takes a folder too."""
    if not path.is_dir():
        return path
    for name in ("best.pt", "last.pt"):
        if (path / name).is_file():
            return path / name
    raise ModelError(f"{path}: a folder, but not a training run (no best.pt or last.pt in it)")


def export_checkpoint(checkpoint: str | os.PathLike, output: str | os.PathLike, *, opset: int = 17,
                      half: bool = False, working_size: int | None = None,
                      check_image: str | os.PathLike | None = None,
                      tolerance: float | None = None,
                      progress: Callable[[str], None] | None = None) -> ExportResult:
    """Export ``checkpoint`` to ONNX at ``output`` and prove it: onnxruntime and PyTorch run the same
    page (``check_image`` or a built-in line-art page) at the working size, and the file is kept only if
    their largest absolute difference is within ``tolerance`` (1e-3 fp32, 5e-2 ``half``).

    ``checkpoint``: a ``.pt`` file or a run folder (:func:`run_checkpoint`). ``working_size`` defaults to the
    checkpoint's ``meta['working_size']``, else 512. On any failure no
    file is left at ``output`` (an existing file there is untouched). ``progress`` gets each long step's
    line (default: the ``mangacolor.delivery`` logger, at DEBUG).
    """
    say = progress or logger.debug
    checkpoint, output = run_checkpoint(Path(checkpoint)), Path(output)
    check_opset(opset)
    say(f"loading {checkpoint.name}")
    try:
        model = load_model(checkpoint)
    except CheckpointError as e:
        raise ModelError(str(e)) from None
    if working_size is None:
        working_size = int(model.meta.get("working_size") or DEFAULT_WORKING_SIZE)
    if working_size < model.stride:
        raise ModelError(f"{checkpoint}: working size {working_size} is smaller than the model's stride {model.stride}")
    tolerance = (HALF_TOLERANCE if half else FP32_TOLERANCE) if tolerance is None else tolerance
    page = load_check_page(check_image) if check_image is not None else synthetic_page()

    # Export to a temp file beside the target and verify it there: a failed check never leaves a file at ``output``.
    try:
        with atomic_path(output, keep_suffix=True) as staging:
            say(f"exporting {checkpoint.name} to ONNX (opset {opset})")
            export_onnx(model, staging, working_size=working_size, opset=opset, half=half,
                        meta={"checkpoint": checkpoint.name})
            # export_onnx casts a copy for float16, so the loaded model is still the float32 reference.
            say("checking onnxruntime against PyTorch")
            diff, check_shape, provider = compare_with_torch(model, staging, page, working_size)
            if not diff <= tolerance:
                raise ExportCheckError(
                    f"{output}: onnxruntime differs from PyTorch by {diff:.3g} on the check page "
                    f"(tolerance {tolerance:g}); file not written")
    except MangacolorError:
        raise
    except Exception as e:  # tracing and the exporter raise many types; the user needs one line
        raise JobError(f"{checkpoint}: ONNX export failed ({type(e).__name__}: {first_line(e)})") from None
    return ExportResult(path=output, model=model.name, working_size=working_size, opset=opset, half=half,
                        check_shape=check_shape, max_abs_diff=diff, tolerance=tolerance,
                        provider=provider)
