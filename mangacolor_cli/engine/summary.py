"""What a colorize run did: ``ColorizeSummary`` (the counts, a record per page, the warnings), what
``colorize`` returns and ``colorize --json`` prints."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
