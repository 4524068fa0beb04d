"""Resuming a run with the settings it was started with.

A checkpoint's ``meta["config"]`` holds the run's ``TrainConfig``. On ``--resume`` those settings
come back; of the options the caller gave, only the ones in ``MAY_CHANGE`` (how long, how fast, how
often to validate, where the data now lives) replace them, and any other option that differs is
named in one warning line and ignored (docs/ARCHITECTURE.md, "Checkpoint format").
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

# Options a resumed run may change: its length, learning rate, cadence, hardware and the data's location.
MAY_CHANGE = frozenset({
    "steps", "epochs", "lr", "val_every", "checkpoint_minutes", "max_minutes", "val_min_seconds", "log_every",
    "progress_seconds",
    "workers", "device", "amp", "cpu_bf16", "channels_last", "progress", "data", "data_b", "val_data", "out",
})
# What a resume itself is, never taken from the saved run.
_OF_THIS_INVOCATION = frozenset({"resume", "overwrite", "given"})
# Option names as the command line spells them, where they are not --<field-name>.
_FLAG = {"options": "--opt", "manga_look": "--manga-look/--plain-gray", "model": "--model"}


def flag(field_name: str) -> str:
    """A TrainConfig field as its ``mangacolor train`` option (``batch_size`` -> ``--batch-size``)."""
    return _FLAG.get(field_name, "--" + field_name.replace("_", "-"))


def given_fields(config: Any) -> set[str]:
    """The fields the caller set: ``config.given`` when the CLI says, else those that differ from the defaults."""
    if config.given is not None:
        given = set(config.given)
    else:
        given = set()
        for f in dataclasses.fields(config):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if default is dataclasses.MISSING or getattr(config, f.name) != default:
                given.add(f.name)
    # The required paths and name left empty mean "the run's own".
    return {name for name in given if name not in ("model", "data", "out") or getattr(config, name)}


def _show(value: Any) -> str:
    return "none" if value is None else str(value)


def resumed_config(config: Any, saved: dict[str, Any] | None, checkpoint: Path) -> tuple[Any, str | None]:
    """``config`` with the saved run's settings restored; returns it and a one-line warning (or None).

    ``saved``: the checkpoint's ``meta["config"]`` (None for a checkpoint written before settings were
    saved: then ``config`` is used as it is). ``out`` defaults to the checkpoint's folder.
    """
    given = given_fields(config)
    changes: dict[str, Any] = {}
    if not config.out:
        changes["out"] = str(checkpoint.parent)
    if not saved:
        return dataclasses.replace(config, **changes), None
    names = {f.name for f in dataclasses.fields(config)}
    ignored, changed = [], []
    for name, value in saved.items():
        if name not in names or name in _OF_THIS_INVOCATION or name in changes:
            continue
        mine = getattr(config, name)
        if name in given and name in MAY_CHANGE:
            if mine != value and name not in ("out", "data", "data_b", "val_data", "progress"):
                changed.append(f"{flag(name)} {_show(value)} -> {_show(mine)}")
            continue
        if name in given and mine != value:
            ignored.append(f"{flag(name)} {_show(mine)} (the run's: {_show(value)})")
        changes[name] = value
    # --steps and --epochs are one choice: giving either one replaces the saved one.
    if "steps" in given and config.steps is not None:
        changes["epochs"] = None
    elif "epochs" in given and config.epochs is not None:
        changes["steps"] = None
    parts = []
    if ignored:
        parts.append("kept the run's settings, ignored " + ", ".join(ignored))
    if changed:
        parts.append("changed " + ", ".join(changed))
    warning = f"warning: resuming {checkpoint}: " + "; ".join(parts) if parts else None
    return dataclasses.replace(config, **changes), warning


def changeable_options() -> str:
    """The options a resumed run may change, as the command line spells them (for the help)."""
    return ", ".join(flag(n) for n in sorted(MAY_CHANGE - {"progress", "data_b", "val_min_seconds"}))
