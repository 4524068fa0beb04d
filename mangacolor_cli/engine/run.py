"""One pass of the colorize job over its jobs (``engine.pipeline.colorize`` plans it): the model's loading
thread, the decode (and segmentation) threads and the compose+encode threads beside the Colorizer's
batches, each page's record and each output's write."""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import inspect
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from models.paint.fills import DEFAULT_FILL
from models.paint.regions import Known
from models.toolbox.errors import first_line
from models.toolbox.images import DecodedPage, format_of_name, to_rgb8
from models.toolbox.progress import ProgressBar

from ..errors import MangacolorError, ModelError, PageError
from ..pages.compare import compare_pair, write_comparison
from ..pages.images import WRITABLE_FORMATS, decode_page, encode_image
from ..pages.planning import output_name
from ..pages.sources import ArchiveJob, ImageJob, Job, PageResult, SourcePage
from . import backends
from .colorizer import Colorizer
from .hints import HintSource
from .pagework import NEARLY_GRAY, colored_share, needs_color, page_regions
from .references import chapter_references as chapter_color_pages
from .summary import ColorizeSummary


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
            references = list(self.colorizer.references)
            if id(job) in self.job_references:
                references += self.job_references[id(job)].result()
            regions, hints = self.colorizer.page_hints(page, ahead.hint_file, ahead.regions, references, ref.label)
            known = hints if isinstance(hints, Known) else None
            # One torch thread per compose: the encode pool already runs one page per core beside the model.
            rgb = self.colorizer.compose(page, ab, threads=1, confidence=confidence, hints=hints, regions=regions)
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
