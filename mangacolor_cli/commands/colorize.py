"""`mangacolor colorize`: parse, call ``engine.pipeline.colorize``, print the summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, List, Optional

import typer
from rich.console import Console
from rich.text import Text

from ..engine.choices import BACKENDS, DEVICES, FILLS, OUTPUT_FORMATS, PALETTES
from ..errors import MangacolorError
from .app import EXIT_CODES, app, choice, device_check, fail, labeled, print_error

Backend = choice("Backend", BACKENDS)
Fill = choice("Fill", FILLS)
Palette = choice("Palette", PALETTES)
# "jpeg" is accepted as the API accepts it (written as .jpg).
PageFormat = choice("PageFormat", OUTPUT_FORMATS + ("jpeg",))

EPILOG = """\
Examples:

  mangacolor colorize chapter.cbz                   # -> chapter.color.cbz

  mangacolor colorize pages/ -o colored/            # -> colored/001.png

  mangacolor colorize ch.cbz page.png -o out/  # -> out/ch.cbz, out/page.png

  mangacolor colorize 005.jpg -o 005.png            # written as PNG

  mangacolor colorize library/ --model unet.pt      # a whole library

  mangacolor colorize page.png --format webp --size 1024 --verbose

  mangacolor colorize ch1.cbz ch2.cbz -o out/ --json

  mangacolor colorize chapter.cbz --compare previews/   # a contact sheet

  mangacolor colorize pages/ --device cuda:1 --format jpeg

  mangacolor colorize page.png --hints hints.png    # scribbles set the colors

  mangacolor colorize chapter.cbz --hints hints/    # hints/001.png: page 001

  mangacolor colorize chapter.cbz --reference cover.png  # cover's colors

  mangacolor colorize chapter.cbz --fill soft --saturation 1.3
\n
-o PATH: a folder input is mirrored into PATH itself, with or without a trailing / (pages/001.png -> PATH/001.png). One file input's output is PATH when PATH names a file (out.cbz; out.png, whose extension picks the page format), else it goes into the folder PATH under the input's own name (PATH ends in /, is a folder, or has no extension). Several inputs: each one's output goes into the folder PATH under its own name.

A rerun skips outputs finished with the same settings and colors again those made with other settings (model, --size, --fill, --palette, --saturation, --hints, --reference, --keep-lightness, --recolor, --format, --quality); --overwrite redoes every output.

--json prints one JSON document on stdout: the counts (colored, already_in_color, skipped, failed) and a record per page; warnings and errors go to stderr.

An input that exists but cannot be read, or holds no pages, fails alone (exit 1) and the other inputs are colored; a page that fails keeps its original in an archive.

""" + EXIT_CODES


@app.command("colorize", epilog=EPILOG)
def colorize_command(
    inputs: Annotated[List[Path], typer.Argument(
        metavar="INPUT...", show_default=False,
        help="Image files (PNG, JPEG, WebP, BMP, TIFF), folders (recursive, natural page order) or CBZ/ZIP/CBR "
             "archives.")],
    # A str, not a Path: Path drops the trailing slash of ``-o DIR/``, which says "a folder".
    output: Annotated[Optional[str], typer.Option(
        "-o", "--output", metavar="PATH",
        help="Output file or folder (-o PATH, below the options). Default: beside each input (chapter.color.cbz, "
             "pages_color/, page.color.png).")] = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", metavar="NAME_OR_PATH",
        help="A .pt checkpoint, an .onnx file, or a packaged model name. Default: the packaged default model.")] = None,
    device: Annotated[str, typer.Option(
        metavar="auto|cpu|cuda|cuda:N", callback=device_check(DEVICES),
        help="auto (the GPU when there is one), cpu, cuda or cuda:N (the GPU of that index).")] = "auto",
    backend: Annotated[Backend, typer.Option(
        help="auto, torch or onnx (onnxruntime). auto: onnx for an .onnx model; for a checkpoint, onnx on the CPU "
             "when the model is heavy enough to gain (--verbose says why), torch otherwise.")] = Backend.auto,
    size: Annotated[Optional[int], typer.Option(
        min=16, help="Working size: the long side the model sees, in pixels. Default: the model's own, else 768.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(
        "--batch-size", min=1, help="Pages per model call. Default: by the device and the page shapes "
                                    "(one on the CPU, where it is fastest).")] = None,
    page_format: Annotated[Optional[PageFormat], typer.Option(
        "--format", case_sensitive=False,
        help="Write every page as png, jpg (or jpeg) or webp. Default: each page's own format.")] = None,
    quality: Annotated[int, typer.Option(min=1, max=100, help="JPEG/WebP quality.")] = 90,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Redo every output that already exists "
                                                                "(default: skip those finished with the same "
                                                                "settings).")] = False,
    recolor: Annotated[bool, typer.Option("--recolor", help="Also color pages that are already in color.")] = False,
    fill_paper: Annotated[bool, typer.Option(
        "--fill-paper/--keep-lightness",
        help="--fill-paper: white paper under a fill color darkens just enough to hold it (ink stays exactly as it "
             "is). --keep-lightness: keep every pixel's lightness, which leaves pure black-and-white pages nearly "
             "gray.")] = True,
    fill: Annotated[Optional[Fill], typer.Option(
        "--fill",
        help="flat: each area enclosed by ink takes one color, paper outside the panels and speech balloons stay "
             "white, areas the model is unsure of stay uncolored. soft: every pixel takes its own predicted color. "
             "Default: flat (it scores better, docs/MODELS.md).")] = None,
    palette: Annotated[Palette, typer.Option(
        "--palette",
        help="safe: an area takes the color nearest everything the model thinks likely for it, gray where it "
             "is torn (much of a page stays gray). vivid: every area that is not paper, a balloon or solid black "
             "takes its most likely color (a colored page, less often right; docs/MODELS.md, \"The region model\").")] = Palette("safe"),
    region_model: Annotated[str, typer.Option(
        "--region-model", metavar="auto|none|FILE",
        help="With --fill flat, the region model that picks each area's color from the whole page: auto uses "
             "the one beside the model (NAME.regions.onnx; the default model has one), none lays the pixel "
             "model's own colors, or a .regions.onnx file.")] = "auto",
    saturation: Annotated[float, typer.Option(
        "--saturation", min=0.0, max=2.0, metavar="FACTOR",
        help="Scale the model's colors: 0 keeps the page gray, 1 as predicted, up to 2. Hints keep their "
             "exact color.")] = 1.0,
    hints: Annotated[Optional[Path], typer.Option(
        "--hints", metavar="FILE|DIR",
        help="Color hints: a PNG the size of the page, transparent except colored scribbles; every area a "
             "scribble touches takes exactly its color. For a folder or archive, a DIR with one hint file per page, "
             "matched by page name (DIR/001.png for page 001.jpg; DIR/<archive name>/001.png first).")] = None,
    reference: Annotated[Optional[list[Path]], typer.Option(
        "--reference", metavar="PATH",
        help="A colored page of the same characters (an image, a folder or an archive of them; repeatable): "
             "each region of a B/W page takes the color of the region it matches there, where the match is "
             "confident. Hints win over references, references over the model. B/W pages of a folder or "
             "archive are left out, so a chapter can be its own reference.")] = None,
    chapter_references: Annotated[bool, typer.Option(
        "--chapter-references/--no-chapter-references",
        help="An archive's own color pages (a chapter's opening pages, a cover) serve as references for its "
             "B/W pages (on by default; off when the color pages show other characters than the rest).")] = True,
    compare: Annotated[Optional[Path], typer.Option(
        "--compare", metavar="DIR",
        help="Also write before/after pictures into DIR: a side-by-side JPEG per page file, a contact sheet per "
             "archive (NAME.compare.jpg).")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the summary as JSON (for scripts): the counts, and a record per page (input, output, "
                       "status: colored, already in color, skipped or failed; seconds; error; colored_area; "
                       "reference_regions with --reference).")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Say which model, device, backend and "
                                                                  "provider run.")] = False,
) -> None:
    """Color black-and-white manga pages: images, folders and CBZ/ZIP/CBR archives.

    The model predicts color at the working size; the output keeps every page's full resolution and its original lines: ink keeps its exact lightness, and white paper under a fill color darkens only as much as that color needs. Pages already in color are copied unchanged.

    Outputs are written to a temporary name and renamed when complete, never over an input; a rerun skips outputs finished with the same settings and colors again those made with other settings.
    """
    from models.toolbox.errors import printable

    from ..engine.pipeline import colorize as run_colorize

    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    try:
        summary = run_colorize(
            [str(p) for p in inputs], output, model=model, device=device, backend=backend.value, compare=compare,
            size=size, batch_size=batch_size, page_format=page_format.value if page_format else None, quality=quality, overwrite=overwrite, recolor=recolor,
            fill_paper=fill_paper, fill=fill.value if fill else None, saturation=saturation, palette=palette.value, region_model=region_model, hints=hints,
            references=reference or None, chapter_references=chapter_references,
            on_error=lambda message: print_error(message, err),
            on_ready=(lambda c: err.print(Text(c.describe(), style="dim"), soft_wrap=True)) if verbose else None)
    except MangacolorError as e:
        fail(e)  # 2 when the job could not start (an option, an input, the model), else 1
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]: finished outputs are kept, unfinished ones were not written")
        raise typer.Exit(130)
    for warning in summary.warnings:
        err.print(labeled("warning:", "yellow", printable(warning)), soft_wrap=True)
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        from models.toolbox.progress import format_rate

        rate = f" ({format_rate(summary.pages_per_second, 'pages')})" if summary.done + summary.kept else ""
        out.print(f"{summary.done} colored, {summary.kept} already in color, {summary.skipped} skipped, "
                  f"{summary.failed} failed in {summary.seconds:.1f} s{rate}")
        if verbose:
            for path in summary.outputs:
                out.print(Text("  wrote " + printable(path)), soft_wrap=True)
    raise typer.Exit(summary.exit_code)
