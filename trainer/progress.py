"""One progress display for training: rich in a terminal, tqdm's widget in a Jupyter notebook."""

from __future__ import annotations

from typing import Mapping


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
    """Steps done out of ``total`` with the latest losses; ``log`` prints a line above the bar.

    ``enabled=False`` (non-zero ranks, tests) makes every call a no-op except ``log``'s print when
    ``echo`` is set.
    """

    def __init__(self, total: int, initial: int = 0, description: str = "train", enabled: bool = True,
                 echo: bool = True):
        self.enabled, self.echo = enabled, echo
        self._rich = self._tqdm = None
        if not enabled:
            return
        if in_notebook():
            from tqdm.auto import tqdm
            self._tqdm = tqdm(total=total, initial=initial, desc=description, dynamic_ncols=True)
        else:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)
            self._rich = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[losses]}"))
            self._task = self._rich.add_task(description, total=total, completed=initial, losses="")
            self._rich.start()

    def update(self, steps: int = 1, losses: Mapping[str, float] | None = None) -> None:
        if self._rich is not None:
            self._rich.update(self._task, advance=steps, losses=format_losses(losses or {}))
        elif self._tqdm is not None:
            self._tqdm.update(steps)
            if losses:
                self._tqdm.set_postfix({k: f"{v:.4g}" for k, v in losses.items()}, refresh=False)

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
