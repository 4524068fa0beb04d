"""`mangacolor eval`: score predictions or models against color pages, beside a gray baseline."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Annotated, List, Optional

import typer
from rich.console import Console
from rich.text import Text

from models.toolbox.device import DEVICES

from ..engine.choices import FILLS, PALETTES
from ..errors import MangacolorError, UsageError
from .app import EXIT_CODES, FAILED, app, choice, device_check, fail, labeled

Fill = choice("Fill", FILLS)
Palette = choice("Palette", PALETTES)


class HintProtocol(str, Enum):
    dht = "dht"


EPILOG = """\
Examples:

  mangacolor eval --pred out/ --target color/ --csv per_image.csv

  mangacolor eval --pred out/ --target color/ --json | jq '.systems'

  mangacolor eval -m unet.pt -m pix2pix.onnx --data set/ --report r.html

  mangacolor eval -m unet.pt --data eval_set/ --grid grid.png --samples 8

  mangacolor eval -m default --data val_comicgen/ --data val_clipart/

  mangacolor eval -m default --data set/ --hint-protocol dht --pages 10

--json prints the summary as JSON on stdout (the table then goes to stderr), as colorize --json does; --json-out FILE writes it to FILE.

""" + EXIT_CODES


# `eval --json FILE`, the spelling before --json became a flag, arrives as one extra argument.
@app.command("eval", epilog=EPILOG, context_settings={"allow_extra_args": True})
def eval_command(
    ctx: typer.Context,
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
    device: Annotated[str, typer.Option(callback=device_check(DEVICES),
                                        help="auto, cpu or cuda (cuda:N), for the models and the metrics.")] = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Pages per model batch.")] = 4,
    fill: Annotated[Optional[List[Fill]], typer.Option(
        help="How --model's color is laid (see colorize --fill); give it twice (--fill flat --fill soft) "
             "for a row each.")] = None,
    palette: Annotated[Optional[List[Palette]], typer.Option(
        help="How boldly --model's colors are laid (see colorize --palette); give it twice for a row "
             "each.")] = None,
    region_model: Annotated[Optional[List[str]], typer.Option(
        "--region-model", metavar="auto|none|FILE",
        help="The region model --model's flat fill uses (see colorize --region-model); give it twice "
             "(--region-model auto --region-model none) for a row each.")] = None,
    csv_path: Annotated[Optional[Path], typer.Option("--csv", help="Write per-image metrics (a row per page and "
                                                                   "system).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout (for scripts); the "
                                                         "table goes to stderr.")] = False,
    json_out: Annotated[Optional[Path], typer.Option("--json-out", metavar="FILE",
                                                     help="Write the summary as JSON to FILE.")] = None,
    grid: Annotated[Optional[Path], typer.Option(help="Write a PNG grid: input | each model | target.")] = None,
    samples: Annotated[int, typer.Option(min=0, help="Pages in the grid.")] = 4,
    report: Annotated[Optional[Path], typer.Option(help="Write one self-contained HTML report.")] = None,
    run_dir: Annotated[Optional[Path], typer.Option(
        "--run-dir", help="Training run folder: draw its metrics.jsonl loss curves into the report.")] = None,
    reference: Annotated[Optional[List[Path]], typer.Option(
        "--reference", metavar="PATH",
        help="Colored reference pages (an image, a folder or an archive; repeatable): each model gets a twin row "
             "colored with them (\"NAME + references\"), and every row segment and pixel accuracy (regions, and "
             "their area, within CIEDE2000 5 of the target).")] = None,
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
    from models.toolbox.errors import printable

    console = _wide(Console(soft_wrap=True, highlight=False))
    err_console = _wide(Console(stderr=True, soft_wrap=True, highlight=False))
    try:
        as_json, json_out = _old_json_spelling(ctx.args, as_json, json_out, err_console)
    except UsageError as e:
        fail(e)
    quiet = as_json

    if hint_protocol is not None:
        _hint_protocol(model, data, size=size, device=device, pages=pages, cache=hint_cache, as_json=as_json,
                       json_out=json_out, console=console, err_console=err_console)
        return
    try:
        by_dirs = pred is not None or target is not None
        if by_dirs and (model or data):
            raise UsageError("use either --pred/--target or --model/--data, not both")
        if by_dirs and (pred is None or target is None):
            raise UsageError("--pred and --target go together")
        if by_dirs and reference:
            raise UsageError("--reference scores models (--model/--data), not --pred/--target folders")
        if not by_dirs and not (model and data):
            raise UsageError("give --pred DIR --target DIR, or --model M [--model M2 ...] --data PATH")
        _check_typed_inputs(pred, target, data, model)
        from ..evaluation import reports, scoring  # torch: after what was typed is checked (~1.3 s)

        if by_dirs:
            sets = [("", lambda shown: scoring.evaluate_dirs(pred, target, samples=samples, device=device,
                                                             progress=shown))]
        else:
            sets = [(name, lambda shown, one=one: scoring.evaluate_models(
                model, one, size=size, manga_look=manga_look, device=device, batch_size=batch_size,
                samples=samples, progress=shown, fills=[f.value for f in fill] if fill else None,
                palettes=[p.value for p in palette] if palette else None, region_models=region_model or None,
                references=reference,
                warn=lambda message: err_console.print(labeled("warning:", "yellow", printable(message)))))
                for name, one in zip(_set_names(data), data)]
        out = err_console if quiet else console
        several = len(sets) > 1
        results: list[tuple[str, object]] = []
        for name, evaluate in sets:
            # One bar per set from its first page to its last file: the table follows at once.
            shown = _SetProgress(name, err_console)
            try:
                result = evaluate(shown)
                written = _write_files(result, name, several, shown.note, csv_path=csv_path, grid=grid, report=report,
                                       run_dir=run_dir)
            finally:
                shown.close()
            results.append((name, result))
            if several:
                out.print(Text("set " + printable(name), style="bold"))
            out.print(reports.results_table(result), soft_wrap=False)  # the title wraps at the table's width
            for key in result.missing_predictions:
                out.print(labeled("missing prediction/input:", "yellow", printable(key)))
            for key in result.missing_targets:
                out.print(labeled("missing target:", "yellow", printable(key)))
            for key, message in result.errors:
                out.print(labeled("not scored:", "red", printable(message)))
            for path in written:
                out.print(Text(f"wrote {path}"))
        if as_json or json_out:
            if several:
                text = reports.write_sets_json({name: r for name, r in results}, json_out or "-")
            else:
                text = reports.write_json(results[0][1], json_out or "-")
            _said_json(text, as_json, json_out, out)
    except MangacolorError as e:
        fail(e)
    if not all(result.keys for _, result in results):
        raise typer.Exit(FAILED)


def _hint_protocol(model: Optional[List[str]], data: Optional[List[Path]], *, size: Optional[int], device: str,
                   pages: Optional[int], cache: Optional[Path], as_json: bool, json_out: Optional[Path],
                   console: Console, err_console: Console) -> None:
    """``eval --hint-protocol dht``: each set's Hint-AUC table, Levin 2004 and the gray page beside the models."""
    from models.toolbox.errors import printable
    from models.toolbox.progress import ProgressBar

    from ..evaluation import hint_protocol as hp
    from ..evaluation import reports

    out = err_console if as_json else console
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
        if as_json or json_out:
            _said_json(hp.write_json(results, json_out or "-"), as_json, json_out, out)
    except MangacolorError as e:
        fail(e)


def _said_json(text: str, as_json: bool, json_out: Optional[Path], out: Console) -> None:
    """``--json``: the JSON is the standard output; ``--json-out FILE`` (written already): say where it went."""
    if json_out is not None:
        out.print(Text(f"wrote {json_out}"))
    if as_json:
        typer.echo(text)


def _old_json_spelling(extra: List[str], as_json: bool, json_out: Optional[Path],
                       err_console: Console) -> tuple[bool, Optional[Path]]:
    """``--json -`` and ``--json FILE``, from when --json took a path, still do what they did: ``-`` is
    ``--json``, ``FILE`` is ``--json-out FILE`` (with a warning); any other extra argument is an error."""
    if not extra:
        return as_json, json_out
    if not as_json or len(extra) != 1 or (extra[0] != "-" and json_out is not None):
        raise UsageError(f"unexpected argument {extra[0]!r} (eval takes options only; see --help)")
    if extra[0] == "-":
        return True, json_out
    err_console.print(labeled("warning:", "yellow", "--json FILE is now --json-out FILE (--json alone prints the JSON "
                                                    "on stdout)"), soft_wrap=True)
    return False, Path(extra[0])


class _SetProgress:
    """``progress(label, done, total)`` for one eval set: a bar on stderr ("scoring val_comicgen"), shown
    from the set's first page to its last file written."""

    def __init__(self, name: str, console: Console):
        self.name, self.console, self.bar = name, console, None

    def __call__(self, label: str, done: int, total: int) -> None:
        if self.bar is None:
            from models.toolbox.progress import ProgressBar

            self.bar = ProgressBar(total, description=f"scoring {self.name or label}", echo=False, transient=True,
                                   console=self.console)
        self.bar.set_total(total, completed=done)

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_status(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _write_files(result, name: str, several: bool, note, *, csv_path: Optional[Path], grid: Optional[Path],
                 report: Optional[Path], run_dir: Optional[Path]) -> list[Path]:
    """One set's --csv, --grid and --report (named after the set when there are several), each said on its bar."""
    from functools import partial

    from ..evaluation import reports

    written = []
    for path, write in ((csv_path, reports.write_csv), (grid, reports.write_grid),
                        (report, partial(reports.write_report, run_dir=run_dir))):
        if path:
            path = _per_set(path, name, several)
            note(f"writing {path.name}")
            written.append(write(result, path))
    return written


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
    # Piped output defaults to 80 columns: 120 keeps a log's titles and long model names on one line.
    # A width the user set (COLUMNS) is kept; the table fits 80.
    if not console.is_terminal and console.width < 120 and "COLUMNS" not in os.environ:
        console.width = 120
    return console


def _check_typed_inputs(pred: Path | None, target: Path | None, data: list[Path] | None,
                        models: list[str] | None) -> None:
    """The folders and models typed, checked as the scoring checks them but before it is imported (torch), so
    a typo is answered at once and no set is scored before a later one is found missing."""
    from ..engine.runner import resolve_model_path
    from ..errors import require_folder

    for folder in (pred, target, *(data or ())):
        if folder is not None:
            require_folder(folder)
    for spec in models or ():
        resolve_model_path(spec)
