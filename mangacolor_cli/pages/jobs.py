"""The job types every input is read as: a ``Job`` lists its pages (``SourcePage``) and writes its output
from their results (``PageResult``). ``sources`` holds the image and copy jobs, ``archive_reader`` the
archive job; both build on these.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass
class SourcePage:
    """One page to color: ``key`` identifies it inside its job, ``label`` names it in messages."""

    key: int
    name: str
    label: str
    read: Callable[[], bytes]


@dataclass
class PageResult:
    """What became of a page: encoded output bytes, or ``None`` to keep the original (color page, failure)."""

    data: bytes | None
    name: str
    colored: float | None = None  # the share of the page's area that took color (None: not colored by the model)
    from_references: int | None = None  # regions colored from reference pages (None: no references)


class Job:
    """One output: ``target`` written from ``source``; ``pages()`` to process, ``finish(results)`` to write."""

    source: Path
    target: Path
    errors: list[str]
    # The format every page of the output is written in, when its target chose one (``-o page.png`` for
    # ``page.jpg``); None: the run's ``--format``, else each page's own.
    fmt: str | None = None
    # The record of the settings this run colors with (``engine.settings``), kept in the output it writes.
    settings: str | None = None

    def pages(self) -> list[SourcePage]:
        raise NotImplementedError

    def page_count(self) -> int:
        return len(self.pages())

    def finish(self, results: dict[int, PageResult]) -> None:
        raise NotImplementedError

    def output_state(self) -> str | None:
        """What ``target`` holds: None (nothing yet), ``"finished"`` (a rerun skips it), ``"unfinished"`` (our
        output with failed pages: a rerun tries again) or ``"foreign"`` (a file this job would not have
        written: never skipped as done, never replaced without ``--overwrite``)."""
        try:
            if not os.path.lexists(self.target):
                return None
            if self.target.is_symlink() or not self.target.is_file():
                return "foreign"
            return self._judge_output()
        except OSError:
            return "foreign"

    def _judge_output(self) -> str:
        return "finished"

    def output_settings(self) -> str | None:
        """The settings record the existing output carries, or None: none kept (an older mangacolor's output,
        a BMP page, a page copied as it was, a file that is not a page)."""
        return None

    def output_is_a_copy(self) -> bool:
        """Whether the existing output is the input byte for byte (a page already in color, kept as it was)."""
        return False

    def close(self) -> None:
        pass
