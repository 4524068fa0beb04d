"""The training loop: one loop drives every registered model through the ``ColorModel`` contract.

    >>> from trainer import TrainConfig, train
    >>> summary = train(TrainConfig(model="unet", preset="tiny", data="pages/", out="runs/unet", steps=200))

A run directory holds ``last.pt`` / ``best.pt`` (resumable checkpoints), ``metrics.jsonl`` (one JSON
record per line: ``baseline``, ``train``, ``val``), ``loss_curve.png``, ``preview.png`` and
``previews/`` (gray | prediction | target per validation).

Determinism: the model is built after seeding python/numpy/torch with ``seed``; batches depend only
on ``(seed, epoch, position)`` (see ``trainer.data``); checkpoints hold the RNG states of every rank
and the step, so ``resume`` continues exactly where an uninterrupted run would be.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

import models
from models.checkpoint import rebuild_model
from models.toolbox.device import DeviceError, is_out_of_memory
from models.toolbox.errors import first_line
from models.toolbox.progress import ProgressBar, format_losses

from .checkpoints import read_init, read_resumable, restore_training_state, run_meta, save_best, save_last
from .choices import CPU_TRAINING_SPEED
from .config import DEFAULT_EPOCHS, ConfigError, TrainConfig, check_config, checkpoint_path, refuse_an_untrainable_model
from .data import STATS_EPOCH, DataError, DataSplit, build_datasets, make_batch
from .distributed import DistInfo, barrier, broadcast_state, init_distributed, shutdown_distributed
from .metrics_log import MetricsLog, curve_series
from .plots import draw_loss_curve
from .resume import resumed_config
from .run_state import StopRequest, seed_everything
from .sampling import EpochSampler, worker_init
from .step import NonFiniteLoss, TrainStepContext
from .validation import Validation, best_from_log

__all__ = ["ConfigError", "TrainConfig", "TrainSummary", "TrainingDataError", "TrainingDiverged", "train"]

# The default validation cadence (every epoch) never runs more often than this many steps.
MIN_VAL_STEPS = 50
# Training a model over this many parameters on a CPU says, in one line, what a smaller preset gains.
CPU_NOTE_PARAMETERS = 10_000_000


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


class TrainingDataError(DataError):
    """An image that failed to load once the run was under way (a ``DataError`` before the first step is the
    data named wrongly; this one stops a run that had started)."""


@dataclass
class TrainSummary:
    """What a run did: steps, throughput, the latest and best validation, where the checkpoints are."""

    run_dir: Path
    model: str
    step: int
    total_steps: int
    epoch: int
    images_per_s: float
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    last_val: dict[str, float] | None
    best_val: dict[str, float] | None
    baseline: dict[str, float] | None
    last_losses: dict[str, float]
    interrupted: bool = False
    world: int = 1


# ---------------------------------------------------------------------------- hardware
def ema_average(decay: float):
    """An EMA update whose decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates
    (as timm's ModelEmaV3 and TF's ExponentialMovingAverage with num_updates): a fixed 0.998 would keep
    55% of the random initial decoder in the average after 300 steps (seen: uniform pink previews)."""

    def average(averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
        n = float(num_averaged)
        d = min(decay, (1.0 + n) / (10.0 + n))
        return averaged * d + current * (1.0 - d)

    return average


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX512-BF16 or AMX), read from /proc/cpuinfo."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


# ---------------------------------------------------------------------------- the run
def train(config: TrainConfig) -> TrainSummary:
    """Train ``config.model`` on ``config.data``; returns a :class:`TrainSummary`.

    Raises ``ConfigError``/``DataError``/``models.CheckpointError`` (one-line messages) for bad
    input before any step, ``TrainingDataError`` for an image failing during the run and
    ``TrainingDiverged`` when a loss becomes NaN/inf. Under ``torchrun`` every rank calls
    it; rank 0 writes the run folder.
    """
    try:
        info = init_distributed(config.device)
    except DeviceError as e:
        raise ConfigError(str(e)) from None
    threads = torch.get_num_threads()
    if info.device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        # Threads beyond free cores thrash: unet tiny on a busy 2-core box ran 4 img/s on 2 threads, 31 on 1.
        free = len(os.sched_getaffinity(0)) // info.world - config.workers
        torch.set_num_threads(free if free > 2 else 1)
    try:
        return _TrainingRun(config, info).run()
    except Exception as e:  # an allocation failure (a batch or crop too large): one line, not a traceback
        if not is_out_of_memory(e):
            raise
        raise ConfigError(f"out of memory training at --size {config.size} and --batch-size {config.batch_size} "
                          f"({_worker_message(e)}); try a smaller --size, --batch-size or --preset") from None
    finally:
        torch.set_num_threads(threads)
        shutdown_distributed(info)


def _worker_message(err: Exception) -> str:
    """The original one-line message of an error a DataLoader worker re-raised with its traceback."""
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else type(err).__name__
    last = lines[-1]
    prefix = f"{type(err).__module__}.{type(err).__name__}: "
    return last[len(prefix):] if last.startswith(prefix) else last


class _TrainingRun:
    """One training run: the model, data, optimizers and the loop over steps."""

    def __init__(self, cfg: TrainConfig, info: DistInfo):
        self.cfg, self.info = cfg, info
        self.device = info.device
        self.out = Path(cfg.out)
        check_config(cfg, self.out, self.device)
        self.progress = ProgressBar(1, enabled=False, echo=info.is_main)

    def log(self, message: str) -> None:
        if self.info.is_main:
            self.progress.log(message)

    # -------------------------------------------------------------- setup
    def _build_model(self) -> None:
        cfg = self.cfg
        self.payload = None
        if cfg.resume is not None:
            path = checkpoint_path(cfg.resume)
            self.payload = read_resumable(path)
            # The run's own settings come back; only what may change is taken from this call.
            self.cfg, warning = resumed_config(cfg, (self.payload.get("meta") or {}).get("config"), path)
            cfg = self.cfg
            self.out = Path(cfg.out)
            check_config(cfg, self.out, self.device)
            if warning:
                self.log(warning)
            if cfg.model and cfg.model != self.payload["model"]:
                raise ConfigError(f"{path}: is a {self.payload['model']!r} checkpoint, not {cfg.model!r}")
            self.seed = int(self.payload["train"].get("seed", cfg.seed))
            seed_everything(self.seed)
            self.model = rebuild_model(path, self.payload)
        elif cfg.init is not None:
            self.seed = cfg.seed
            seed_everything(self.seed)
            path = checkpoint_path(cfg.init)
            init = read_init(cfg, path)
            # Its own options: the architecture must match the weights (and no pretrained wheel is read).
            self.model = rebuild_model(path, init)
            self.log(f"starting from the weights of {cfg.init} (step {(init.get('meta') or {}).get('step', '?')})")
        else:
            self.seed = cfg.seed
            refuse_an_untrainable_model(cfg, self.device)  # before seeding: the count draws no random numbers
            seed_everything(self.seed)
            try:
                self.model = models.create(cfg.model, preset=cfg.preset, **cfg.options)
            except TypeError as e:
                raise ConfigError(f"model {cfg.model!r}: bad option ({e})") from None
            except ValueError as e:
                raise ConfigError(first_line(e)) from None
        if cfg.size % self.model.stride:
            raise ConfigError(f"--size {cfg.size} must be a multiple of {self.model.name}'s stride {self.model.stride}")
        too_small = self.model.size_problem(cfg.size)  # before any data loads: one line, not a traceback
        if too_small:
            raise ConfigError(too_small)
        self.model.to(self.device)

    def _build_data(self) -> None:
        cfg = self.cfg
        self.data: DataSplit = build_datasets(
            cfg.data, cfg.data_b, layout=cfg.layout, size=cfg.size, seed=self.seed, val_fraction=cfg.val_fraction,
            use_manga_look=cfg.manga_look, aligned_input=cfg.aligned_input, max_scale=cfg.max_scale,
            val_limit=cfg.val_limit, val_data=cfg.val_data)
        self.sampler = EpochSampler(len(self.data.train), cfg.batch_size, self.seed, self.info.rank, self.info.world)
        self.steps_per_epoch = self.sampler.batches_per_epoch
        self.total_steps = cfg.steps if cfg.steps is not None else (cfg.epochs or DEFAULT_EPOCHS) * self.steps_per_epoch
        self.validation = Validation(self.data.val, batch_size=cfg.batch_size, workers=cfg.workers, seed=self.seed,
                                     to_batch=self._to_batch, preview_count=cfg.preview_count)

    def _loader(self, sampler, dataset=None, workers: int | None = None) -> DataLoader:
        workers = self.cfg.workers if workers is None else workers
        return DataLoader(dataset if dataset is not None else self.data.train, batch_size=self.cfg.batch_size,
                          sampler=sampler, num_workers=workers, worker_init_fn=worker_init if workers else None,
                          pin_memory=self.device.type == "cuda",
                          # Its own generator: creating a loader never draws from the global torch RNG.
                          generator=torch.Generator().manual_seed(self.seed))

    def _to_batch(self, raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        nb = self.device.type == "cuda"
        return make_batch(raw["gray"].to(self.device, non_blocking=nb), raw["rgb"].to(self.device, non_blocking=nb))

    def _build_training(self) -> None:
        cfg = self.cfg
        self.optimizers = self.model.optimizers(cfg.lr)
        amp = cfg.amp and self.device.type == "cuda"
        self.amp_dtype = None
        self.scalers: dict[str, Any] = {}
        if cfg.cpu_bf16 and self.device.type == "cpu":
            if cpu_has_bf16():
                self.amp_dtype = torch.bfloat16
            else:
                self.log("note: --cpu-bf16 asked for, but this CPU has no bf16 instructions; training in fp32")
        if cfg.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.ema = None
        if cfg.ema:
            self.ema = torch.optim.swa_utils.AveragedModel(self.model, avg_fn=ema_average(cfg.ema), use_buffers=True)
        self.schedulers = {name: torch.optim.lr_scheduler.LambdaLR(opt, self._lr_factor)
                           for name, opt in self.optimizers.items()}
        if amp:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            if self.amp_dtype == torch.float16:
                self.scalers = {name: torch.amp.GradScaler("cuda") for name in self.optimizers}
        self.ctx = TrainStepContext(self.optimizers, self.device, self.amp_dtype, self.scalers, cfg.grad_clip, self.info)
        self.step, self.best_value, self.best_step = 0, math.inf, -1
        self.metrics_log = MetricsLog(self.out / "metrics.jsonl", self.info.is_main)
        if self.payload is not None:
            self.step, self.best_value, self.best_step = restore_training_state(
                self.payload["train"], optimizers=self.optimizers, scalers=self.scalers, schedulers=self.schedulers,
                ema=self.ema, lr_factor=self._lr_factor, info=self.info, log=self.log)
            self.metrics_log.load(self.step)
            self.payload = None  # free the weights' copy
        else:
            self.model.train()
            self.model.prepare_data_stats(self._stats_batches())
            # Each rank its own dropout/noise stream; rank 0 keeps the single-process stream.
            seed_everything(self.seed + 7919 * self.info.rank)
            broadcast_state(self.model)
        if self.info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            if self.cfg.resume is None and self.metrics_log.path.exists():
                self.metrics_log.path.unlink()  # --overwrite: a fresh run starts a fresh log

    def _lr_factor(self, step: int) -> float:
        """The schedule's multiple of ``lr`` at ``step``."""
        cfg = self.cfg
        if cfg.schedule == "constant":
            return 1.0
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        t = min(1.0, (step - cfg.warmup) / max(1, self.total_steps - cfg.warmup))
        return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * t))

    def _stats_batches(self) -> Iterator[dict[str, torch.Tensor]]:
        # Every rank sees the same sample, so data-derived buffers agree without a broadcast.
        sampler = EpochSampler(len(self.data.train), self.cfg.batch_size, self.seed, 0, 1)
        sampler.set_epoch(STATS_EPOCH, num_batches=self.cfg.stats_batches)
        for i, raw in enumerate(self._loader(sampler)):
            if i >= self.cfg.stats_batches:
                break
            yield self._to_batch(raw)

    # -------------------------------------------------------------- validation and checkpoints
    def _net(self):
        """The weights validated and kept in best.pt: the EMA average with --ema, else the model."""
        return self.ema.module if self.ema is not None else self.model

    def _predict(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        net = self._net()
        with self.ctx.autocast():
            return net.colorize(net.model_input(batch))

    def _validate(self, epoch: int) -> dict[str, float] | None:
        return self.validation.validate(self._net(), self._predict, step=self.step, epoch=epoch,
                                        log=self.metrics_log, out=self.out)

    def _save(self, name: str, val: dict[str, float] | None) -> Path | None:
        facts = {"step": self.step, "epoch": self.step // self.steps_per_epoch, "seed": self.seed,
                 "batches_per_epoch": self.steps_per_epoch, "world": self.info.world,
                 "best_value": self.best_value, "best_step": self.best_step}
        return save_last(self.out / name, self.model, optimizers=self.optimizers, scalers=self.scalers, ema=self.ema,
                         info=self.info, facts=facts, meta=self._meta(val))

    def _meta(self, val: dict[str, float] | None) -> dict[str, Any]:
        return run_meta(self.cfg, self.data, self.step, val)

    def _draw_curves(self) -> None:
        series, _, _ = curve_series(self.metrics_log.records)
        # The training losses and the validation L1 share a scale; the other val metrics do not.
        losses = {name: pts for name, pts in series.items() if name.startswith("train ") or name == "val l1_ab"}
        draw_loss_curve(losses, self.out / "loss_curve.png", title=f"{self.model.name}: training losses")

    # -------------------------------------------------------------- the loop
    def run(self) -> TrainSummary:
        cfg, info = self.cfg, self.info
        self._build_model()
        self._build_data()
        self._build_training()
        self.log(f"{self.model.name} ({sum(p.numel() for p in self.model.parameters()) / 1e6:.2f} M parameters) on "
                 f"{self.device}{' x' + str(info.world) if info.enabled else ''}"
                 f"{', ' + str(self.amp_dtype).replace('torch.', '') if self.amp_dtype else ''}; {self.data.describe()}; "
                 f"{self.steps_per_epoch} steps/epoch, steps {self.step} -> {self.total_steps}")
        if self.device.type == "cpu" and sum(p.numel() for p in self.model.parameters()) > CPU_NOTE_PARAMETERS:
            self.log(f"note: a model this size trains slowly on a CPU ({CPU_TRAINING_SPEED}); "
                     "a smaller --preset trains in reasonable time")
        if self.step >= self.total_steps:
            self.log(f"already at step {self.step} of {self.total_steps}: nothing to train (raise --steps/--epochs)")
        baseline = self.validation.baseline(self.metrics_log) if info.is_main else None
        if baseline:
            self.log("gray baseline: " + format_losses(baseline))
        last_val: dict[str, float] | None = None
        best_val = None
        window: dict[str, list[float]] = {}
        last_losses: dict[str, float] = {}
        images, train_time, window_images, window_time = 0, 0.0, 0, 0.0
        interrupted = False
        saved_step = self.step if self.cfg.resume else -1
        self._saved_at = time.monotonic()
        self.progress = ProgressBar(self.total_steps, self.step, f"{self.model.name}", enabled=cfg.progress and info.is_main,
                                    echo=info.is_main, unit="steps", plain_every=cfg.progress_seconds)
        try:
            with StopRequest(self.log) as stop:
                self.model.train()
                epoch, start_batch = divmod(self.step, self.steps_per_epoch)
                # One loader for the whole run: its sampler walks on through the epochs.
                self.sampler.set_epoch(epoch, start_batch, num_batches=max(0, self.total_steps - self.step))
                tick = time.perf_counter()
                for raw in self._loader(self.sampler):
                    batch = self._to_batch(raw)
                    try:
                        losses = self.model.train_step(batch, self.ctx)
                        bad = [k for k, v in losses.items() if not math.isfinite(v)]
                    except NonFiniteLoss as e:
                        losses, bad = {}, [str(e)]
                    # The time budget counts the steps and the data they waited for, not validation or saving.
                    out_of_time = cfg.max_minutes is not None and train_time >= 60 * cfg.max_minutes
                    stop_now, diverged = self._agree(stop.requested or out_of_time, bool(bad))
                    if diverged:
                        raise TrainingDiverged(
                            f"{self.model.name}: loss became NaN/inf at step {self.step + 1} "
                            f"({', '.join(bad) or 'on another rank'}); stopped, keeping the last good checkpoint "
                            f"{self.out / 'last.pt'}" + (f" (step {saved_step})" if saved_step >= 0 else " (none written yet)"))
                    self.step += 1
                    if self.ema is not None:
                        self.ema.update_parameters(self.model)
                    for sched in self.schedulers.values():
                        sched.step()
                    n_img = batch["ab"].shape[0] * info.world
                    now = time.perf_counter()
                    images += n_img
                    window_images += n_img
                    train_time += now - tick
                    window_time += now - tick
                    for k, v in losses.items():
                        window.setdefault(k, []).append(v)
                    last_losses = losses
                    self.progress.update(1, losses)
                    epoch_now = (self.step - 1) // self.steps_per_epoch
                    if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                        if info.is_main:
                            self.metrics_log.append({
                                "kind": "train", "step": self.step, "epoch": epoch_now,
                                "losses": {k: float(np.mean(v)) for k, v in window.items()},
                                "images_per_s": window_images / max(window_time, 1e-9)})
                        window, window_images, window_time = {}, 0, 0.0
                    if self._checkpoint_due() or self.step == self.total_steps:
                        last_val, best_val = self._checkpoint_and_validate(epoch_now, best_val)
                        saved_step = self.step
                    tick = time.perf_counter()
                    if self.step >= self.total_steps:
                        break
                    if stop_now and out_of_time and not stop.requested:
                        if saved_step != self.step:
                            last_val, best_val = self._checkpoint_and_validate(epoch_now, best_val)
                            saved_step = self.step
                        self.log(f"time budget of {cfg.max_minutes:g} min reached at step {self.step}; "
                                 f"continue with --resume {self.out / 'last.pt'}")
                        break
                    if stop_now:
                        interrupted = True
                        break
        except KeyboardInterrupt:
            if info.enabled:
                raise
            interrupted = True
        except DataError as e:
            raise TrainingDataError(_worker_message(e)) from None
        finally:
            self.progress.close()
        if interrupted and saved_step != self.step:
            self._save("last.pt", last_val)
            saved_step = self.step
        if interrupted:
            self.log(f"interrupted at step {self.step}; resume with --resume {self.out / 'last.pt'}")
        if info.is_main and self.metrics_log.records:
            self._draw_curves()
        barrier(info)
        best = self.out / "best.pt"
        return TrainSummary(
            run_dir=self.out, model=self.model.name, step=self.step, total_steps=self.total_steps,
            epoch=self.step // self.steps_per_epoch, images_per_s=images / train_time if train_time else 0.0,
            last_checkpoint=self.out / "last.pt" if saved_step >= 0 else None,
            best_checkpoint=best if best.exists() else None, last_val=last_val,
            best_val=best_val or best_from_log(self.metrics_log, self.cfg.best_metric), baseline=baseline,
            last_losses=last_losses, interrupted=interrupted, world=info.world)

    def _checkpoint_due(self) -> bool:
        """Validate and write last.pt now? ``val_every`` steps exactly when given; else every epoch, at least
        ``MIN_VAL_STEPS`` steps and ``val_min_seconds`` apart; and always after ``checkpoint_minutes``.
        Every rank takes rank 0's decision (wall time differs between processes)."""
        cfg = self.cfg
        since = time.monotonic() - self._saved_at
        if cfg.val_every:
            due = self.step % cfg.val_every == 0
        else:
            every = self.steps_per_epoch * math.ceil(MIN_VAL_STEPS / self.steps_per_epoch)
            due = self.step % every == 0 and since >= cfg.val_min_seconds
        due = due or (cfg.checkpoint_minutes is not None and since >= 60 * cfg.checkpoint_minutes)
        if self.info.enabled:
            t = torch.tensor([float(due)], device=self.device)
            dist.broadcast(t, 0)
            due = bool(t[0] > 0)
        return due

    def _agree(self, stop: bool, bad: bool) -> tuple[bool, bool]:
        """Every rank takes the same decision to stop or to give up on a diverged run."""
        if not self.info.enabled:
            return stop, bad
        t = torch.tensor([float(stop), float(bad)], device=self.device)
        dist.all_reduce(t)
        return bool(t[0] > 0), bool(t[1] > 0)

    def _checkpoint_and_validate(self, epoch: int, best_val):
        val = self._validate(epoch) if self.info.is_main else None
        if self.info.is_main:
            if val is not None:
                self.log(f"step {self.step} epoch {epoch}: val " + format_losses(val))
            value = val[self.cfg.best_metric] if val is not None else -float(self.step)
            if value < self.best_value:
                self.best_value, self.best_step, best_val = value, self.step, val
                improved = True
            else:
                improved = False
        else:
            improved = False
        # best_value must agree across ranks: it is saved in every checkpoint.
        if self.info.enabled:
            t = torch.tensor([self.best_value, float(self.best_step), float(improved)], device=self.device,
                             dtype=torch.float64)
            dist.broadcast(t, 0)
            self.best_value, self.best_step, improved = float(t[0]), int(t[1]), bool(t[2] > 0)
        self._save("last.pt", val)
        self._saved_at = time.monotonic()
        if improved and self.info.is_main:
            save_best(self.out / "best.pt", self._net(), self._meta(val), self.best_step, self.best_value)
        if self.info.is_main:
            self._draw_curves()
        barrier(self.info)
        return val, best_val
