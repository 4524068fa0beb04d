"""A run's ``metrics.jsonl``: one JSON record per line (``baseline``, ``train``, ``val``), read in one place."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterator

from models.toolbox.files import write_text_atomic


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


X_AXIS_KEYS = ("step", "global_step", "iteration", "epoch")
NOT_CURVES = set(X_AXIS_KEYS) | {"time", "wall", "elapsed", "rank", "seconds", "images_per_s"}


def _numeric_items(rec: dict) -> Iterator[tuple[str, float]]:
    # The trainer nests its losses (``{"kind": "train", "losses": {...}}``); one level is flattened.
    for k, v in rec.items():
        items = v.items() if isinstance(v, dict) else [(k, v)]
        for name, value in items:
            if name in NOT_CURVES or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                yield name, float(value)


def curve_series(records: list[dict[str, Any]]) -> tuple[dict[str, list[tuple[float, float]]], dict[str, float], str]:
    """The numeric series of a log against its step: ``({"train loss_g": [(step, value), ...],
    "val ciede2000": [...]}, baseline values by metric, the x axis's name)``."""
    x_key = next((k for k in X_AXIS_KEYS if any(k in r for r in records)), None)
    series: dict[str, list[tuple[float, float]]] = {}
    baseline: dict[str, float] = {}
    for i, rec in enumerate(records):
        kind = rec.get("kind")
        if kind == "baseline":
            baseline.update(_numeric_items(rec))
            continue
        x = rec.get(x_key, i) if x_key else i
        if not isinstance(x, (int, float)):
            continue
        for name, value in _numeric_items(rec):
            series.setdefault(f"{kind} {name}" if isinstance(kind, str) else name, []).append((float(x), value))
    return series, baseline, x_key or "record"
