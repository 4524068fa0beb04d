"""`mangacolor train`: parse the options into a ``trainer.TrainConfig``, call ``trainer.train``, print."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, List, Optional

import typer
from rich.console import Console
from rich.text import Text
from rich.table import Table

from models.toolbox.device import DEVICES
from trainer.choices import ALIGNED_INPUTS, BEST_METRICS, CPU_TRAINING_SPEED, LAYOUTS, PRESETS, SCHEDULES

from .app import EXIT_CODES, USAGE, app, choice, device_check, fail, labeled, refuse_missing

Layout = choice("Layout", LAYOUTS)
AlignedInput = choice("AlignedInput", ALIGNED_INPUTS)
Schedule = choice("Schedule", SCHEDULES)
BestMetric = choice("BestMetric", BEST_METRICS)


def parse_model_options(pairs: list[str]) -> dict:
    """``["base=32", "dropout=0.1", "norm=batch"]`` -> ``{"base": 32, "dropout": 0.1, "norm": "batch"}``.

    Values are read as JSON; anything that is not JSON is taken as a string.
    """
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="--opt")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def _model_names() -> str:
    import models
    return ", ".join(models.available())


def _model_presets(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of --preset: the presets of the --model given (every model's when none is yet)."""
    model = ctx.params.get("model")
    names = PRESETS.get(model, ()) if model else sorted({p for presets in PRESETS.values() for p in presets})
    return [name for name in names if name.startswith(incomplete)]


def _preset_help() -> str:
    per_model = "; ".join(f"{name}: {', '.join(presets)}" for name, presets in PRESETS.items())
    return (f"Model preset (default: full). {per_model}. On a CPU-only machine (measured, 128 px crops, batch 8, "
            f"one core): {CPU_TRAINING_SPEED}; full presets are for a GPU.")


# `mangacolor train` options as TrainConfig fields (the rest have the same name).
_FIELD_OF_OPTION = {"opt": "options"}


EPILOG = """\
Examples:

  mangacolor train --model unet --preset tiny --data pages/ --out runs/u

  mangacolor train --resume runs/u --steps 4000    # its own settings, longer

  mangacolor train --model cyclegan --data gray/ --data-b color/ --out runs/cg

  torchrun --nproc-per-node 2 -m mangacolor_cli train --data p/ --out r/

Ctrl-C saves last.pt and exits 0.

""" + EXIT_CODES


@app.command("train", epilog=EPILOG)
def train_command(
    ctx: typer.Context,
    data: Annotated[Optional[Path], typer.Option(
        help="Training pages: a color folder, DIR with bw/ + color/, aligned A|B images (--layout aligned), DIR with "
             "trainA/ + trainB/, or data/drawings (index.json) to compose pages from. Taken from the checkpoint "
             "with --resume.", show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option(
        help="Run folder: checkpoints, metrics.jsonl, previews, loss curve. With --resume: the checkpoint's folder.",
        show_default=False)] = None,
    model: Annotated[Optional[str], typer.Option(
        help="Registered model name (autoencoder, unet, pix2pix, ...; an unknown name lists them). Taken from the "
             "checkpoint with --resume.")] = None,
    # A string, not an enum: which presets there are depends on --model (PRESETS), which Typer's choices cannot
    # follow; the shell completes the chosen model's presets, and models.create refuses an unknown one in one line.
    preset: Annotated[Optional[str], typer.Option(help=_preset_help(), show_default=False,
                                                  autocompletion=_model_presets)] = None,
    opt: Annotated[List[str], typer.Option(help="Model option key=value (value read as JSON); repeatable.")] = [],
    data_b: Annotated[Optional[Path], typer.Option(
        "--data-b", help="Color pages for unpaired (CycleGAN) training; --data is then the gray pages.")] = None,
    val_data: Annotated[Optional[Path], typer.Option(
        "--val-data", help="Validation pages: a color folder or DIR with bw/ + color/ (real gray inputs); default: "
                           "DIR/val, else held-out files.")] = None,
    layout: Annotated[Layout, typer.Option(
        help="How --data is laid out; auto looks. composed: data/drawings from scripts/fetch_data.py, manga pages "
             "composed on the fly.")] = Layout.auto,
    aligned_input: Annotated[AlignedInput, typer.Option(
        "--aligned-input", help="Which half of an aligned A|B image is the gray input.")] = AlignedInput.left,
    size: Annotated[int, typer.Option(min=8, help="Training crop size in pixels (a multiple of the model's "
                                                  "stride).")] = 256,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per step per process.")] = 16,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Passes over the training pages (default 10).")] = None,
    steps: Annotated[Optional[int], typer.Option(min=1, help="Total optimisation steps (instead of "
                                                             "--epochs).")] = None,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 2e-4,
    amp: Annotated[bool, typer.Option("--amp/--no-amp", help="Mixed precision on CUDA (bf16, else fp16); the CPU "
                                                             "is fp32.")] = True,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same run.")] = 0,
    resume: Annotated[Optional[Path], typer.Option(
        help="Continue from RUN_DIR/last.pt (or RUN_DIR) with the run's own settings; only --steps/--epochs, --lr, "
             "--val-every, --checkpoint-minutes, --max-minutes, --log-every, --workers, --device, --amp, --cpu-bf16, "
             "--channels-last and the data folders may change (any other option that differs is named in one "
             "warning and ignored).", show_default=False)] = None,
    init: Annotated[Optional[Path], typer.Option(
        help="Start a fresh run from these weights (a checkpoint of the same model, e.g. "
             "checkpoints/effunet.pt; the model and its options come from it).", show_default=False)] = None,
    workers: Annotated[int, typer.Option(min=0, help="Data loading processes (decode, crop, manga look: ~30 ms per "
                                                     "256 px crop each).")] = min(8, max(1, (os.cpu_count() or 2) - 1)),
    val_every: Annotated[Optional[int], typer.Option(
        "--val-every", min=1, help="Validate and write last.pt every N steps (default: every epoch, but at least 50 "
                                   "steps and 60 s apart).")] = None,
    checkpoint_minutes: Annotated[float, typer.Option(
        "--checkpoint-minutes", min=0.1, help="Also validate and write last.pt when this many minutes have passed "
                                              "since the last one.")] = 30.0,
    max_minutes: Annotated[Optional[float], typer.Option(
        "--max-minutes", min=0.01, help="Time budget: stop after this many minutes of training steps (validation "
                                        "and checkpoints not counted), validate and save; the same budget for "
                                        "every model compares them fairly.", show_default=False)] = None,
    val_fraction: Annotated[float, typer.Option(
        "--val-fraction", help="Share of source files held out for validation (unless DIR/val exists).")] = 0.1,
    device: Annotated[str, typer.Option(callback=device_check(DEVICES),
                                        help="auto (GPU if any), cpu, cuda, cuda:1, ...")] = "auto",
    grad_clip: Annotated[Optional[float], typer.Option("--grad-clip", help="Clip the gradient norm to this "
                                                                          "value.")] = None,
    manga_look: Annotated[bool, typer.Option(
        "--manga-look/--plain-gray", help="Derive gray inputs with screentones, ink and scan noise (color-only "
                                          "data), or as plain luminance.")] = True,
    log_every: Annotated[int, typer.Option("--log-every", min=1, help="Steps per training record in "
                                                                      "metrics.jsonl.")] = 10,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start afresh in a run folder that holds a "
                                                                "run.")] = False,
    cpu_bf16: Annotated[bool, typer.Option(
        "--cpu-bf16", help="bf16 autocast on a CPU with bf16 instructions (AVX512-BF16/AMX; measured 1.4x on the "
                           "U-Net step).")] = False,
    channels_last: Annotated[bool, typer.Option("--channels-last", help="NHWC weights and activations.")] = False,
    ema: Annotated[Optional[float], typer.Option(
        help="Keep an exponential moving average of the weights with this decay (e.g. 0.999); validated and saved "
             "as best.pt.")] = None,
    schedule: Annotated[Schedule, typer.Option(help="Learning rate: constant, or cosine (to lr/20).")] = Schedule.constant,
    warmup: Annotated[int, typer.Option(min=0, help="Linear learning-rate warm-up steps (cosine schedule).")] = 0,
    best_metric: Annotated[BestMetric, typer.Option("--best-metric", help="What picks best.pt.")] = BestMetric.l1_ab,
) -> None:
    """Train a colorization model. Writes RUN_DIR/last.pt (resumable: weights, optimizer, RNG states),
    best.pt (the best validation's weights only, what colorize and export load), metrics.jsonl,
    loss_curve.png and preview.png. Ctrl-C saves last.pt and stops; --resume continues exactly.
    """
    from trainer.config import ConfigError, TrainConfig, check_options

    if model is None and resume is None and init is None:
        raise typer.BadParameter(f"needed unless --resume or --init is given; one of: {_model_names()}",
                                 param_hint="--model")
    for name, value in (("--data", data), ("--out", out)):
        if value is None and resume is None:
            raise typer.BadParameter("needed unless --resume is given", param_hint=name)
    # What was typed (not a default): with --resume only these may replace the run's settings. By the source's
    # name, as Typer may carry its own copy of click's enum.
    given = tuple(_FIELD_OF_OPTION.get(p.name, p.name) for p in ctx.command.params
                  if getattr(ctx.get_parameter_source(p.name), "name", None) in ("COMMANDLINE", "ENVIRONMENT"))
    config = TrainConfig(
        model=model or "", data=str(data or ""), out=str(out or ""), data_b=str(data_b) if data_b else None,
        val_data=str(val_data) if val_data else None, layout=layout.value,
        aligned_input=aligned_input.value, preset=preset, options=parse_model_options(opt), size=size,
        batch_size=batch_size, epochs=epochs, steps=steps, lr=lr, amp=amp, seed=seed,
        resume=str(resume) if resume else None, init=str(init) if init else None, workers=workers, val_every=val_every, val_fraction=val_fraction,
        device=device, grad_clip=grad_clip, manga_look=manga_look, log_every=log_every, overwrite=overwrite,
        cpu_bf16=cpu_bf16, channels_last=channels_last, ema=ema, schedule=schedule.value, warmup=warmup,
        best_metric=best_metric.value, checkpoint_minutes=checkpoint_minutes,
        max_minutes=max_minutes, given=given)
    # What needs no torch is checked before it loads (~1.3 s): the options of a fresh run (a resumed run's
    # come from its checkpoint), then, in the order the training checks them, a run to resume, the weights
    # to start from, the data.
    if resume is None:
        try:
            check_options(config, Path(config.out))
        except ConfigError as e:
            fail(e, USAGE)
    refuse_missing((resume, "no such checkpoint file"), (init, "no such checkpoint file"),
                   (data, "data folder not found"), (data_b, "data folder not found"),
                   (val_data, "data folder not found"))
    from models import CheckpointError
    from models.toolbox.device import process_ranks
    from models.toolbox.page_metrics import METRIC_LABELS, VALIDATION_METRICS
    from models.toolbox.progress import format_rate
    from trainer import DataError, TrainingDiverged, train

    try:
        summary = train(config)
    except (ConfigError, DataError, CheckpointError, TrainingDiverged) as e:
        fail(e)
    if process_ranks()[0] != 0:
        return
    console = Console(soft_wrap=True, highlight=False)
    table = Table(title=f"{summary.model}: step {summary.step}/{summary.total_steps}, "
                        f"{format_rate(summary.images_per_s, 'images')}"
                        + (f" on {summary.world} processes" if summary.world > 1 else ""))
    table.add_column("validation")
    for name in VALIDATION_METRICS:
        table.add_column(METRIC_LABELS[name], justify="right")
    for label, row in (("gray", summary.baseline), ("last", summary.last_val), ("best", summary.best_val)):
        if row:
            table.add_row(label, *(f"{row[n]:.4f}" if n in row else "-" for n in VALIDATION_METRICS))
    if summary.baseline or summary.last_val:
        console.print(table)
    verdict = against_gray(summary.best_val or summary.last_val, summary.baseline)
    if verdict:
        console.print(labeled("note:", "yellow", verdict))
    best = f", best {summary.best_checkpoint}" if summary.best_checkpoint else ""
    if summary.interrupted:
        console.print(Text(f"interrupted at step {summary.step}: resume with --resume {summary.last_checkpoint}{best}"))
    else:
        console.print(Text(f"done: {summary.last_checkpoint}{best}"))


def against_gray(model: dict[str, float] | None, gray: dict[str, float] | None) -> str | None:
    """One plain line when the trained model colors worse than the gray page on CIEDE2000 (what eval judges):
    a 10-step run saves a best.pt that paints pages worse than leaving them gray, and should say so."""
    if not model or not gray or "ciede2000" not in model or "ciede2000" not in gray:
        return None
    ours, baseline = model["ciede2000"], gray["ciede2000"]
    if ours <= baseline:
        return None
    return (f"this model is worse than the gray page on validation (ΔE2000 {ours:.2f} against {baseline:.2f}, "
            f"{ours / baseline - 1:+.0%}): it colors pages wrongly more than it colors them right. Train longer "
            "(--steps), on more data, or from a checkpoint (--init).")
