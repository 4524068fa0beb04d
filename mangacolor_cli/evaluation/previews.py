"""The small pictures of an eval (``scoring.evaluate_dirs``/``evaluate_models``): a thumbnail row per page for
the HTML report and a preview per sample page for the grid, encoded as JPEG while the pages stream past."""

from __future__ import annotations

import io
from typing import Callable, Sequence

import numpy as np

PREVIEW_HEIGHT = 224
THUMB_HEIGHT = 88
MAX_REPORT_THUMBS = 400


def _encode_jpeg(img: np.ndarray, height: int) -> bytes:
    from PIL import Image

    im = Image.fromarray(img).convert("RGB")
    w = max(1, round(im.width * height / im.height))
    im = im.resize((w, height), Image.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def choose_samples(keys: Sequence[str], n: int) -> list[str]:
    """``n`` keys spread evenly over ``keys`` (deterministic)."""
    if n <= 0 or not keys:
        return []
    if n >= len(keys):
        return list(keys)
    idx = np.linspace(0, len(keys) - 1, n).round().astype(int)
    return [keys[i] for i in sorted(set(idx.tolist()))]


class Previews:
    """The grid's and the report's small pictures, encoded as pages stream past: a thumbnail row for
    each of the first ``report_thumbs`` pages, a preview for each page ``choose_samples`` picks."""

    def __init__(self, keys: Sequence[str], samples: int, report_thumbs: int):
        self.samples = samples
        self._thumb_keys = set(list(keys)[:report_thumbs])
        self._sample_keys = set(choose_samples(list(keys), samples))
        self.thumbs: dict[str, dict[str, bytes]] = {}
        self.previews: dict[str, dict[str, bytes]] = {}

    def add(self, key: str, columns: dict[str, np.ndarray]) -> None:
        """``columns``: 'input', each system's prediction, 'target'."""
        if key in self._thumb_keys:
            self.thumbs[key] = {column: _encode_jpeg(img, THUMB_HEIGHT) for column, img in columns.items()}
        if key in self._sample_keys:
            self.previews[key] = {column: _encode_jpeg(img, PREVIEW_HEIGHT) for column, img in columns.items()}

    def samples_of(self, scored: Sequence[str], render: Callable[[str], dict[str, np.ndarray]],
                   tick: Callable[[int, int], None]) -> tuple[list[str], dict[str, dict[str, bytes]]]:
        """The sample keys and their previews, drawn from the pages that scored so that a failed page never
        leaves a hole in the grid: a page picked in place of a failed one is rendered again (``render``,
        ``tick(i, n)`` after each), none when every page scored."""
        chosen = choose_samples(list(scored), self.samples)
        again = [k for k in chosen if k not in self.previews]
        for i, key in enumerate(again, 1):
            self.previews[key] = {column: _encode_jpeg(img, PREVIEW_HEIGHT) for column, img in render(key).items()}
            tick(i, len(again))
        return chosen, {k: self.previews[k] for k in chosen}
