"""`mangacolor export`: a checkpoint to ONNX, verified against PyTorch before it reports success."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .app import app
from ..errors import MangacolorError


@app.command("export")
def export_command(
    checkpoint: Path = typer.Argument(..., help="Training checkpoint (.pt) to export."),
    output: Path = typer.Option(..., "-o", "--output", help="ONNX file to write."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset version."),
    half: bool = typer.Option(False, "--half", help="Float16 weights and I/O (for CUDA inference)."),
    size: Optional[int] = typer.Option(None, "--size", min=1,
                                       help="Working size stored in the file (default: the checkpoint's, else 512)."),
    check_image: Optional[Path] = typer.Option(None, "--check-image",
                                               help="Page to verify on (default: a built-in line-art page)."),
    tolerance: Optional[float] = typer.Option(None, "--tolerance",
                                              help="Largest allowed |ONNX - PyTorch| (default 1e-3, 5e-2 with --half)."),
) -> None:
    """Export CHECKPOINT to ONNX with dynamic batch/height/width and its metadata, then run onnxruntime
    and PyTorch on the same page and fail (exit 1, no file written) if they differ beyond the tolerance.

    Example: mangacolor export runs/unet/best.pt -o unet.onnx
    """
    from ..engine.export import export_checkpoint

    console = Console(soft_wrap=True)
    try:
        with console.status(f"exporting {checkpoint.name} ..."):
            result = export_checkpoint(checkpoint, output, opset=opset, half=half, working_size=size,
                                       check_image=check_image, tolerance=tolerance)
    except MangacolorError as e:
        Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(1)
    h, w = result.check_shape
    console.print(
        f"wrote {result.path} ({result.model}, working size {result.working_size}, opset {result.opset}, "
        f"{'float16' if result.half else 'float32'}); max |onnx - torch| = {result.max_abs_diff:.3g} "
        f"on a {h}x{w} page (tolerance {result.tolerance:g}, {result.provider})", highlight=False)
