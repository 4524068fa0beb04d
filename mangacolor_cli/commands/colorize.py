"""`mangacolor colorize`: parse, call ``pipeline.colorize``, print the summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import enum

import typer
from rich.console import Console

from .app import app
from ..errors import InputError, MangacolorError, ModelError, OutputError, UsageError

class Device(str, enum.Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Backend(str, enum.Enum):
    auto = "auto"
    torch = "torch"
    onnx = "onnx"


class PageFormat(str, enum.Enum):
    png = "png"
    jpg = "jpg"
    webp = "webp"


EPILOG = """\
Examples:

  mangacolor colorize chapter.cbz                   # -> chapter.color.cbz

  mangacolor colorize pages/ -o pages_color/        # a folder, mirrored

  mangacolor colorize library/ --model unet.pt      # every archive in a library

  mangacolor colorize page.png --format webp --size 1024 --verbose

  mangacolor colorize ch1.cbz ch2.cbz -o out/ --json
\n
Exit codes: 0 all pages done, 1 some pages failed (originals kept in archives), 2 bad usage.
"""


@app.command(epilog=EPILOG)
def colorize(
    inputs: List[Path] = typer.Argument(..., metavar="INPUT...", show_default=False,
                                        help="Image files (PNG, JPEG, WebP, BMP, TIFF), folders (recursive, natural "
                                             "page order) or CBZ/ZIP/CBR archives."),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="Output file or folder. Default: beside each input "
                                               "(chapter.color.cbz, pages_color/, page.color.png). "
                                               "With several inputs, a folder."),
    model: Optional[str] = typer.Option(None, "--model", "-m", metavar="NAME_OR_PATH",
                                        help="A .pt checkpoint, an .onnx file, or a packaged model name. "
                                             "Default: the packaged default model."),
    device: Device = typer.Option(Device.auto, help="auto (the GPU when there is one), cpu or cuda."),
    backend: Backend = typer.Option(Backend.auto, help="auto, torch or onnx (onnxruntime). auto: onnx for an .onnx model; for a checkpoint, onnx on the CPU when the model is heavy enough to gain (--verbose says why), torch otherwise."),
    size: Optional[int] = typer.Option(None, min=16, help="Working size: the long side the model sees, in pixels. "
                                                        "Default: the model's own, else 768."),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="Pages per model call."),
    format: Optional[PageFormat] = typer.Option(None, "--format", help="Write every page as png, jpg or webp. "
                                                                "Default: each page's own format."),
    quality: int = typer.Option(90, min=1, max=100, help="JPEG/WebP quality."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo outputs that already exist (default: skip them)."),
    recolor: bool = typer.Option(False, "--recolor", help="Also color pages that are already in color."),
    fill_paper: bool = typer.Option(True, "--fill-paper/--keep-lightness",
                                    help="--fill-paper: white paper under a fill color darkens just enough to hold "
                                         "it (ink stays exactly as it is). --keep-lightness: keep every pixel's "
                                         "lightness, which leaves pure black-and-white pages nearly gray."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON (for scripts)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Say which model, device, backend and provider run."),
) -> None:
    """Color black-and-white manga pages: images, folders and CBZ/ZIP/CBR archives.

    The model predicts color at the working size; the output keeps every page's full resolution and its original lines: ink keeps its exact lightness, and white paper under a fill color darkens only as much as that color needs. Pages already in color are copied unchanged.

    Outputs are written to a temporary name and renamed when complete, never over an input; a rerun skips finished outputs.
    """
    from ..engine.pipeline import colorize as run_colorize

    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    try:
        summary = run_colorize(
            [str(p) for p in inputs], output, model=model, device=device.value, backend=backend.value,
            size=size, batch_size=batch_size, format=format.value if format else None, quality=quality, overwrite=overwrite, recolor=recolor,
            fill_paper=fill_paper,
            on_error=lambda message: err.print(f"[red]error:[/red] {message}", soft_wrap=True),
            on_ready=(lambda c: err.print(f"[dim]{c.describe()}[/dim]", soft_wrap=True)) if verbose else None)
    except (UsageError, InputError, OutputError, ModelError) as e:
        err.print(f"[red]error:[/red] {e}", soft_wrap=True)
        raise typer.Exit(2)
    except MangacolorError as e:
        err.print(f"[red]error:[/red] {e}", soft_wrap=True)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]: finished outputs are kept, unfinished ones were not written")
        raise typer.Exit(130)
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        out.print(f"{summary.done} colored, {summary.kept} already in color, {summary.skipped} skipped, "
                  f"{summary.failed} failed in {summary.seconds:.1f} s ({summary.pages_per_second:.2f} pages/s)")
        if verbose:
            for path in summary.outputs:
                out.print(f"  wrote {path}", soft_wrap=True)
    raise typer.Exit(summary.exit_code)
