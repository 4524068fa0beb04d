"""`mangacolor quantize`: an int8 twin of an ONNX model, written only when it passes the quality gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, List

import typer
from rich.console import Console
from rich.text import Text

from ..errors import MangacolorError, require_folder
from .app import EXIT_CODES, FAILED, app, fail, print_error, refuse_missing


@app.command("quantize", epilog=EXIT_CODES)
def quantize_command(
    model: Annotated[Path, typer.Argument(help="Float32 ONNX model to quantize.", show_default=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="int8 ONNX file to write (only if it passes).",
                                         show_default=False)],
    data: Annotated[List[Path], typer.Option(
        "--data", help="Validation set of the gate (DIR/bw + DIR/color, or color pages); repeat for several.",
        show_default=False)],
    calibrate: Annotated[Path, typer.Option(
        help="Pages to calibrate the int8 ranges on: a folder, a CBZ/ZIP or an image (an eval set's bw/ is "
             "used); keep them apart from the --data sets.", show_default=False)],
    tolerance: Annotated[float, typer.Option(min=0.0, help="Largest allowed rise of mean CIEDE2000 "
                                                           "on any set.")] = 0.1,
    pages: Annotated[int, typer.Option(min=1, help="Calibration pages.")] = 16,
    as_json: Annotated[bool, typer.Option("--json", help="Print the measurement as JSON.")] = False,
) -> None:
    """Quantize MODEL to int8 (onnxruntime static QDQ, per-channel), score it beside MODEL on every
    --data set with the flat fill, and write it only if its CIEDE2000 is within --tolerance of
    MODEL's on each: otherwise exit 1 and write nothing. int8 is never used unless you pass its file.

    Example: mangacolor quantize model.onnx -o model-int8.onnx --calibrate pages/ --data val/
    """
    try:
        for folder in data:  # the check the scoring makes of each set, before torch loads
            require_folder(folder)
    except MangacolorError as e:
        fail(e)
    refuse_missing((calibrate, "no such file or folder (calibration pages)"))
    from models.toolbox.progress import ProgressBar

    from ..delivery.quantize import quantize_int8

    console = Console(soft_wrap=True, highlight=False)
    try:
        with ProgressBar(None, description="quantize", echo=False, transient=True, stderr=True) as bar:
            bar.set_status("quantizing ...")
            result = quantize_int8(model, output, data, calibrate, tolerance=tolerance, pages=pages,
                                   progress=bar.set_status,
                                   page_progress=lambda done, total: bar.set_total(total, completed=done))
    except MangacolorError as e:
        fail(e)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    if not result.passed:
        print_error(f"{model}: int8 refused, nothing written: {result.describe()}")
        raise typer.Exit(FAILED)
    if not as_json:
        console.print(Text(f"wrote {output}: {result.describe()}"))
