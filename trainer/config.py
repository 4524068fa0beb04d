"""A training run's options: :class:`TrainConfig`, and the checks that refuse options that cannot work
together in one line, before any data loads or any memory is allocated (``check_config``)."""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import models
from models.toolbox.device import free_memory

from .choices import BEST_METRICS, SCHEDULES

if TYPE_CHECKING:  # the options are checked before torch loads (``check_options``, ``mangacolor train``)
    import torch

DEFAULT_EPOCHS = 10
# A batch holds each crop's gray, RGB, L and ab in float32 (8 values a pixel) before the model's activations.
BATCH_BYTES_PER_PIXEL = 32
# Training holds every parameter four times in float32: the weights, their gradients and Adam's two moments.
TRAINING_BYTES_PER_PARAMETER = 16


class ConfigError(ValueError):
    """Training options that cannot work together; ``str(err)`` is one line."""


@dataclass
class TrainConfig:
    """Everything a run needs; the ``mangacolor train`` options map onto these fields one to one.

    ``steps`` or ``epochs`` bound the run (``epochs`` defaults to 10 when neither is given);
    ``val_every`` is in steps (default: every epoch); ``val_data`` is a separate validation folder. ``options`` are the model's constructor
    options on top of ``preset``. ``amp`` applies on CUDA only (bf16 where supported, else fp16
    with a GradScaler); the CPU trains in fp32. ``resume`` is a ``last.pt`` (or its run folder).
    """

    model: str
    data: str
    out: str
    data_b: str | None = None
    val_data: str | None = None
    layout: str = "auto"
    aligned_input: str = "left"
    preset: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    size: int = 256
    batch_size: int = 16
    epochs: int | None = None
    steps: int | None = None
    lr: float = 2e-4
    amp: bool = True
    seed: int = 0
    resume: str | None = None
    # A fresh run that starts from these weights (a checkpoint of the same model; its options win).
    init: str | None = None
    workers: int = 2
    val_every: int | None = None
    val_fraction: float = 0.1
    val_limit: int = 64
    device: str = "auto"
    grad_clip: float | None = None
    manga_look: bool = True
    max_scale: float = 2.0
    log_every: int = 10
    preview_count: int = 6
    stats_batches: int = 8
    progress: bool = True
    overwrite: bool = False
    # Compute on a CPU: bf16 autocast where the CPU has bf16 instructions (AVX512-BF16/AMX), NHWC tensors.
    cpu_bf16: bool = False
    channels_last: bool = False
    # An exponential moving average of the weights (decay per step), validated and kept in best.pt.
    ema: float | None = None
    # Learning rate: "constant", or "cosine" (linear warm-up over ``warmup`` steps, then cosine to lr/20).
    schedule: str = "constant"
    warmup: int = 0
    # The validation metric that picks best.pt (lower is better; "ciede2000" or "l1_ab").
    best_metric: str = "l1_ab"
    # Checkpoint cadence (docs/ARCHITECTURE.md, "Checkpoint format"): without ``val_every``, validation and
    # last.pt come every epoch but at least MIN_VAL_STEPS steps and ``val_min_seconds`` apart; whatever the
    # cadence, last.pt is also written once ``checkpoint_minutes`` have passed since the last one.
    checkpoint_minutes: float | None = 30.0
    # A time budget: stop after this many minutes of training steps (data waits included; validation and
    # checkpoints not), validate and save as at the last step. Counted afresh by each invocation.
    max_minutes: float | None = None
    val_min_seconds: float = 60.0
    # Without a terminal (output piped to a file), one progress line every this many seconds.
    progress_seconds: float = 30.0
    # The fields the caller set (the CLI's options on its command line); with ``resume`` every other
    # setting comes from the checkpoint (``trainer.resume``). None: the fields that differ from the defaults.
    given: tuple[str, ...] | None = None


def option_name(field_name: str) -> str:
    """The ``mangacolor train`` option of a ``TrainConfig`` field: ``batch_size`` -> ``--batch-size``."""
    return "--" + field_name.replace("_", "-")


def max_workers() -> int:
    """The most data loading processes a run may start: 4 per CPU core (each one is a whole process)."""
    return 4 * len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 4 * (os.cpu_count() or 1)


def checkpoint_path(resume: str) -> Path:
    """The checkpoint ``--resume``/``--init`` names: the file itself, or a run folder's ``last.pt``."""
    p = Path(resume)
    return p / "last.pt" if p.is_dir() else p


def check_config(cfg: TrainConfig, out: Path, device: torch.device) -> None:
    """Refuse, in one line naming the ``mangacolor train`` option, options that cannot work together, a run
    folder that is a file or already holds a run, and a batch the device cannot hold."""
    check_options(cfg, out)
    _refuse_an_unaffordable_batch(cfg, device)
    if cfg.resume is None and not cfg.overwrite and (out / "last.pt").exists():
        raise ConfigError(f"{out}: already holds a run (last.pt); resume it with --resume "
                          f"{out / 'last.pt'} or choose another --out")


def check_options(cfg: TrainConfig, out: Path) -> None:
    """The checks of :func:`check_config` that need no device and no torch: options that cannot work
    together and a run folder that is a file (``mangacolor train`` runs them before importing torch)."""
    if cfg.steps is not None and cfg.epochs is not None:
        raise ConfigError("give --steps or --epochs, not both")
    if cfg.resume is None and not cfg.data:
        raise ConfigError("--data is needed unless --resume is given")
    if cfg.resume is None and not cfg.out:
        raise ConfigError("--out is needed unless --resume is given")
    # Written as comparisons NaN fails (NaN passes ``x <= 0``), named as the ``mangacolor train`` options.
    if cfg.checkpoint_minutes is not None and not cfg.checkpoint_minutes > 0:
        raise ConfigError(f"--checkpoint-minutes must be positive, got {cfg.checkpoint_minutes}")
    if cfg.max_minutes is not None and not cfg.max_minutes > 0:
        raise ConfigError(f"--max-minutes must be positive, got {cfg.max_minutes}")
    for name in ("size", "batch_size", "log_every", "steps", "epochs", "val_every"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            raise ConfigError(f"{option_name(name)} must be at least 1, got {value}")
    if not 0 <= cfg.val_fraction < 1:
        raise ConfigError(f"--val-fraction must be in [0, 1), got {cfg.val_fraction}")
    if not cfg.max_scale >= 1:
        raise ConfigError(f"max_scale must be at least 1, got {cfg.max_scale}")
    # inf passes a lower bound: it would train garbage; a negative --grad-clip ascends the loss.
    if not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise ConfigError(f"--lr must be a positive number, got {cfg.lr}")
    if cfg.grad_clip is not None and not (math.isfinite(cfg.grad_clip) and cfg.grad_clip > 0):
        raise ConfigError(f"--grad-clip must be a positive number (the largest gradient norm), got {cfg.grad_clip}")
    if not 0 <= cfg.seed < 2**32:
        raise ConfigError(f"--seed must be between 0 and 2**32 - 1, got {cfg.seed}")
    if cfg.warmup < 0:
        raise ConfigError(f"--warmup must be at least 0, got {cfg.warmup}")
    if not 0 <= cfg.workers <= max_workers():
        raise ConfigError(f"--workers must be between 0 and {max_workers()} (4 per CPU core), got {cfg.workers}")
    if cfg.schedule not in SCHEDULES:
        raise ConfigError(f"--schedule must be one of {', '.join(SCHEDULES)}, got {cfg.schedule!r}")
    if cfg.best_metric not in BEST_METRICS:
        raise ConfigError(f"--best-metric must be l1_ab or ciede2000, got {cfg.best_metric!r}")
    if cfg.ema is not None and not 0 < cfg.ema < 1:
        raise ConfigError(f"--ema must be a decay in (0, 1), got {cfg.ema}")
    _refuse_a_file_as_run_folder(out)


def _refuse_a_file_as_run_folder(out: Path) -> None:
    """``--out`` (or a folder above it) naming an existing file: one line before any work, not a traceback
    from ``mkdir`` after the model and data are built."""
    for path in (out, *out.parents):
        if path.exists():
            if not path.is_dir():
                raise ConfigError(f"{path}: is an existing file; --out is the run's folder")
            return


def _refuse_an_unaffordable_batch(cfg: TrainConfig, device: torch.device) -> None:
    """``--batch-size 1000000`` (crops repeat to fill a batch) or ``--size 100000``: a batch that cannot fit the
    device's free memory even before the model runs is refused in one line, before any work."""
    need, free = cfg.batch_size * cfg.size * cfg.size * BATCH_BYTES_PER_PIXEL, free_memory(device)
    if free is not None and need > free:
        raise ConfigError(f"--batch-size {cfg.batch_size} at --size {cfg.size} needs over {need / 2**30:,.1f} GiB a "
                          f"batch, and {device} has {free / 2**30:,.1f} GiB free; choose a smaller --batch-size or --size")


def refuse_an_untrainable_model(cfg: TrainConfig, device: torch.device) -> None:
    """Options asking for a model whose parameters alone cannot be trained in the device's free memory
    (``--opt base=200000``: trillions of weights) are refused in one line before allocating: the model is
    counted on the ``meta`` device, which holds shapes without memory."""
    import torch

    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            probe = models.create(cfg.model, preset=cfg.preset, **cfg.options)
    except Exception:
        return  # bad options: the real build says why
    count = sum(p.numel() for p in probe.parameters())
    need, free = count * TRAINING_BYTES_PER_PARAMETER, free_memory(device)
    if free is not None and need > free:
        raise ConfigError(f"model {cfg.model!r} with these options has {count:,} parameters: training them needs "
                          f"{need / 2**30:,.1f} GiB, and {device} has {free / 2**30:,.1f} GiB free; refused before "
                          "allocating (choose a smaller preset or --opt)")
