"""A run's checkpoints (docs/ARCHITECTURE.md, "Checkpoint format"): reading the one to resume or start from,
writing ``last.pt`` (weights and the training state of every rank) and ``best.pt`` (weights and facts only),
and putting a resumed run's optimizers, schedules, EMA and random streams back where they were.

The model a run takes from a file comes back through ``models.checkpoint.rebuild_model`` (``trainer.loop``),
the guarded rebuild ``load_model`` uses: options asking for far more than the file's weights are refused
before allocating.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch
import torch.distributed as dist

from models.checkpoint import read_checkpoint, save_checkpoint

from .config import ConfigError, TrainConfig
from .distributed import DistInfo
from .run_state import capture_rng, restore_rng

if TYPE_CHECKING:
    from models.base import ColorModel


def read_resumable(path: Path) -> dict[str, Any]:
    """The checkpoint ``--resume`` names, which must hold a training state (a ``last.pt``)."""
    payload = read_checkpoint(path)
    if "train" not in payload:
        raise ConfigError(f"{path}: holds weights only, no training state to resume from")
    return payload


def read_init(cfg: TrainConfig, path: Path) -> dict[str, Any]:
    """The checkpoint ``--init`` names, which must hold the model ``--model`` asks for."""
    payload = read_checkpoint(path)
    if cfg.model and cfg.model != payload["model"]:
        raise ConfigError(f"{cfg.init}: is a {payload['model']!r} checkpoint, not {cfg.model!r}")
    return payload


def run_meta(cfg: TrainConfig, data: Any, step: int, val: dict[str, float] | None) -> dict[str, Any]:
    """The JSON-able facts a checkpoint carries: working size, training size, layout, step, validation, config."""
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items() if k != "given"}
    working = getattr(data.train, "working", None) or 2 * cfg.size
    return {"working_size": working, "train_size": cfg.size, "layout": data.layout,
            "step": step, "val": val, "config": json.loads(json.dumps(config, default=str))}


def save_last(path: Path, model: ColorModel, *, optimizers: dict[str, torch.optim.Optimizer],
              scalers: dict[str, Any], ema: Any, info: DistInfo, facts: dict[str, Any],
              meta: dict[str, Any]) -> Path | None:
    """``last.pt``: the weights and the training state, with the RNG states of every rank. Every rank calls
    it (the states are gathered); rank 0 writes, the others get None. ``facts``: step, epoch, seed, ..."""
    rng = capture_rng()
    if info.enabled:
        gathered: list[Any] = [None] * info.world
        dist.all_gather_object(gathered, rng)
    else:
        gathered = [rng]
    if not info.is_main:
        return None
    train_state = {
        "optimizers": {n: o.state_dict() for n, o in optimizers.items()},
        "scalers": {n: s.state_dict() for n, s in scalers.items()},
        **facts, "rng": gathered,
    }
    if ema is not None:
        train_state["ema"] = ema.module.state_dict()
    return save_checkpoint(path, model, train=train_state, meta=meta)


def save_best(path: Path, net: ColorModel, meta: dict[str, Any], best_step: int, best_value: float) -> Path:
    """``best.pt``: the weights inference uses (the average with --ema) and the run's facts, no training
    state: a fraction of last.pt's size (the optimizer's moments are twice the weights)."""
    return save_checkpoint(path, net, meta={**meta, "best_step": best_step, "best_value": best_value})


def restore_training_state(state: dict[str, Any], *, optimizers: dict[str, torch.optim.Optimizer],
                           scalers: dict[str, Any], schedulers: dict[str, Any], ema: Any,
                           lr_factor: Callable[[int], float], info: DistInfo,
                           log: Callable[[str], None]) -> tuple[int, float, int]:
    """Put a ``last.pt``'s training state back: optimizers, scalers, the schedules' position, the EMA and
    this rank's random streams. Returns ``(step, best_value, best_step)``."""
    for name, opt in optimizers.items():
        opt.load_state_dict(state["optimizers"][name])
    for name, scaler in scalers.items():
        if name in state.get("scalers", {}):
            scaler.load_state_dict(state["scalers"][name])
    step = int(state["step"])
    for name, sched in schedulers.items():
        sched.last_epoch = step
        for group, base in zip(optimizers[name].param_groups, sched.base_lrs):
            group["lr"] = base * lr_factor(step)
    if ema is not None and "ema" in state:
        ema.module.load_state_dict(state["ema"])
        ema.n_averaged.fill_(max(1, step))
    best_value = float(state.get("best_value", math.inf))
    best_step = int(state.get("best_step", -1))
    rngs = state.get("rng", [])
    if len(rngs) != info.world:
        log(f"note: checkpoint was written by {len(rngs)} process(es), this run has {info.world}; "
            "random streams of the extra ranks restart")
    if rngs:
        restore_rng(rngs[info.rank] if info.rank < len(rngs) else rngs[0])
    return step, best_value, best_step
