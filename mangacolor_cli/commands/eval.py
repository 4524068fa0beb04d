"""`mangacolor eval`: score predictions or models against color pages, beside a gray baseline."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from .app import app
from ..errors import MangacolorError, UsageError


@app.command("eval")
def eval_command(
    pred: Optional[Path] = typer.Option(None, "--pred", help="Folder of colored pages to score (with --target)."),
    target: Optional[Path] = typer.Option(None, "--target", help="Folder of ground-truth color pages (with --pred)."),
    model: Optional[List[str]] = typer.Option(None, "--model", "-m",
                                              help="Checkpoint (.pt) or ONNX file to run; repeat to compare models."),
    data: Optional[Path] = typer.Option(None, "--data", help="Eval set for --model: DIR/bw + DIR/color, or color pages."),
    size: Optional[int] = typer.Option(None, "--size", help="Working size (long side) the models run at (default: each model's own)."),
    manga_look: bool = typer.Option(False, "--manga-look",
                                    help="Derive gray inputs of color-only data with the training manga look (fixed seed) "
                                         "instead of the plain luminance."),
    device: str = typer.Option("auto", "--device", help="auto|cpu|cuda, for the models and the metrics."),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="Pages per model batch."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write per-image metrics (a row per page and system)."),
    json_path: Optional[str] = typer.Option(None, "--json", help="Write the summary as JSON ('-' for stdout)."),
    grid: Optional[Path] = typer.Option(None, "--grid", help="Write a PNG grid: input | each model | target."),
    samples: int = typer.Option(4, "--samples", min=0, help="Pages in the grid."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write one self-contained HTML report."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Training run folder: draw its metrics.jsonl "
                                                                   "loss curves into the report."),
) -> None:
    """Score colorized pages: MSE, PSNR, SSIM, CIEDE2000 and colorfulness, a row per model plus a gray
    baseline (the gray input taken as the prediction).

    Examples:
      mangacolor eval --pred out/ --target color/ --csv per_image.csv
      mangacolor eval -m unet.pt -m pix2pix.onnx --data eval_set/ --report report.html --grid grid.png
    """
    from ..evaluation import reports, scoring

    console = _wide(Console(soft_wrap=True))
    err_console = _wide(Console(stderr=True, soft_wrap=True))
    quiet = json_path == "-"
    try:
        by_dirs = pred is not None or target is not None
        if by_dirs and (model or data):
            raise UsageError("use either --pred/--target or --model/--data, not both")
        if by_dirs and (pred is None or target is None):
            raise UsageError("--pred and --target go together")
        if not by_dirs and not (model and data):
            raise UsageError("give --pred DIR --target DIR, or --model M [--model M2 ...] --data PATH")
        with _progress(err_console) as update:
            if by_dirs:
                result = scoring.evaluate_dirs(pred, target, samples=samples, device=scoring.metric_device(device),
                                          progress=update)
            else:
                result = scoring.evaluate_models(model, data, size=size, manga_look=manga_look, device=device,
                                            batch_size=batch_size, samples=samples, progress=update)
        out = err_console if quiet else console
        out.print(reports.results_table(result))
        for key in result.missing_predictions:
            out.print(f"[yellow]missing prediction/input:[/yellow] {key}", highlight=False)
        for key in result.missing_targets:
            out.print(f"[yellow]missing target:[/yellow] {key}", highlight=False)
        for key, message in result.errors:
            out.print(f"[red]not scored:[/red] {message}", highlight=False)
        if csv_path:
            out.print(f"wrote {reports.write_csv(result, csv_path)}", highlight=False)
        if grid:
            out.print(f"wrote {reports.write_grid(result, grid)}", highlight=False)
        if report:
            out.print(f"wrote {reports.write_report(result, report, run_dir=run_dir)}", highlight=False)
        if json_path:
            text = reports.write_json(result, json_path)
            if quiet:
                typer.echo(text)
            else:
                out.print(f"wrote {json_path}", highlight=False)
    except MangacolorError as e:
        err_console.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2 if isinstance(e, UsageError) else 1)
    if not result.keys:
        raise typer.Exit(1)


def _wide(console: Console) -> Console:
    # Piped output defaults to 80 columns, too narrow for the metric table.
    if not console.is_terminal and console.width < 120:
        console.width = 120
    return console


class _progress:
    """A rich progress bar fed by the eval job's ``progress(label, done, total)`` callback."""

    def __init__(self, console: Console):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeRemainingColumn(), console=console, transient=True)
        self._task = None

    def __enter__(self):
        self._bar.__enter__()
        return self.update

    def update(self, label: str, done: int, total: int) -> None:
        if self._task is None:
            self._task = self._bar.add_task(f"scoring {label}", total=total)
        self._bar.update(self._task, completed=done, total=total)

    def __exit__(self, *exc):
        return self._bar.__exit__(*exc)
