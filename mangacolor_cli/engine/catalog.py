"""What models there are: the packaged model files (``--model NAME``) and the registered architectures with
their presets (``mangacolor train --model``), for ``mangacolor models``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from models.toolbox.errors import first_line

from ..errors import MangacolorError
from .runner import DEFAULT_MODEL, WEIGHTS_DIR

MODEL_EXTENSIONS = (".onnx", ".pt")


@dataclass
class PackagedModel:
    """A model file shipped in the package: ``--model <name>`` loads it."""

    name: str
    path: str
    architecture: str
    options: dict[str, Any]
    bytes: int
    working_size: int | None
    card: str | None           # the model card's path, when the model has one
    summary: str = ""          # the card's first line (its title), or why the file could not be read
    default: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Architecture:
    """A registered model class: ``mangacolor train --model <name> --preset <preset>``."""

    name: str
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _card_of(path: Path) -> Path | None:
    for candidate in (path.with_suffix(".md"), WEIGHTS_DIR / f"{path.stem.upper()}_CARD.md",
                      *( [WEIGHTS_DIR / "MODEL_CARD.md"] if path == DEFAULT_MODEL else [])):
        if candidate.is_file():
            return candidate
    return None


def _facts(path: Path) -> tuple[str, dict[str, Any], int | None]:
    """(architecture, options, working size) from an ONNX file's metadata or a checkpoint's header."""
    if path.suffix == ".onnx":
        from .backends import read_onnx_meta
        meta = read_onnx_meta(path)
        working = meta.get("working_size")
        return meta.get("model", "?"), json.loads(meta.get("options", "{}")), int(working) if working else None
    from models.checkpoint import read_checkpoint
    payload = read_checkpoint(path)
    working = (payload.get("meta") or {}).get("working_size")
    return payload["model"], dict(payload.get("options", {})), int(working) if working else None


def packaged_models(folder: Path = WEIGHTS_DIR) -> list[PackagedModel]:
    """Every model file in the package's weights folder, the default first; a file that cannot be read is
    listed with the reason as its summary. A region model (``<name>.regions.onnx``) is part of its pixel
    model, not a model of its own (``engine.region_model``)."""
    found = []
    for path in sorted(p for p in folder.iterdir() if p.suffix in MODEL_EXTENSIONS and p.is_file()
                       and not p.name.endswith(".regions.onnx")):
        card = _card_of(path)
        summary = ""
        try:
            architecture, options, working = _facts(path)
        except (MangacolorError, Exception) as e:  # a damaged file is reported in its row, not a crash
            architecture, options, working, summary = "?", {}, None, f"unreadable: {first_line(e)}"
        if card is not None and not summary:
            title = next((ln.strip("# ").strip() for ln in card.read_text(encoding="utf-8").splitlines() if ln.strip()), "")
            summary = title
        found.append(PackagedModel(path.stem, str(path), architecture, options, path.stat().st_size, working,
                                   str(card) if card else None, summary, default=path == DEFAULT_MODEL))
    found.sort(key=lambda m: (not m.default, m.name))
    return found


def architectures() -> list[Architecture]:
    """The registered model classes in registration order, with their presets and docstring's first line."""
    import sys

    import models

    result = []
    for name in models.available():
        cls = models.model_class(name)
        doc = (cls.__doc__ or sys.modules[cls.__module__].__doc__ or "").strip().split("\n\n")[0]
        result.append(Architecture(name, {k: dict(v) for k, v in cls.presets().items()}, " ".join(doc.split())))
    return result
