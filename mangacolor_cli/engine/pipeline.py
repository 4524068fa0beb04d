"""The colorize job: inputs -> jobs -> decode (threads) -> model (batches) -> compose+encode (threads) -> outputs.
Here the job is planned and its options checked; ``engine.run`` runs the threads, ``engine.summary`` says
what happened.

``colorize(inputs, output=None, **options)`` is the Python API behind ``mangacolor colorize``:

    >>> from mangacolor_cli import colorize
    >>> summary = colorize(["chapter.cbz"], model="unet.pt", size=768)
    >>> summary.done, summary.failed
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from models.paint.fills import DEFAULT_FILL
from models.paint.regions import DEFAULT_PALETTE
from models.toolbox.device import process_ranks
from models.toolbox.images import natural_path_key
from models.toolbox.progress import in_notebook

from ..errors import MangacolorError, UsageError
from ..pages.compare import plan_comparisons
from ..pages.planning import output_name, plan_jobs
from ..pages.sources import ArchiveJob, Job
from .choices import OUTPUT_FORMATS
from .colorizer import Colorizer, check_options
from .hints import HintSource
from .pagework import NEARLY_GRAY
from .references import fingerprint as reference_fingerprint
from .region_model import region_file
from .run import _ColorizeRun
from .runner import check_model
from .settings import job_record, made_with_other_settings, run_settings
from .summary import ColorizeSummary


def shard_by_rank(jobs: list[Job]) -> list[Job]:
    """Under torchrun (WORLD_SIZE > 1) each rank takes every WORLD_SIZE-th output (docs/ARCHITECTURE.md, "Scale")."""
    rank, world, _ = process_ranks()
    return jobs[rank::world] if world > 1 else jobs


def colorize(inputs: list[str | os.PathLike] | str | os.PathLike, output: str | os.PathLike | None = None, *,
             model: Any = None, device: str = "auto", backend: str = "auto", size: int | None = None,
             batch_size: int | None = None, page_format: str | None = None, quality: int = 90, overwrite: bool = False,
             recolor: bool = False, fill_paper: bool = True, workers: int | None = None,
             progress: bool | None = None, on_error: Callable[[str], None] | None = None, on_ready: Callable[[Colorizer], None] | None = None,
             colorizer: Colorizer | None = None, fill: str | None = None, saturation: float = 1.0,
             palette: str = DEFAULT_PALETTE, region_model: str | os.PathLike | None = "auto",
             hints: str | os.PathLike | None = None, compare: str | os.PathLike | None = None,
             references: Sequence[str | os.PathLike] | None = None,
             chapter_references: bool = True) -> ColorizeSummary:
    """Color image files, folders and CBZ/ZIP/CBR archives; returns a ``ColorizeSummary``.

    ``output``: as ``-o`` (``colorize --help``): a folder input is mirrored into it, one file input's output
    is it or goes into it (a folder: ends in /, exists, or has no extension), several inputs' go into it
    (None: beside each input). A rerun skips an output finished with the same settings and colors again
    one made with other settings (``engine.settings``); ``overwrite`` redoes every output.
    ``batch_size``: pages per model call (None: chosen by the device and the page shapes, one on the
    CPU). ``page_format``: png|jpg|webp (or jpeg) for every page (None: each page's own). ``progress``: a
    progress bar on stderr that says when the model is still loading (None: in a notebook, tqdm.auto's
    bar; elsewhere when stderr is a terminal). The model loads beside the first pages' decoding. ``compare``: a folder for before/after pictures, one side-by-side image per
    page file and one contact sheet per archive (``pages.compare``). ``fill_paper``, ``fill`` (None: the default, flat) and
    ``saturation``, ``palette``, ``region_model``: see ``Colorizer``. ``hints``: a hint image for a single page, or a folder of
    them, one per page matched by page name (``engine.hints``). ``references``: colored pages (images,
    folders, archives; ``engine.references``) whose region colors carry to every page, under the hints and
    over the model; a page that cannot serve is left out with a warning. ``chapter_references``: an
    archive's own color pages serve as references for its B/W pages too (on by default: measured on held-out
    figures, color pages that show other characters too still help on average, docs/MODELS.md,
    "Reference pages"). ``on_error`` gets each one-line error as it happens;
    ``on_ready`` gets the loaded Colorizer (to say which device runs). Pass ``colorizer`` to reuse
    a loaded model. Raises ``MangacolorError`` for bad usage, missing inputs or an unloadable model.
    """
    start = time.perf_counter()
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if page_format is not None:
        page_format = page_format.lower()
        if page_format == "jpeg":
            page_format = "jpg"
        if page_format not in OUTPUT_FORMATS:
            raise UsageError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, got {page_format!r}")
    if not 1 <= quality <= 100:
        raise UsageError(f"--quality must be between 1 and 100, got {quality}")
    summary = ColorizeSummary()
    report = on_error or (lambda message: None)

    def fail(message: str, pages: int = 1) -> None:
        summary.failed += pages
        summary.errors.append(message)
        report(message)

    planned = plan_jobs(list(inputs), output, page_format, skip=() if hints is None else (hints,))
    # Every rank names every picture, so two ranks never pick one name.
    comparisons = {} if compare is None else plan_comparisons(Path(compare).expanduser(), planned,
                                                              [Path(p).expanduser() for p in inputs])
    jobs = shard_by_rank(planned)
    if page_format is not None:
        _refuse_colliding_names(jobs, page_format)
    # Every option is checked before anything is skipped: a rerun with a bad one fails as the first run does.
    if colorizer is None:
        check_options(device=device, backend=backend, size=size, batch_size=batch_size,
                      fill=DEFAULT_FILL if fill is None else fill, saturation=saturation, palette=palette)
    hint_source = HintSource(hints, jobs)
    references = [references] if isinstance(references, (str, os.PathLike)) else list(references or [])
    for path in references:
        if isinstance(path, (str, os.PathLike)) and not Path(path).expanduser().exists():
            raise UsageError(f"--reference {path}: no such file or folder")
    references = [Path(p).expanduser() if isinstance(p, (str, os.PathLike)) else p for p in references]
    made_with = _run_settings(colorizer, model, backend, size=size, fill=fill, fill_paper=fill_paper,
                              saturation=saturation, recolor=recolor, page_format=page_format, quality=quality,
                              palette=palette, region_model=region_model)
    if references:
        made_with["references"] = reference_fingerprint(references)
    if chapter_references:
        made_with["chapter_references"] = True
    todo: list[Job] = []
    for job in jobs:
        job.settings = job_record(made_with, hint_source, job)
        state = None if overwrite else job.output_state()
        if state == "finished" and made_with_other_settings(job, made_with["recolor"]):
            state = "made with other settings"  # colored again with this run's (README, "Colorize")
        if state == "finished":
            with contextlib.suppress(MangacolorError):
                summary.skipped += job.page_count()
                for ref in job.pages():
                    summary.record(ref.label, _page_output(job, ref.name, page_format), "skipped")
            job.close()
        elif state == "foreign":
            pages = 1
            with contextlib.suppress(MangacolorError):
                pages = max(1, job.page_count())
            fail(f"{job.target}: exists and is not an output mangacolor wrote for {job.source}; "
                 "pass --overwrite to replace it, or choose another -o", pages)
            summary.record(str(job.source), None, "failed", error=summary.errors[-1])
            job.close()
        else:  # nothing yet, our output with failed pages (a rerun tries them again) or made with other settings
            todo.append(job)
    unmatched = hint_source.unmatched()
    if unmatched:
        names = ", ".join(str(p.relative_to(hint_source.path)) for p in unmatched[:8])
        more = f" and {len(unmatched) - 8} more" if len(unmatched) > 8 else ""
        summary.warnings.append(f"--hints {hint_source.path}: {len(unmatched)} hint file(s) match no page and color "
                                f"nothing: {names}{more} (a page NAME takes DIR/NAME.png or DIR/<archive>/NAME.png)")
    show = (in_notebook() or sys.stderr.isatty()) if progress is None else progress
    if todo:
        if colorizer is None:
            def load() -> Colorizer:
                c = Colorizer(model, device=device, backend=backend, size=size, batch_size=batch_size,
                              recolor=recolor, fill_paper=fill_paper, saturation=saturation, palette=palette,
                              region_model=region_model, **({} if fill is None else {"fill": fill}))
                if references:
                    c.set_references(references, warn=summary.warnings.append)
                return c
            loaded: Colorizer | Callable[[], Colorizer] = load
            settings = {"recolor": recolor, "fill": fill or DEFAULT_FILL}
        else:
            if references:
                colorizer.set_references(references, warn=summary.warnings.append)
            loaded, settings = colorizer, {"recolor": colorizer.recolor, "fill": colorizer.fill}
        settings["referenced"] = bool(references)
        settings["chapter_references"] = chapter_references

        def ready(c: Colorizer) -> None:
            summary.model = c.describe()
            summary.load_seconds = time.perf_counter() - start
            if on_ready:
                on_ready(c)
        run = _ColorizeRun(loaded, todo, summary, fail, show, page_format, quality, workers, hint_source,
                           on_ready=ready, **settings)
        run.compare = Path(compare) if compare is not None else None
        run.comparisons = comparisons
        run.run()
        if run.nearly_gray:
            n = len(run.nearly_gray)
            example = run.nearly_gray[0] if n == 1 else f"{run.nearly_gray[0]} and {n - 1} more"
            referenced = bool(references) or any("reference_regions" in r for r in summary.pages)
            summary.warnings.append(f"{n} of {summary.done} colored page(s) stayed nearly gray (under "
                                    f"{NEARLY_GRAY:.0%} of the page took color: {example}); "
                                    + gray_advice(colorizer.palette if colorizer is not None else palette,
                                                  hint_source.path is not None, referenced))
    summary.pages.sort(key=lambda r: natural_path_key(r["input"]))
    summary.seconds = time.perf_counter() - start
    return summary


def gray_advice(palette: str, hinted: bool, referenced: bool) -> str:
    """What to try on a page that stayed nearly gray, leaving out what the run already did: vivid (unless it
    ran vivid), hints (unless it had hints), references (unless it had some: then they matched little)."""
    tips = []
    if palette != "vivid":
        tips.append("--palette vivid colors every area")
    tips.append("--hints colors what you scribble" if not hinted else "more --hints scribbles color more areas")
    if referenced:
        tips.append("the reference pages matched few of its areas (are its characters on them?)")
    else:
        tips.append("--reference takes the colors of a colored page of the same characters")
    return "the model is unsure of them: " + ", ".join(tips)


def _run_settings(colorizer: Colorizer | None, model: Any, backend: str, **options: Any) -> dict[str, Any]:
    """The settings every output of the run is colored with (``engine.settings``): a loaded ``colorizer``'s
    own, else the options as asked. The model is found here (a missing one fails before anything is skipped)."""
    if colorizer is not None:
        return run_settings(model_path=colorizer.model_path, size=colorizer.size, fill=colorizer.fill,
                            fill_paper=colorizer.fill_paper, saturation=colorizer.saturation,
                            recolor=colorizer.recolor, page_format=options["page_format"], quality=options["quality"],
                            palette=colorizer.palette,
                            region_model=None if colorizer.active_region_model is None else colorizer.active_region_model.path)
    in_memory = model is not None and not isinstance(model, (str, os.PathLike))
    model_path = None if in_memory else check_model(model, backend)
    region = options.pop("region_model")
    fill = options["fill"] or DEFAULT_FILL
    region_path = None
    if fill == "flat" and region is not None and str(region) != "none":
        region_path = region_file(region, model_path)
    return run_settings(model_path=model_path, region_model=region_path, **{**options, "fill": fill})


def _page_output(job: Job, name: str, fmt: str | None) -> str:
    """Where a page's output is: the output file, or ``archive:entry``."""
    return f"{job.target}:{output_name(name, fmt)}" if isinstance(job, ArchiveJob) else str(job.target)


def _refuse_colliding_names(jobs: list[Job], fmt: str) -> None:
    """``--format`` renames pages (001.png -> 001.jpg); refuse before any work when that gives two entries
    of one archive the same name (one page would be lost on extraction)."""
    for job in jobs:
        if not isinstance(job, ArchiveJob):
            continue
        try:
            pages = {ref.name for ref in job.pages()}
            names = job.entry_names()
        except MangacolorError:
            continue  # reported when the run reaches it
        seen: dict[str, str] = {}
        for name in names:
            out = output_name(name, fmt) if name in pages else name
            if seen.get(out, name) != name:
                raise UsageError(f"{job.label}: --format {fmt} would write {seen[out]} and {name} under one name, "
                                 f"{out} (a page would be lost); run without --format for this archive")
            seen[out] = name
