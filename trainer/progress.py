"""The one progress display (training, colorize, eval): rich in a terminal, tqdm's widget in a Jupyter notebook."""

from __future__ import annotations

import time
from typing import Any, Mapping


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where rich's live display does not refresh well)."""
    try:
        from IPython import get_ipython  # type: ignore[import-not-found]
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def format_losses(losses: Mapping[str, float]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in losses.items())


class ProgressBar:
    """Work done out of ``total`` (None: unknown yet), with the latest losses or a rate; ``log`` prints above it.

    ``enabled=False`` (non-zero ranks, tests, output that is not a terminal) makes every call a no-op
    except ``log``'s print when ``echo`` is set. ``unit``: with a name ("pages"), the bar shows
    that many per second. ``transient``: the bar disappears when closed. ``console``: the rich
    console to draw on (default: stdout's).
    """

    def __init__(self, total: int | None, initial: int = 0, description: str = "train", enabled: bool = True,
                 echo: bool = True, *, unit: str | None = None, transient: bool = False, console: Any = None):
        self.enabled, self.echo, self.unit = enabled, echo, unit
        self._rich = self._tqdm = None
        self._done, self._start = 0, time.perf_counter()
        if not enabled:
            return
        if in_notebook():
            from tqdm.auto import tqdm
            self._tqdm = tqdm(total=total, initial=initial, desc=description, dynamic_ncols=True,
                              unit=unit or "it", leave=not transient)
        else:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)
            self._rich = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
                                  transient=transient, console=console)
            self._task = self._rich.add_task(description, total=total, completed=initial, status="")
            self._rich.start()

    def update(self, steps: int = 1, losses: Mapping[str, float] | None = None) -> None:
        """``steps`` more done; ``losses`` (training) are shown beside the bar."""
        self._done += steps
        if self._rich is not None:
            status = format_losses(losses or {})
            if self.unit and not status:
                status = f"{self._done / max(time.perf_counter() - self._start, 1e-9):.2f} {self.unit}/s"
            self._rich.update(self._task, advance=steps, status=status)
        elif self._tqdm is not None:
            self._tqdm.update(steps)
            if losses:
                self._tqdm.set_postfix({k: f"{v:.4g}" for k, v in losses.items()}, refresh=False)

    def set_total(self, total: int, completed: int | None = None) -> None:
        """A new total (work found on the way, as in an archive counted only when opened)."""
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
        return self._tqdm.total if self._tqdm is not None else None

    def log(self, message: str) -> None:
        if self._rich is not None:
            self._rich.console.print(message, highlight=False, soft_wrap=True)
        elif self._tqdm is not None:
            self._tqdm.write(message)
        elif self.echo:
            print(message, flush=True)

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
        elif self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
