"""Report writing for an ``EvalResult``: the rich table, CSV, JSON, the sample grid and the HTML report."""

from __future__ import annotations

import base64
import csv
import functools
import io
import json
import math
import os
from pathlib import Path

from models.toolbox.errors import first_line, printable
from models.toolbox.files import atomic_path, write_text_atomic
from models.toolbox.page_metrics import METRIC_LABELS, METRICS, metric_header
from trainer.metrics_log import read_metrics_log
from trainer.plots import loss_curves_svg

from ..errors import InputError, MangacolorError
from ..version import __version__
from .scoring import GRAY_BASELINE, PREVIEW_HEIGHT, THUMB_HEIGHT, EvalResult


def _fmt(value: float | None, col: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if math.isinf(value):
        return "inf"
    if col == "mse":
        return f"{value:.4f}"
    if col == "ssim":
        return f"{value:.4f}"
    return f"{value:.2f}"


def grid_columns(result: EvalResult) -> list[str]:
    """Grid and thumbnail columns: the input, each model (not the gray baseline: it is the input), the target."""
    return ["input", *result.models, "target"]


# The table's metrics: every one but the targets' colorfulness, the same in each row, said below it.
TABLE_METRICS = tuple(m for m in METRICS if m != "colorfulness_target")
# eval --reference: the paint-bucket measures (evaluation.segments), higher is better.
SEGMENT_HEADERS = {"segment_accuracy": "seg acc ↑", "pixel_accuracy": "pix acc ↑"}


def results_table(result: EvalResult):
    """The rich table: a row per system (the gray baseline last), the metric means and pages/s; below it the
    pages scored and the targets' colorfulness. It fits 80 columns (long system names wrap, numbers never
    do); on a narrower console it comes as two tables of half the columns each."""
    return _ResultsTable(result)


class _ResultsTable:
    # A column's share of the table beside its text: "│ " before it, " " after, and the last "│".
    BORDERS = 3

    def __init__(self, result: EvalResult):
        self.result = result
        segments = [c for c in SEGMENT_HEADERS if any(c in result.summary[s] for s in result.systems)]
        self.headers = {c: "pages/s" if c == "pages_per_s" else SEGMENT_HEADERS.get(c) or metric_header(c)
                        for c in [*TABLE_METRICS, *segments, "pages_per_s"]}
        self.cells = {s: {c: _fmt(result.summary[s].get(c), c) for c in self.headers} for s in result.systems}

    def __rich_console__(self, console, options):
        from rich.cells import cell_len

        columns = list(self.headers)
        # The system column folds down to the gray baseline's name; the numbers never shrink.
        widths = [max(cell_len(self.headers[c]), *(cell_len(row[c]) for row in self.cells.values())) for c in columns]
        if len(GRAY_BASELINE) + sum(widths) + self.BORDERS * (len(columns) + 1) + 1 <= options.max_width:
            yield self._table(columns, title=True, caption=True)
            return
        half = (len(columns) + 1) // 2
        yield self._table(columns[:half], title=True, caption=False)
        yield self._table(columns[half:], title=False, caption=True)

    def _table(self, columns: list[str], *, title: bool, caption: bool):
        from rich.markup import escape
        from rich.table import Table

        result = self.result
        baseline = result.summary.get(GRAY_BASELINE, {})
        # Paths and model names are the user's: never read as markup (a folder named "[/]" would crash rich).
        table = Table(title=f"mangacolor eval — {escape(printable(result.description))}" if title else None,
                      title_justify="left", caption_justify="left",
                      caption=f"{int(baseline.get('n', 0))} pages scored; the targets' colorfulness: "
                              f"{_fmt(baseline.get('colorfulness_target'), 'colorfulness')}" if caption else None)
        table.add_column("system", style="bold", overflow="fold")
        for c in columns:
            table.add_column(self.headers[c], justify="right", no_wrap=True)
        for system in result.systems:
            table.add_row(escape(printable(system)), *(self.cells[system][c] for c in columns),
                          style="dim" if system == GRAY_BASELINE else None)
        return table


def hint_protocol_table(result):
    """The Hint-AUC table: a row per system, CIEDE2000 at each hint ratio, the Hint-AUC and its ratio to
    Levin 2004's (below 1: better than the classic)."""
    from rich.markup import escape
    from rich.table import Table

    from .hint_protocol import GRAY, LEVIN

    table = Table(title=f"Hint-AUC (CIEDE2000, lower is better) — {escape(printable(result.name))}, "
                        f"{result.pages} pages", title_justify="left")
    table.add_column("system", style="bold", no_wrap=True)
    for a in result.alphas:
        table.add_column(f"a={a:g}", justify="right")
    table.add_column("Hint-AUC", justify="right")
    table.add_column("vs Levin", justify="right")
    auc = result.auc
    for system, curve in result.curves.items():
        ratio = auc[system] / auc[LEVIN] if LEVIN in auc and auc[LEVIN] > 0 else None
        table.add_row(escape(printable(system)), *(f"{curve[a]:.2f}" for a in result.alphas), f"{auc[system]:.3f}",
                      "" if ratio is None else f"{ratio:.2f}x", style="dim" if system == GRAY else None)
    return table


def _json_number(value: float | None) -> float | str | None:
    # JSON has no inf/nan; PSNR of identical images is inf.
    if value is None or isinstance(value, str):
        return value
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def summary_dict(result: EvalResult) -> dict:
    """The JSON summary: means per system, the pairs left out and why."""
    return {
        "mangacolor_version": __version__,
        "description": result.description,
        "systems": {s: {k: _json_number(v) for k, v in result.summary[s].items()} for s in result.systems},
        "gray_baseline": GRAY_BASELINE,
        "missing_predictions": result.missing_predictions,
        "missing_targets": result.missing_targets,
        "errors": [{"page": k, "error": e} for k, e in result.errors],
    }


def write_json(result: EvalResult, path: str | os.PathLike) -> str:
    """Write the summary JSON to ``path`` (``-`` returns it for stdout); returns the text."""
    text = json.dumps(summary_dict(result), indent=2, ensure_ascii=False)
    if str(path) != "-":
        _write_text(Path(path), text + "\n")
    return text


def write_sets_json(results: dict[str, EvalResult], path: str | os.PathLike) -> str:
    """Several eval sets in one JSON: ``{"sets": {name: summary, ...}}``; ``-`` returns it for stdout."""
    text = json.dumps({"sets": {name: summary_dict(r) for name, r in results.items()}}, indent=2, ensure_ascii=False)
    if str(path) != "-":
        _write_text(Path(path), text + "\n")
    return text


def write_csv(result: EvalResult, path: str | os.PathLike) -> Path:
    """One row per (page, system): page, system, and every metric."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["page", "system", *METRICS])
    for key in result.keys:
        for system in result.systems:
            s = result.scores[system].get(key)
            if s is not None:
                writer.writerow([key, system, *(repr(s[c]) for c in METRICS)])
    return _write_text(Path(path), buf.getvalue())


def _write_text(path: Path, text: str) -> Path:
    try:
        return write_text_atomic(path, text)
    except OSError as e:
        raise MangacolorError(f"{path}: cannot write ({first_line(e)})") from None


def render_grid(result: EvalResult):
    """A PIL image: a row per sample page, columns input | each model | target, labelled."""
    from PIL import Image, ImageDraw

    columns = grid_columns(result)
    rows = [[Image.open(io.BytesIO(result.previews[k][c])) for c in columns] for k in result.sample_keys
            if all(c in result.previews.get(k, {}) for c in columns)]
    if not rows:
        raise MangacolorError("no page could be scored, so there is no grid to draw")
    col_w = [max(r[i].width for r in rows) for i in range(len(columns))]
    pad, label_h = 6, 18
    width = sum(col_w) + pad * (len(columns) + 1)
    height = label_h + sum(r[0].height for r in rows) + pad * (len(rows) + 1)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    x = pad
    for name, w in zip(columns, col_w):
        draw.text((x, 3), name, fill=(0, 0, 0))
        x += w + pad
    y = label_h + pad
    for row in rows:
        x = pad
        for im, w in zip(row, col_w):
            canvas.paste(im.convert("RGB"), (x + (w - im.width) // 2, y))
            x += w + pad
        y += row[0].height + pad
    return canvas


def write_grid(result: EvalResult, path: str | os.PathLike) -> Path:
    """Save ``render_grid`` as a PNG."""
    path = Path(path)
    image = render_grid(result)
    try:
        with atomic_path(path) as tmp:
            image.save(tmp, format="PNG")
    except OSError as e:
        raise MangacolorError(f"{path}: cannot write ({first_line(e)})") from None
    return path


def _run_metrics(run_dir: str | os.PathLike) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    try:
        return read_metrics_log(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (--run-dir needs a training run folder)") from None


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _num_attr(v: float) -> str:
    return "inf" if math.isinf(v) else repr(v)


@functools.lru_cache(maxsize=1)
def _report_template():
    import jinja2

    # Autoescaped: page names, systems and paths are the user's (a page named "<script>" stays text).
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    return env.get_template("report.html")


def render_report(result: EvalResult, *, run_dir: str | os.PathLike | None = None) -> str:
    """One self-contained HTML page (``templates/report.html``): the summary table, the sample grid, training
    curves (with ``run_dir``) and a row per page with its previews and per-system errors, sortable by any column."""
    from markupsafe import Markup

    summary = []
    for system in result.systems:
        row = result.summary[system]
        summary.append({"system": system, "baseline": system == GRAY_BASELINE, "pages": int(row["n"]),
                        "cells": [(_num_attr(row[c]), _fmt(row[c], c)) for c in METRICS],
                        "rate": _fmt(row.get("pages_per_s"), "x")})
    not_scored = ([("prediction", k, "") for k in result.missing_predictions]
                  + [("target", k, "") for k in result.missing_targets]
                  + [("error", k, message) for k, message in result.errors])
    columns = grid_columns(result)
    samples = []
    for key in result.sample_keys:  # every requested one, captioned with its page name and metrics
        shots = result.previews.get(key, {})
        samples.append({
            "key": key,
            "shots": [(c, _data_uri(shots[c], "image/jpeg")) for c in columns if c in shots],
            "scores": [(s, [(METRIC_LABELS[c], _fmt(result.scores[s][key][c], c))
                            for c in ("ciede2000", "psnr", "ssim") if c in result.scores[s][key]])
                       for s in result.systems if key in result.scores.get(s, {})]})
    curves = None
    if run_dir is not None:
        svg = Markup(loss_curves_svg(_run_metrics(run_dir)))  # our own drawing, its labels escaped there
        curves = {"path": str(Path(run_dir) / "metrics.jsonl"), "svg": svg}
    metric_cols = [(s, c) for s in result.systems for c in ("ciede2000", "psnr", "ssim")]
    pages = []
    for key in result.keys:
        thumbs = result.thumbs.get(key, {})
        values = [result.scores[s].get(key, {}).get(c) for s, c in metric_cols]
        pages.append({"key": key, "strip": [(c, _data_uri(thumbs[c], "image/jpeg")) for c in columns if c in thumbs],
                      "cells": [(None, "") if v is None else (_num_attr(v), _fmt(v, c))
                                for v, (_, c) in zip(values, metric_cols)]})
    return _report_template().render(
        thumb_height=THUMB_HEIGHT, shot_width=2 * PREVIEW_HEIGHT, description=result.description, version=__version__,
        pages_scored=len(result.keys), metric_headers=[metric_header(c) for c in METRICS], summary=summary,
        not_scored=not_scored, samples=samples, curves=curves, preview_columns=columns,
        page_headers=[(s, METRIC_LABELS[c]) for s, c in metric_cols], pages=pages)


def write_report(result: EvalResult, path: str | os.PathLike, *, run_dir: str | os.PathLike | None = None) -> Path:
    """Write ``render_report`` to ``path``."""
    return _write_text(Path(path), render_report(result, run_dir=run_dir))


