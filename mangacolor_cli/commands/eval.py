"""`mangacolor eval`: score predictions or models against color pages, beside a gray baseline."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, List, Optional

import typer
from rich.console import Console
from rich.text import Text

from ..errors import MangacolorError, UsageError
from .app import FAILED, USAGE, app, fail, labeled


class HintProtocol(str, Enum):
    dht = "dht"


EPILOG = """\
Examples:

  mangacolor eval --pred out/ --target color/ --csv per_image.csv

  mangacolor eval -m unet.pt -m pix2pix.onnx --data set/ --report r.html

  mangacolor eval -m unet.pt --data eval_set/ --grid grid.png --samples 8

  mangacolor eval -m default --data val_comicgen/ --data val_clipart/

  mangacolor eval -m default --data set/ --hint-protocol dht --pages 10

Exit codes: 0 done, 1 nothing could be scored (or a model failed), 2 bad usage.
"""


@app.command("eval", epilog=EPILOG)
def eval_command(
    pred: Annotated[Optional[Path], typer.Option(help="Folder of colored pages to score (with --target).")] = None,
    target: Annotated[Optional[Path], typer.Option(help="Folder of ground-truth color pages (with --pred).")] = None,
    model: Annotated[Optional[List[str]], typer.Option(
        "--model", "-m", help="Checkpoint (.pt) or ONNX file to run; repeat to compare models.")] = None,
    data: Annotated[Optional[List[Path]], typer.Option(
        help="Eval set for --model: DIR/bw + DIR/color, or color pages; repeat for several sets, each scored as "
             "its own row group (with --csv/--grid/--report, one file per set, named after it).")] = None,
    size: Annotated[Optional[int], typer.Option(help="Working size (long side) the models run at (default: each "
                                                     "model's own).")] = None,
    manga_look: Annotated[bool, typer.Option(
        "--manga-look", help="Derive gray inputs of color-only data with the training manga look (fixed seed) "
                             "instead of the plain luminance.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda (cuda:N), for the models and the metrics.")] = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Pages per model batch.")] = 4,
    fill: Annotated[Optional[List[str]], typer.Option(
        metavar="flat|soft", help="How --model's color is laid (see colorize --fill); give it twice (--fill flat "
                                  "--fill soft) for a row each.")] = None,
    palette: Annotated[Optional[List[str]], typer.Option(
        metavar="safe|vivid", help="How boldly --model's colors are laid (see colorize --palette); give it twice "
                                   "for a row each.")] = None,
    csv_path: Annotated[Optional[Path], typer.Option("--csv", help="Write per-image metrics (a row per page and "
                                                                   "system).")] = None,
    json_path: Annotated[Optional[str], typer.Option("--json", help="Write the summary as JSON ('-' for "
                                                                    "stdout).")] = None,
    grid: Annotated[Optional[Path], typer.Option(help="Write a PNG grid: input | each model | target.")] = None,
    samples: Annotated[int, typer.Option(min=0, help="Pages in the grid.")] = 4,
    report: Annotated[Optional[Path], typer.Option(help="Write one self-contained HTML report.")] = None,
    run_dir: Annotated[Optional[Path], typer.Option(
        "--run-dir", help="Training run folder: draw its metrics.jsonl loss curves into the report.")] = None,
    hint_protocol: Annotated[Optional[HintProtocol], typer.Option(
        "--hint-protocol", help="Score --model's hints under the Hint-AUC protocol instead (dht: deterministic "
                                "scribbles from each target's regions at ratios 0..1, CIEDE2000, area under the "
                                "curve), beside Levin et al. 2004 given the same scribbles. Needs the hintauc "
                                "package (docs/MODELS.md).")] = None,
    pages: Annotated[Optional[int], typer.Option(
        min=1, help="With --hint-protocol: score the first N pages of each set.")] = None,
    hint_cache: Annotated[Optional[Path], typer.Option(
        "--hint-cache", help="With --hint-protocol: keep each page's generated scribbles here and reuse them.")] = None,
) -> None:
    """Score colorized pages: MSE, PSNR, SSIM, CIEDE2000 and colorfulness, a row per model plus a gray
    baseline (the gray input taken as the prediction).
    """
    from models.errors import printable
    from trainer.progress import ProgressBar

    from ..evaluation import reports, scoring

    console = _wide(Console(soft_wrap=True, highlight=False))
    err_console = _wide(Console(stderr=True, soft_wrap=True, highlight=False))
    quiet = json_path == "-"
    bars: dict[str, ProgressBar] = {}

    def progress(label: str, done: int, total: int) -> None:
        if label not in bars:
            bars[label] = ProgressBar(total, description=f"scoring {label}", echo=False, transient=True,
                                      console=err_console)
        bars[label].set_total(total, completed=done)

    if hint_protocol is not None:
        _hint_protocol(model, data, size=size, device=device, pages=pages, cache=hint_cache, json_path=json_path,
                       console=console, err_console=err_console)
        return
    try:
        by_dirs = pred is not None or target is not None
        if by_dirs and (model or data):
            raise UsageError("use either --pred/--target or --model/--data, not both")
        if by_dirs and (pred is None or target is None):
            raise UsageError("--pred and --target go together")
        if not by_dirs and not (model and data):
            raise UsageError("give --pred DIR --target DIR, or --model M [--model M2 ...] --data PATH")
        results: list[tuple[str, object]] = []
        try:
            if by_dirs:
                results.append(("", scoring.evaluate_dirs(pred, target, samples=samples,
                                                          device=scoring.metric_device(device), progress=progress)))
            else:
                names = _set_names(data)
                for name, one in zip(names, data):
                    results.append((name, scoring.evaluate_models(
                        model, one, size=size, manga_look=manga_look, device=device, batch_size=batch_size,
                        samples=samples, progress=progress, fills=fill, palettes=palette)))
        finally:
            for bar in bars.values():
                bar.close()
        out = err_console if quiet else console
        several = len(results) > 1
        for name, result in results:
            if several:
                out.print(Text("set " + printable(name), style="bold"))
            out.print(reports.results_table(result))
            for key in result.missing_predictions:
                out.print(labeled("missing prediction/input:", "yellow", printable(key)))
            for key in result.missing_targets:
                out.print(labeled("missing target:", "yellow", printable(key)))
            for key, message in result.errors:
                out.print(labeled("not scored:", "red", printable(message)))
            if csv_path:
                out.print(Text(f"wrote {reports.write_csv(result, _per_set(csv_path, name, several))}"))
            if grid:
                out.print(Text(f"wrote {reports.write_grid(result, _per_set(grid, name, several))}"))
            if report:
                out.print(Text(f"wrote {reports.write_report(result, _per_set(report, name, several), run_dir=run_dir)}"))
        if json_path:
            if several:
                text = reports.write_sets_json({name: r for name, r in results}, json_path)
            else:
                text = reports.write_json(results[0][1], json_path)
            _said_json(text, json_path, out)
    except UsageError as e:
        fail(e, USAGE)
    except MangacolorError as e:
        fail(e, FAILED)
    if not all(result.keys for _, result in results):
        raise typer.Exit(FAILED)


def _hint_protocol(model: Optional[List[str]], data: Optional[List[Path]], *, size: Optional[int], device: str,
                   pages: Optional[int], cache: Optional[Path], json_path: Optional[str], console: Console,
                   err_console: Console) -> None:
    """``eval --hint-protocol dht``: each set's Hint-AUC table, Levin 2004 and the gray page beside the models."""
    from models.errors import printable
    from trainer.progress import ProgressBar

    from ..evaluation import hint_protocol as hp
    from ..evaluation import reports

    quiet = json_path == "-"
    out = err_console if quiet else console
    try:
        if not (model and data):
            raise UsageError("--hint-protocol needs --model M [--model M2 ...] and --data DIR (bw/ + color/)")
        results = []
        for one in data:
            bar = ProgressBar(0, description=f"hint protocol {printable(Path(one).name)}", echo=False, transient=True,
                              console=err_console)
            try:
                result = hp.evaluate_models_with_hints(model, one, size=size, device=device, pages=pages,
                                                       cache_dir=cache,
                                                       progress=lambda done, total: bar.set_total(total, completed=done))
            finally:
                bar.close()
            results.append(result)
            out.print(Text("set " + printable(result.name), style="bold"))
            out.print(reports.hint_protocol_table(result))
        if json_path:
            _said_json(hp.write_json(results, json_path), json_path, out)
    except UsageError as e:
        fail(e, USAGE)
    except MangacolorError as e:
        fail(e, FAILED)


def _said_json(text: str, json_path: str, out: Console) -> None:
    """``--json -``: the JSON is the standard output; ``--json FILE`` (written already): say where it went."""
    if json_path == "-":
        typer.echo(text)
    else:
        out.print(Text(f"wrote {json_path}"))


def _set_names(folders: List[Path]) -> list[str]:
    """A short unique name per eval set: its folder name (with a number where two share one)."""
    names: list[str] = []
    for folder in folders:
        base = Path(folder).resolve().name or "set"
        name, i = base, 2
        while name in names:
            name, i = f"{base}-{i}", i + 1
        names.append(name)
    return names


def _per_set(path: Path, name: str, several: bool) -> Path:
    """``grid.png`` -> ``grid_val_comicgen.png`` when several sets are scored."""
    path = Path(path)
    return path.with_name(f"{path.stem}_{name}{path.suffix}") if several else path


def _wide(console: Console) -> Console:
    # Piped output defaults to 80 columns, too narrow for the metric table.
    if not console.is_terminal and console.width < 120:
        console.width = 120
    return console
