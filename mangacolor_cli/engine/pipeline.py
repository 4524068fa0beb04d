"""The colorize job: inputs -> jobs -> decode (threads) -> model (batches) -> compose+encode (threads) -> outputs.

``colorize(inputs, output=None, **options)`` is the Python API behind ``mangacolor colorize``:

    >>> from mangacolor_cli import colorize
    >>> summary = colorize(["chapter.cbz"], model="unet.pt", size=768)
    >>> summary.done, summary.failed
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import os
import sys
import inspect
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from models.errors import first_line
from trainer.device import process_ranks
from trainer.images import DecodedPage, format_of_name, natural_path_key, to_rgb8
from models.compose_cpu import DEFAULT_FILL
from models.regions import DEFAULT_PALETTE
from trainer.progress import ProgressBar, in_notebook

from ..errors import MangacolorError, ModelError, PageError, UsageError
from ..pages.compare import compare_pair, plan_comparisons, write_comparison
from ..pages.images import WRITABLE_FORMATS, decode_page, encode_image
from ..pages.planning import output_name, plan_jobs
from ..pages.sources import ArchiveJob, ImageJob, Job, PageResult, SourcePage
from . import backends
from .choices import OUTPUT_FORMATS
from .colorizer import Colorizer, check_model, check_options
from .pagework import NEARLY_GRAY, colored_share, load_hints, needs_color, page_regions
from .hints import HintSource
from .references import chapter_references as chapter_color_pages
from .references import fingerprint as reference_fingerprint
from .settings import job_record, made_with_other_settings, run_settings


@dataclass
class ColorizeSummary:
    """What a colorize run did: page counts, time, outputs written and one line per error."""

    done: int = 0          # pages colored
    kept: int = 0          # pages already in color, kept unchanged
    skipped: int = 0       # pages of outputs finished by an earlier run
    failed: int = 0        # pages (or whole inputs) that failed; their originals are kept in archives
    seconds: float = 0.0
    # Of ``seconds``, the time before the first page started (planning, the model's load): pages/s leaves it out.
    load_seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    model: str = ""
    # One record per page (and per input that could not be read): input, output, status ("colored",
    # "already in color", "skipped", "failed"), seconds, error. Pages of one output follow each other.
    pages: list[dict[str, Any]] = field(default_factory=list)
    comparisons: list[str] = field(default_factory=list)  # --compare: the before/after images written
    warnings: list[str] = field(default_factory=list)     # one line each: what the run could not use

    def record(self, input: str, output: str | None, status: str, seconds: float = 0.0,
               error: str | None = None) -> dict[str, Any]:
        entry = {"input": input, "output": output, "status": status, "seconds": round(seconds, 3), "error": error}
        self.pages.append(entry)
        return entry

    @property
    def pages_per_second(self) -> float:
        """Pages a second counted from the first page (the model's load left out: a steady rate)."""
        busy = self.seconds - self.load_seconds
        return (self.done + self.kept) / busy if busy > 0 else 0.0

    @property
    def exit_code(self) -> int:
        """0 when everything was done, 1 when some page, entry, input or output failed."""
        return 1 if self.failed or self.errors else 0

    def to_dict(self) -> dict[str, Any]:
        """What ``colorize --json`` prints: each count once, under the words of the text summary and the page
        records' status ("3 colored, 1 already in color, ..."): ``done`` is ``colored``, ``kept`` ``already_in_color``."""
        d = asdict(self)
        d = {"colored": d.pop("done"), "already_in_color": d.pop("kept"), **d}
        d["seconds"] = round(self.seconds, 3)
        d["pages_per_second"] = round(self.pages_per_second, 3)
        d["exit_code"] = self.exit_code
        return d


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
             palette: str = DEFAULT_PALETTE,
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
    ``saturation``, ``palette``: see ``Colorizer``. ``hints``: a hint image for a single page, or a folder of
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
                              palette=palette)
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
                              **({} if fill is None else {"fill": fill}))
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
            summary.warnings.append(f"{n} of {summary.done} colored page(s) stayed nearly gray (under "
                                    f"{NEARLY_GRAY:.0%} of the page took color: {example}); the model is unsure of "
                                    "them: --palette vivid colors every area, --hints colors what you scribble, "
                                    "--reference takes the colors of a colored page of the same characters")
    summary.pages.sort(key=lambda r: natural_path_key(r["input"]))
    summary.seconds = time.perf_counter() - start
    return summary


def _run_settings(colorizer: Colorizer | None, model: Any, backend: str, **options: Any) -> dict[str, Any]:
    """The settings every output of the run is colored with (``engine.settings``): a loaded ``colorizer``'s
    own, else the options as asked. The model is found here (a missing one fails before anything is skipped)."""
    if colorizer is not None:
        return run_settings(model_path=colorizer.model_path, size=colorizer.size, fill=colorizer.fill,
                            fill_paper=colorizer.fill_paper, saturation=colorizer.saturation,
                            recolor=colorizer.recolor, page_format=options["page_format"], quality=options["quality"],
                            palette=colorizer.palette)
    in_memory = model is not None and not isinstance(model, (str, os.PathLike))
    return run_settings(model_path=None if in_memory else check_model(model, backend),
                        **{**options, "fill": options["fill"] or DEFAULT_FILL})


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


@dataclass
class _Ahead:
    """What the decode threads prepared for a page's compose: its hint file (looked up once) and its
    segmentation (None: the compose segments, or needs none)."""

    hint_file: Path | None = None
    regions: Any = None


@dataclass
class _NotPredicted:
    """A batch the model could not run (an allocation failure): each of its pages fails with ``message``."""

    message: str


class _ColorizeRun:
    """One pass over the jobs: decode and encode thread pools beside the Colorizer's batches.

    ``colorizer``: a loaded one, or a function that loads it: it then loads in a thread beside the
    first pages' decoding and segmentation (start-up, docs/PERFORMANCE.md), and ``on_ready`` gets it.
    ``recolor`` and ``fill`` are the Colorizer's, known before it loads.
    """

    def __init__(self, colorizer: Colorizer | Callable[[], Colorizer], jobs: list[Job], summary: ColorizeSummary,
                 fail: Callable[..., None], show_progress: bool, fmt: str | None, quality: int, workers: int | None,
                 hints: HintSource | None = None, *, recolor: bool = False, fill: str = DEFAULT_FILL,
                 on_ready: Callable[[Colorizer], None] | None = None, referenced: bool = False,
                 chapter_references: bool = False):
        self.jobs, self.summary, self._fail = jobs, summary, fail
        self.colorizer: Colorizer | None = None
        # A loaded Colorizer (or a stand-in with its methods), else the function that loads one.
        self._load = None if hasattr(colorizer, "batcher") else colorizer
        self.recolor, self.fill, self.on_ready = recolor, fill, on_ready
        self.referenced = referenced  # reference pages given: every page is segmented ahead
        self.chapter_references = chapter_references
        self.job_references: dict[int, cf.Future] = {}  # per archive: its color pages, prepared as references
        self.hints = hints or HintSource(None, jobs)
        self.show_progress = show_progress
        self.fmt, self.quality = fmt, quality
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self.results: dict[int, dict[int, PageResult]] = {}
        self.remaining: dict[int, int] = {}
        self.outcomes: dict[int, collections.Counter] = {}  # per job: pages done/kept, undone if its write fails
        self.batcher = None
        if self._load is None:
            self._loaded(colorizer)
        self.encodes: collections.deque[cf.Future] = collections.deque()
        self.started: dict[tuple[int, int], float] = {}           # (job, page) -> when its reading began
        self.records: dict[int, list[dict[str, Any]]] = {}         # per job, until its output is written
        self.nearly_gray: list[str] = []                            # pages the model left nearly gray
        self.compare: Path | None = None
        self.comparisons: dict[int, Path] = {}                      # per job: where its picture goes
        self.thumbs: dict[int, list] = {}                           # per job: (page key, before, after)

    def _above_the_bar(self):
        """What the caller's callbacks print (errors, the model line) goes above the progress bar, not into it."""
        bar = getattr(self, "bar", None)
        return bar.suspended() if bar is not None else contextlib.nullcontext()

    def fail(self, *args, **kwargs) -> None:
        with self._above_the_bar():
            self._fail(*args, **kwargs)

    def _loaded(self, colorizer: Colorizer) -> None:
        self.colorizer = colorizer
        self.batcher = colorizer.batcher(run=self._predict)
        if self.on_ready:
            with self._above_the_bar():
                self.on_ready(colorizer)

    def _wait_for_model(self, loading: cf.Future | None) -> None:
        """The Colorizer, once its loading thread is done (its errors raised here, before any output)."""
        if self.colorizer is None and loading is not None:
            if not loading.done():
                self.bar.set_status("loading the model...")
            colorizer = loading.result()
            self.bar.set_status("")
            self.bar.restart_clock()  # the rate and the ETA count from the first page, as the summary does
            self._loaded(colorizer)

    def run(self) -> None:
        total = 0
        for job in self.jobs:
            with contextlib.suppress(MangacolorError):
                total += job.page_count()
        self.bar = ProgressBar(total or None, description="coloring", enabled=self.show_progress, echo=False,
                               unit="pages", transient=True, stderr=True)
        loader = cf.ThreadPoolExecutor(1, thread_name_prefix="load") if self._load is not None else None
        with cf.ThreadPoolExecutor(self.workers, thread_name_prefix="decode") as self.decode_pool, \
                cf.ThreadPoolExecutor(self.workers, thread_name_prefix="encode") as self.encode_pool:
            loading = loader.submit(self._load) if loader is not None else None
            try:
                decodes: collections.deque = collections.deque()
                for item in self._page_stream():
                    self.started[(id(item[0]), item[1].key)] = time.perf_counter()
                    decodes.append((item, self.decode_pool.submit(self._decode, *item)))
                    while len(decodes) > self._lookahead():
                        self._wait_for_model(loading)
                        self._take_decoded(*decodes.popleft())
                self._wait_for_model(loading)
                while decodes:
                    self._take_decoded(*decodes.popleft())
                self._compose_all(self.batcher.flush())
                while self.encodes:
                    self._finish_encode(self.encodes.popleft())
            except BaseException:
                for future in self.encodes:
                    future.cancel()
                if loading is not None:
                    loading.cancel()
                self.decode_pool.shutdown(wait=True, cancel_futures=True)
                self.encode_pool.shutdown(wait=True, cancel_futures=True)
                raise
            finally:
                if loader is not None:
                    loader.shutdown(wait=False)
                self.bar.close()
                for job in self.jobs:
                    job.close()

    def _lookahead(self) -> int:
        """Pages decoded ahead of the model: two batches and the workers' own (the workers alone while it loads)."""
        return self.workers + (2 * self.colorizer.batch_size if self.colorizer is not None else 0)

    # ------------------------------------------------------------------ stages
    def _page_stream(self) -> Iterator[tuple[Job, SourcePage]]:
        for job in self.jobs:
            try:
                pages = job.pages()
            except MangacolorError as e:
                self.fail(str(e))
                self.summary.record(str(job.source), None, "failed", error=str(e))
                job.close()
                continue
            if isinstance(job, ArchiveJob):
                for message in job.refusals():
                    self.fail(message)
                if not pages and not job.refusals():
                    self._no_pages(job)
            if job.page_count() == 0 and pages:
                self.bar.set_total(int(self.bar.total or 0) + len(pages))
            self.results[id(job)] = {}
            self.remaining[id(job)] = len(pages)
            if self.chapter_references and isinstance(job, ArchiveJob) and len(pages) > 1:
                self.job_references[id(job)] = self.decode_pool.submit(chapter_color_pages, pages)
            if not pages:
                self._finish_job(job)
            for ref in pages:
                yield job, ref

    def _no_pages(self, job: ArchiveJob) -> None:
        """An archive with no page and nothing refused (an empty ZIP, only folders, only text): one line naming it
        (exit 1), never a silent "0 colored"; its output still keeps every entry it has, as any archive's does."""
        message = f"{job.label}: no pages to color in this archive (no image entry)"
        self.fail(message)
        self.summary.record(job.label, None, "failed", error=message)

    def _decode(self, job: Job, ref: SourcePage) -> tuple[DecodedPage, bool, _Ahead | None]:
        """Read and decode a page; one that the model will color has its hint file found and is segmented
        here too (for the flat fill, or a hint), beside the model's work on the pages before it."""
        page = decode_page(ref.read(), ref.label)
        if not needs_color(page, self.recolor):
            return page, False, None
        hint_file = self.hints.for_page(job, ref)
        return page, True, _Ahead(hint_file, page_regions(page, self.fill,
                                                          hinted=hint_file is not None or self.referenced))

    def _take_decoded(self, item: tuple[Job, SourcePage], future: cf.Future) -> None:
        job, ref = item
        try:
            page, colors, ahead = future.result()
        except PageError as e:
            self._page_failed(job, ref, str(e))
            return
        except Exception as e:  # a decoder bug on one hostile page must not stop the run
            self._page_failed(job, ref, f"{ref.label}: cannot decode ({first_line(e)})")
            return
        if not colors:
            self.encodes.append(self.encode_pool.submit(self._keep, job, ref, page))
            self._drain()
            return
        self._compose_all(self.batcher.add((job, ref, ahead), page))

    def _predict(self, pages: list[DecodedPage]) -> list:
        """``Colorizer.predict``; an allocation failure fails this batch's pages, one line each, and the run goes on."""
        try:
            predict = self.colorizer.predict
            # numpy where the Colorizer runs without torch (compose takes either); a stand-in predict as is.
            return predict(pages, as_numpy=True) if "as_numpy" in inspect.signature(predict).parameters else predict(pages)
        except Exception as e:
            if not (backends.is_out_of_memory(e) or (isinstance(e, ModelError) and "out of memory" in str(e))):
                raise
            return [_NotPredicted(f"out of memory at working size {self.colorizer.size} ({first_line(e)}); "
                                  "try a smaller --size")] * len(pages)

    def _compose_all(self, predicted: list) -> None:
        for (job, ref, ahead), page, prediction in predicted:
            if isinstance(prediction, _NotPredicted):
                self._page_failed(job, ref, f"{ref.label}: {prediction.message}")
                continue
            ab, confidence = prediction
            self.encodes.append(self.encode_pool.submit(self._compose, job, ref, page, ab, confidence, ahead))
        if predicted:
            self._drain()

    def _compose(self, job: Job, ref: SourcePage, page: DecodedPage, ab, confidence,
                 ahead: _Ahead) -> tuple[Job, SourcePage, PageResult | None, str]:
        try:
            hints = None if ahead.hint_file is None else load_hints(ahead.hint_file, page, ref.label)
            known = None
            references = list(self.colorizer.references)
            if id(job) in self.job_references:
                references += self.job_references[id(job)].result()
            if references:
                regions, known = self.colorizer.known_colors(page, ahead.regions, hints, references)
                ahead.regions, hints = regions, known
            # One torch thread per compose: the encode pool already runs one page per core beside the model.
            rgb = self.colorizer.compose(page, ab, threads=1, confidence=confidence, hints=hints,
                                         regions=ahead.regions)
            if self.compare is not None:
                self.thumbs.setdefault(id(job), []).append((ref.key, *compare_pair(page, rgb)))
            result = self._encode(job, ref, page, rgb)
            result.colored = colored_share(rgb)
            if known is not None:
                result.from_references = known.from_references
            return job, ref, result, "done"
        except PageError as e:
            return job, ref, None, str(e)
        except Exception as e:  # an allocation failure on one huge page fails that page alone
            if not backends.is_out_of_memory(e):
                raise
            return job, ref, None, f"{ref.label}: out of memory composing the page ({first_line(e)})"

    def _keep(self, job: Job, ref: SourcePage, page: DecodedPage) -> tuple[Job, SourcePage, PageResult | None, str]:
        try:
            return self._keep_page(job, ref, page)
        except PageError as e:
            return job, ref, None, str(e)

    def _keep_page(self, job: Job, ref: SourcePage, page: DecodedPage) -> tuple[Job, SourcePage, PageResult, str]:
        own = format_of_name(ref.name)
        if self.compare is not None:
            self.thumbs.setdefault(id(job), []).append((ref.key, *compare_pair(page, None)))
        fmt = job.fmt or self.fmt
        if fmt is None or own == ("jpeg" if fmt == "jpg" else fmt):
            return job, ref, PageResult(None, ref.name), "kept"
        return job, ref, self._encode(job, ref, page, to_rgb8(page.pixels)), "kept"

    def _encode(self, job: Job, ref: SourcePage, page: DecodedPage, rgb: np.ndarray) -> PageResult:
        fmt = job.fmt or self.fmt or format_of_name(ref.name) or page.format
        fmt = fmt if fmt in WRITABLE_FORMATS else "png"
        try:
            data = encode_image(rgb, fmt, alpha=page.alpha, quality=self.quality, info=page.info,
                                settings=job.settings)
        except (OSError, ValueError, KeyError) as e:
            raise PageError(f"{ref.label}: cannot encode as {fmt} ({first_line(e)})") from None
        return PageResult(data, output_name(ref.name, self.fmt))

    def _drain(self) -> None:
        # Collect finished encodes in order; wait on the oldest only when too many are in flight.
        limit = self.workers * 2 + self.colorizer.batch_size
        while self.encodes and (self.encodes[0].done() or len(self.encodes) > limit):
            self._finish_encode(self.encodes.popleft())

    def _finish_encode(self, future: cf.Future) -> None:
        job, ref, result, outcome = future.result()
        if result is None:
            self._page_failed(job, ref, outcome)
            return
        if outcome == "done":
            self.summary.done += 1
        else:
            self.summary.kept += 1
        self.results[id(job)][ref.key] = result
        self.outcomes.setdefault(id(job), collections.Counter())[outcome] += 1
        self._record(job, ref, "colored" if outcome == "done" else "already in color", result.name,
                     colored=result.colored, from_references=result.from_references)
        if result.colored is not None and result.colored < NEARLY_GRAY:
            self.nearly_gray.append(ref.label)
        self.bar.update(1)
        self._page_finished(job)

    def _page_failed(self, job: Job, ref: SourcePage, message: str) -> None:
        kept = (" (original kept in the output archive)" if isinstance(job, ArchiveJob) else
                " (original copied to the output folder)" if isinstance(job, ImageJob) and job.copies_original()
                else "")
        self.fail(message + kept)
        self._record(job, ref, "failed", ref.name if kept else None, error=message + kept)
        self.bar.update(1)
        self._page_finished(job)

    def _record(self, job: Job, ref: SourcePage, state: str, name: str | None, error: str | None = None,
                colored: float | None = None, from_references: int | None = None) -> None:
        seconds = time.perf_counter() - self.started.pop((id(job), ref.key), time.perf_counter())
        output = None if name is None else (f"{job.target}:{name}" if isinstance(job, ArchiveJob) else str(job.target))
        record = {"input": ref.label, "output": output, "status": state, "seconds": round(seconds, 3), "error": error}
        if colored is not None:
            record["colored_area"] = round(colored, 4)  # the share of the page that took color
        if from_references is not None:
            record["reference_regions"] = from_references  # regions colored from --reference pages
        self.records.setdefault(id(job), []).append(record)

    def _page_finished(self, job: Job) -> None:
        self.remaining[id(job)] -= 1
        if self.remaining[id(job)] == 0:
            self._finish_job(job)

    def _finish_job(self, job: Job) -> None:
        results = self.results.pop(id(job), {})
        outcomes = self.outcomes.pop(id(job), collections.Counter())
        records = sorted(self.records.pop(id(job), []), key=lambda r: r["input"])
        thumbs = self.thumbs.pop(id(job), [])
        try:
            job.finish(results)
        except (OSError, MangacolorError) as e:
            # Nothing was written: its pages count as failed, not done.
            self.summary.done -= outcomes["done"]
            self.summary.kept -= outcomes["kept"]
            message = f"{job.target}: cannot write output ({first_line(e)})" if isinstance(e, OSError) else str(e)
            self.fail(message, max(1, len(results)))
            for r in records:
                r.update(status="failed", output=None, error=r["error"] or message)
        else:
            for message in job.errors:
                self.fail(message, 0)
            if results or isinstance(job, ArchiveJob):
                self.summary.outputs.append(str(job.target))
            if thumbs and self.compare is not None:
                try:
                    path = self.comparisons[id(job)]
                    self.summary.comparisons.append(str(write_comparison(path, job, thumbs)))
                except OSError as e:
                    self.fail(f"{self.compare}: cannot write the comparison for {job.target} ({first_line(e)})", 0)
        finally:
            self.summary.pages.extend(records)
            job.close()
