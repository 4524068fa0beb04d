"""`mangacolor export`: a checkpoint to ONNX, verified against PyTorch before it reports success."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.text import Text

from ..errors import MangacolorError
from .app import EXIT_CODES, app, fail, refuse_missing


@app.command("export", epilog=EXIT_CODES)
def export_command(
    checkpoint: Annotated[Path, typer.Argument(help="Training checkpoint (.pt) to export, or a run folder (its best.pt, else last.pt).", show_default=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="ONNX file to write.", show_default=False)],
    opset: Annotated[int, typer.Option(help="ONNX opset version.")] = 17,
    half: Annotated[bool, typer.Option("--half", help="Float16 weights and I/O (for CUDA inference).")] = False,
    size: Annotated[Optional[int], typer.Option(min=1, help="Working size stored in the file "
                                                            "(default: the checkpoint's, else 512).")] = None,
    check_image: Annotated[Optional[Path], typer.Option("--check-image", help="Page to verify on "
                                                        "(default: a built-in line-art page).")] = None,
    tolerance: Annotated[Optional[float], typer.Option(help="Largest allowed |ONNX - PyTorch| "
                                                            "(default 1e-3, 5e-2 with --half).")] = None,
) -> None:
    """Export CHECKPOINT to ONNX with dynamic batch/height/width and its metadata, then run onnxruntime
    and PyTorch on the same page and fail (exit 1, no file written) if they differ beyond the tolerance.

    Example: mangacolor export runs/unet/best.pt -o unet.onnx (or: mangacolor export runs/unet -o unet.onnx)
    """
    refuse_missing((checkpoint, "no such checkpoint file"))
    from models.toolbox.progress import ProgressBar

    from ..delivery.export import export_checkpoint

    console = Console(soft_wrap=True, highlight=False)
    try:
        with ProgressBar(None, description="export", echo=False, transient=True, stderr=True) as bar:
            result = export_checkpoint(checkpoint, output, opset=opset, half=half, working_size=size,
                                       check_image=check_image, tolerance=tolerance, progress=bar.set_status)
    except MangacolorError as e:
        fail(e)
    h, w = result.check_shape
    console.print(Text(
        f"wrote {result.path} ({result.model}, working size {result.working_size}, opset {result.opset}, "
        f"{'float16' if result.half else 'float32'}); max |onnx - torch| = {result.max_abs_diff:.3g} "
        f"on a {h}x{w} page (tolerance {result.tolerance:g}, {result.provider})"))
