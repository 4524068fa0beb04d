"""The settings an output is colored with, kept inside it: a rerun skips an output finished with the same
settings and colors again one made with other settings (``pipeline.colorize``).

The record is one line of JSON, in every page entry's comment of an output archive and in the metadata of
an output page (``pages.images.settings_params``). It holds what changes the picture: the model (its
file's content, never its path: outputs are shared), the working size and page format as asked, fill,
fill_paper, palette, saturation, recolor, quality, and the content of the hint files the output's pages use. How
the model runs (device, backend, batch size) is left out: it gives the same picture.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

from ..errors import MangacolorError
from ..pages.sources import Job
from .hints import HintSource

# Hex digits of a sha256 kept: enough to tell two models (or two hint files) apart, short in a ZIP comment.
DIGEST_CHARS = 16


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:DIGEST_CHARS]


def model_identity(path: Path | None) -> str:
    """``default.onnx sha256:<digest>`` of a model file; an in-memory model has no file to tell it by."""
    return "in-memory model" if path is None else f"{path.name} sha256:{file_digest(path)}"


def run_settings(*, model_path: Path | None, size: int | None, fill: str, fill_paper: bool, saturation: float,
                 recolor: bool, page_format: str | None, quality: int, palette: str = "safe",
                 region_model: Path | None = None) -> dict[str, Any]:
    """The settings of a run that every output shares (the hints come per output: ``job_record``).
    ``region_model``: the region model's file where one colors the regions (``engine.region_model``)."""
    return {"model": model_identity(model_path), "size": size, "fill": fill, "fill_paper": bool(fill_paper),
            "palette": palette, "region_model": None if region_model is None else model_identity(region_model),
            # float: saturation 1 from Python and 1.0 from the CLI are one setting
            "saturation": float(saturation), "recolor": bool(recolor), "format": page_format,
            "quality": int(quality)}


def hints_identity(files: Iterable[tuple[str, Path | None]]) -> str | None:
    """One digest of the hint files an output's pages use (page name and file content), None for none."""
    used = [(name, path) for name, path in files if path is not None]
    if not used:
        return None
    digest = hashlib.sha256()
    for name, path in used:
        digest.update(f"{name}\0{file_digest(path)}\0".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:DIGEST_CHARS]


def job_record(settings: dict[str, Any], hints: HintSource, job: Job) -> str:
    """The record ``job`` writes into its output: the run's settings and its own pages' hint files."""
    hinted = None
    if hints.path is not None:
        try:
            hinted = hints_identity((ref.name, hints.for_page(job, ref)) for ref in job.pages())
        except (MangacolorError, OSError):
            hinted = None  # an input that cannot be read fails on its own when the run reaches it
    return json.dumps({**settings, "hints": hinted}, sort_keys=True, separators=(",", ":"))


def made_with_other_settings(job: Job, recolor: bool) -> bool:
    """Whether a finished output was colored with settings other than this run's (``job.settings``).

    An output without a record is finished only where it cannot hold one (a BMP page; ``Job.output_state``
    calls any other "foreign"); but a
    page kept as it was (already in color, so a copy of its input) is colored under ``recolor``.
    """
    made_with = job.output_settings()
    if made_with is None:
        return recolor and job.output_is_a_copy()
    return made_with != job.settings

