"""The region model beside a pixel model: one color per region, chosen from the regions' tokens.

A pixel model's file may have a region model beside it, ``<name>.regions.onnx`` (the packaged default
does: ``weights/default.regions.onnx``; ``models.regionhead``, trained by
``scripts/train_region_head.py``). With the flat fill, each page's regions are then described by their
tokens (``models.paint.tokens.region_tokens``: the pixel model's prediction pooled in each region, the
page's gray there, its place and kind), the region model gives each a distribution over the ab bins,
and the palette decodes it (``models.paint.tokens.decode``) into the colors the compose lays.
onnxruntime on the CPU, one thread (a page's few hundred tokens take about a millisecond); numpy
only, so the ONNX colorize path still runs without torch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from models.paint import regions as rg
from models.paint.tokens import HEAD_FEATURES, decode, region_tokens, with_known
from models.toolbox.errors import first_line

from ..errors import ModelError

SUFFIX = ".regions.onnx"


def beside(model_path: str | os.PathLike | None) -> Path | None:
    """The region model file beside a pixel model's file (``x.onnx`` / ``x.pt`` -> ``x.regions.onnx``), or None."""
    if model_path is None:
        return None
    path = Path(model_path)
    candidate = path.with_name(path.stem + SUFFIX)
    return candidate if candidate.is_file() else None


class RegionModel:
    """A loaded region model: ``colors(regions, gray_small, ab, confidence, palette)`` -> ab per label."""

    def __init__(self, path: str | os.PathLike):
        from . import backends
        self.path = Path(path)
        self.session, _ = backends.load_session(self.path, "cpu", threads=1)
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            self.bins = np.asarray(json.loads(meta["mangacolor.bins"]), np.float32)
            features = json.loads(meta["mangacolor.options"])["features"]
        except (KeyError, ValueError) as e:
            raise ModelError(f"{self.path}: not a mangacolor region model ({first_line(e)})") from None
        if features != HEAD_FEATURES:
            raise ModelError(f"{self.path}: a region model for {features}-feature tokens; this mangacolor "
                             f"makes {HEAD_FEATURES} (retrain it with scripts/train_region_head.py)")

    def probabilities(self, tokens: np.ndarray) -> np.ndarray:
        """Tokens ``[n, F]`` -> each region's distribution over the ab bins ``[n, Q]``."""
        if len(tokens) == 0:
            return np.zeros((0, len(self.bins)), np.float32)
        return self.session.run(None, {"tokens": np.ascontiguousarray(tokens[None], np.float32)})[0][0]

    def colors(self, regions: rg.Regions, gray_small: np.ndarray, ab, confidence=None,
               palette: str = rg.DEFAULT_PALETTE, known: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """One ab per label ``[n + 1, 2]`` (Lab units; row 0 is 0), for ``fills.flat_colors`` (which keeps the
        neutral kinds neutral).
        ``known``: ``(labels [k], ab [k, 2])`` of the regions whose colors hints or references give (the
        model reads them for the others; the compose lays the known ones as given)."""
        tokens = with_known(region_tokens(regions, gray_small, ab, confidence), *(known or (None, None)))
        out = np.zeros((regions.count + 1, 2), np.float32)
        if regions.count:
            colors, _ = decode(self.probabilities(tokens[1:]), self.bins, palette)
            out[1:] = colors
        return out


def region_file(choice: str | os.PathLike | None, model_path: str | os.PathLike | None) -> Path | None:
    """The region model file ``choice`` names: ``auto`` (the file beside the model, if any), ``none``
    (None), or a path to a ``.regions.onnx`` (a missing one is a one-line ``ModelError``)."""
    if choice is None or str(choice) == "none":
        return None
    if str(choice) == "auto":
        return beside(model_path)
    path = Path(choice).expanduser()
    if not path.is_file():
        raise ModelError(f"--region-model {path}: no such file")
    return path


def load_region_model(choice: str | os.PathLike | None, model_path: str | os.PathLike | None) -> RegionModel | None:
    """The region model ``choice`` names (:func:`region_file`), loaded, or None."""
    path = region_file(choice, model_path)
    return None if path is None else RegionModel(path)
