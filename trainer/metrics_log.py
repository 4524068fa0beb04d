"""A run's ``metrics.jsonl``: one JSON record per line (``baseline``, ``train``, ``val``), read in one place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.files import write_text_atomic


def read_metrics_log(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file; lines that are not a JSON object are skipped.

    Raises ``FileNotFoundError`` when there is no such file.
    """
    records = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records


class MetricsLog:
    """``metrics.jsonl``: append-only JSON lines, trimmed to the resumed step when a run resumes."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled
        self.records: list[dict[str, Any]] = []

    def load(self, up_to_step: int) -> None:
        if not self.path.is_file():
            return
        kept = [rec for rec in read_metrics_log(self.path)
                if rec.get("kind") == "baseline" or rec.get("step", 0) <= up_to_step]
        self.records = kept
        if self.enabled:
            write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("kind") == kind]
