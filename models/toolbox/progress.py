"""The one progress display (training, colorize, eval, export, quantize): rich in a terminal, tqdm's widget in a
Jupyter notebook, a plain line at a steady interval when the output is a file or a pipe; its status field says
what is under way while nothing is counted (loading a model)."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, Iterator, Mapping


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where rich's live display does not refresh well)."""
    if "IPython" not in sys.modules:
        return False  # a kernel has loaded IPython long before us; importing it here costs 0.7 s of start-up
    try:
        from IPython import get_ipython  # type: ignore[import-not-found]
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def format_losses(losses: Mapping[str, float]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in losses.items())


def format_rate(per_second: float, unit: str = "it") -> str:
    """``12.50 steps/s``, or under one a second ``12.3 s/step``: a slow CPU's rate stays readable (not ``0.00``)."""
    if not per_second > 0 or per_second == float("inf"):
        return f"- {unit}/s"
    if per_second >= 1:
        return f"{per_second:.2f} {unit}/s"
    one = unit[:-1] if unit.endswith("s") and len(unit) > 1 else unit  # "steps" -> "s/step"
    return f"{1 / per_second:.1f} s/{one}"


def format_eta(seconds: float | None) -> str:
    """``h:mm:ss`` (``-:--:--`` while unknown)."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "-:--:--"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ProgressBar:
    """Work done out of ``total`` (None: unknown yet), with the latest losses or a rate; ``log`` prints above it.

    ``enabled=False`` (non-zero ranks, tests, output that is not a terminal) makes every call a no-op
    except ``log``'s print when ``echo`` is set. ``unit``: with a name ("pages"), the bar shows
    that many per second (seconds per one when under one a second, ``format_rate``). ``transient``: the bar disappears when closed. ``console``: the rich
    console to draw on (default: stdout's; stderr's with ``stderr``). ``plain_every``: when that console is not a
    terminal (output piped to a file), print one line every this many seconds instead of a bar (None: nothing).

    The ETA is the work left at the rate measured since the bar started (``initial`` not counted),
    the same rate the bar shows.
    """

    def __init__(self, total: int | None, initial: int = 0, description: str = "train", enabled: bool = True,
                 echo: bool = True, *, unit: str | None = None, transient: bool = False, console: Any = None,
                 plain_every: float | None = None, stderr: bool = False):
        self.enabled, self.echo, self.unit = enabled, echo, unit
        self._rich = self._tqdm = None
        self._plain = False
        self._done, self._start = 0, time.perf_counter()
        self._description, self._total, self._initial = description, total, initial
        self._plain_every, self._last_line = plain_every, self._start
        self._console = console
        if not enabled:
            return
        if not in_notebook():
            if console is None:
                from rich.console import Console
                console = self._console = Console(stderr=True, highlight=False) if stderr else Console()
            if not console.is_terminal:
                self._plain = plain_every is not None
                return
        if in_notebook():
            from tqdm.auto import tqdm
            self._tqdm = tqdm(total=total, initial=initial, desc=description, dynamic_ncols=True,
                              unit=unit or "it", leave=not transient)
        else:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
            self._rich = Progress(TextColumn("{task.description}", style="bold", markup=False), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TextColumn("eta {task.fields[eta]}"),
                                  TextColumn("{task.fields[status]}", markup=False), transient=transient, console=console)
            self._task = self._rich.add_task(description, total=total, completed=initial, status="",
                                             eta=format_eta(None))
            self._rich.start()

    def _rate(self) -> float:
        return self._done / max(time.perf_counter() - self._start, 1e-9)

    def eta(self) -> float | None:
        """Seconds left at the rate measured since the start; None while unknown."""
        if self._total is None or self._done == 0:
            return None
        return max(0.0, self._total - self._initial - self._done) / self._rate()

    def _plain_line(self, losses: Mapping[str, float] | None = None) -> str:
        done = self._initial + self._done
        of = f"/{self._total} ({100 * done / self._total:.0f}%)" if self._total else ""
        rate = format_rate(self._rate(), self.unit or "it")
        extra = f"  {format_losses(losses)}" if losses else ""
        return f"{self._description} {done}{of}  {rate}  eta {format_eta(self.eta())}{extra}"

    def update(self, steps: int = 1, losses: Mapping[str, float] | None = None) -> None:
        """``steps`` more done; ``losses`` (training) are shown beside the bar."""
        self._done += steps
        if self._plain:
            now = time.perf_counter()
            if now - self._last_line >= self._plain_every:
                self._last_line = now
                self.log(self._plain_line(losses))
            self._last_losses = losses
        elif self._rich is not None:
            status = format_losses(losses or {})
            if self.unit and not status:
                status = format_rate(self._rate(), self.unit)
            self._rich.update(self._task, advance=steps, status=status, eta=format_eta(self.eta()))
        elif self._tqdm is not None:
            self._tqdm.update(steps)
            if losses:
                self._tqdm.set_postfix({k: f"{v:.4g}" for k, v in losses.items()}, refresh=False)

    def set_status(self, text: str) -> None:
        """A note beside the bar ("loading the model..."); "" clears it. The next update's rate replaces it."""
        if self._rich is not None:
            self._rich.update(self._task, status=text)
        elif self._tqdm is not None:
            self._tqdm.set_postfix_str(text)

    def restart_clock(self) -> None:
        """Measure the rate and the ETA from now (after a start-up that did no work)."""
        self._start = self._last_line = time.perf_counter()

    def set_total(self, total: int, completed: int | None = None) -> None:
        """A new total (work found on the way, as in an archive counted only when opened)."""
        self._total = total
        if self._rich is not None:
            self._rich.update(self._task, total=total, **({} if completed is None else {"completed": completed}))
        elif self._tqdm is not None:
            self._tqdm.total = total
            if completed is not None:
                self._tqdm.n = completed
            self._tqdm.refresh()

    @property
    def total(self) -> float | None:
        if self._rich is not None:
            return self._rich.tasks[0].total
        return self._tqdm.total if self._tqdm is not None else self._total

    def log(self, message: str) -> None:
        if self._plain:
            self._console.print(message, highlight=False, soft_wrap=True, markup=False)
            self._console.file.flush()
        elif self._rich is not None:
            self._rich.console.print(message, highlight=False, soft_wrap=True, markup=False)
        elif self._tqdm is not None:
            self._tqdm.write(message)
        elif self.echo:
            print(message, flush=True)

    @contextlib.contextmanager
    def suspended(self) -> Iterator[None]:
        """Take the bar off the screen while the block prints (a caller's own lines, on its own console),
        then draw it again below them."""
        if self._rich is not None:
            self._rich.stop()
        elif self._tqdm is not None:
            self._tqdm.clear()
        try:
            yield
        finally:
            if self._rich is not None:
                self._rich.start()
            elif self._tqdm is not None:
                self._tqdm.refresh()

    def close(self) -> None:
        if self._plain:
            if self._done:
                self.log(self._plain_line(getattr(self, "_last_losses", None)))
            self._plain = False
        elif self._rich is not None:
            self._rich.stop()
            self._rich = None
        elif self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
