"""One checkpoint format: a file alone rebuilds its model (diffusers-style config beside weights).

A checkpoint is a dict saved with ``torch.save`` holding only tensors and plain values, so it loads
with ``torch.load(..., weights_only=True)``:

  format       CHECKPOINT_FORMAT (int)
  model        registered model name
  options      the model's JSON-able constructor options
  state_dict   the weights
  train        optional: optimizer/scaler state, epoch, step, rng states, ... (trainer-owned)
  meta         optional: JSON-able facts (working size, metrics, command line)
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from .base import ColorModel
from .toolbox.errors import first_line
from .toolbox.files import atomic_path
from .registry import create

CHECKPOINT_FORMAT = 1


class CheckpointError(Exception):
    """A checkpoint that cannot be loaded safely; the message names the file and the reason."""


def save_checkpoint(path: str | os.PathLike, model: ColorModel, *, train: dict[str, Any] | None = None,
                    meta: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (and training state) to ``path`` atomically: temp file beside it, then rename."""
    path = Path(path)
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "model": model.name,
        "options": dict(model.options),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    if train is not None:
        payload["train"] = train
    if meta is not None:
        payload["meta"] = meta
    with atomic_path(path, durable=True) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)
    return path


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict with ``weights_only=True``; any failure is a one-line CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.suffix.lower() == ".onnx":
        raise CheckpointError(f"{path}: is an ONNX model, not a PyTorch checkpoint (.pt); colorize and eval run it "
                              "as it is, export and train --resume need the .pt it came from")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns in paragraphs about legacy files; the error says it in one line
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower() or "weights_only" in str(e):
            raise CheckpointError(f"{path}: refused to load: it holds pickled objects other than tensors and "
                                  f"plain values ({_unsupported_global(e)}); mangacolor never unpickles code") from None
        raise CheckpointError(f"{path}: corrupt or not a checkpoint ({first_line(e)})") from None
    except Exception as e:  # torch.load raises many types (KeyError, RuntimeError, zip errors) on damaged files
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({type(e).__name__}: {first_line(e)})") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("model"), str) \
            or not isinstance(payload.get("state_dict"), dict):
        raise CheckpointError(f"{path}: not a mangacolor checkpoint (no model name or weights)")
    version = payload.get("format", 0)
    if not isinstance(version, int):
        raise CheckpointError(f"{path}: not a mangacolor checkpoint (format {version!r})")
    if version > CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {version} is newer than this mangacolor")
    if not isinstance(payload.get("options", {}), dict):
        raise CheckpointError(f"{path}: not a mangacolor checkpoint (options are not a mapping)")
    if not all(isinstance(v, torch.Tensor) for v in payload["state_dict"].values()):
        raise CheckpointError(f"{path}: not a mangacolor checkpoint (weights that are not tensors)")
    return payload


def _unsupported_global(exc: BaseException) -> str:
    # torch's message is a paragraph of advice to turn the check off; keep only what it found.
    for line in str(exc).splitlines():
        line = line.strip()
        if line.startswith("WeightsUnpickler error:"):
            return line[len("WeightsUnpickler error:"):].strip().split(". ")[0]
        if line.startswith("Trying to load unsupported GLOBAL"):
            return line.rstrip(".")
    return "not a plain-tensor checkpoint"


# A model may hold a little more than its file's weights (buffers rebuilt on load); never orders more.
MAX_MODEL_ELEMENTS = 2_000_000_000


def _refuse_oversized(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Refuse, before allocating anything, a checkpoint whose options ask for a model far larger than
    the weights it holds (a 2 KB file asking for base=4096 would allocate gigabytes): the model is
    built on the ``meta`` device, which counts shapes without memory."""
    held = sum(t.numel() for t in payload["state_dict"].values())
    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            probe = create(payload["model"], **payload.get("options", {}))
    except Exception:
        return  # cannot be built on meta (or bad options): the real build says why
    wanted = sum(t.numel() for t in probe.parameters()) + sum(t.numel() for t in probe.buffers())
    if wanted > MAX_MODEL_ELEMENTS or wanted > 2 * held + 2**20:
        raise CheckpointError(f"{path}: its options ask for a {payload['model']!r} model of {wanted:,} values, "
                              f"but it holds {held:,} weights; refused before allocating it")


def rebuild_model(path: str | os.PathLike, payload: dict[str, Any]) -> ColorModel:
    """The one guarded rebuild: the model a checkpoint's ``payload`` (from :func:`read_checkpoint` of ``path``)
    holds, weights loaded, left in training mode. Options asking for far more than the file's weights are
    refused before allocating; any failure is a one-line CheckpointError naming ``path``."""
    _refuse_oversized(path, payload)
    try:
        model = create(payload["model"], **payload.get("options", {}))
        model.load_state_dict(payload["state_dict"])
    except Exception as e:  # unknown name, bad options, mismatched weights: the model cannot be rebuilt
        raise CheckpointError(f"{path}: cannot rebuild model {payload['model']!r} ({first_line(e)})") from None
    return model


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> ColorModel:
    """Rebuild the model a checkpoint holds, weights loaded, in eval mode, from one read of the file.

    The checkpoint's ``meta`` (working size, training config, ...) comes with it as ``model.meta``.
    """
    payload = read_checkpoint(path, map_location)
    model = rebuild_model(path, payload)
    model.meta = dict(payload.get("meta") or {})
    return model.eval()
