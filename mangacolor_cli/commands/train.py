"""`mangacolor train`: parse the options into a ``trainer.TrainConfig``, call ``trainer.train``, print."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from .app import app


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


@app.command("train")
def train_command(
    data: Path = typer.Option(..., "--data", help="Training pages: a color folder, DIR with bw/ + color/, "
                              "aligned A|B images (--layout aligned), or DIR with trainA/ + trainB/."),
    out: Path = typer.Option(..., "--out", help="Run folder: checkpoints, metrics.jsonl, previews, loss curve."),
    model: Optional[str] = typer.Option(None, "--model", help="Registered model name (autoencoder, unet, pix2pix, ...; "
                                        "an unknown name lists them). Taken from the checkpoint with --resume."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Model preset: full (the paper), tiny, ..."),
    opt: List[str] = typer.Option([], "--opt", help="Model option key=value (value read as JSON); repeatable."),
    data_b: Optional[Path] = typer.Option(None, "--data-b", help="Color pages for unpaired (CycleGAN) training; "
                                          "--data is then the gray pages."),
    val_data: Optional[Path] = typer.Option(None, "--val-data", help="Validation pages: a color folder or DIR with "
                                            "bw/ + color/ (real gray inputs); default: DIR/val, else held-out files."),
    layout: str = typer.Option("auto", "--layout", help="auto | color | paired | aligned | unpaired | composed "
                               "(data/drawings from scripts/fetch_data.py: manga pages composed on the fly)."),
    aligned_input: str = typer.Option("left", "--aligned-input", help="Which half of an aligned A|B image is the gray input."),
    size: int = typer.Option(256, "--size", min=8, help="Training crop size in pixels (a multiple of the model's stride)."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Images per step per process."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Passes over the training pages (default 10)."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Total optimisation steps (instead of --epochs)."),
    lr: float = typer.Option(2e-4, "--lr", help="Learning rate."),
    amp: bool = typer.Option(True, "--amp/--no-amp", help="Mixed precision on CUDA (bf16, else fp16); the CPU is fp32."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed gives the same run."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue from RUN_DIR/last.pt (or RUN_DIR)."),
    workers: int = typer.Option(min(8, max(1, (os.cpu_count() or 2) - 1)), "--workers", min=0,
                                 help="Data loading processes (decode, crop, manga look: ~30 ms per 256 px crop each)."),
    val_every: Optional[int] = typer.Option(None, "--val-every", min=1, help="Validate and checkpoint every N steps "
                                            "(default: every epoch)."),
    val_fraction: float = typer.Option(0.1, "--val-fraction", help="Share of source files held out for validation "
                                       "(unless DIR/val exists)."),
    device: str = typer.Option("auto", "--device", help="auto (GPU if any), cpu, cuda, cuda:1, ..."),
    grad_clip: Optional[float] = typer.Option(None, "--grad-clip", help="Clip the gradient norm to this value."),
    manga_look: bool = typer.Option(True, "--manga-look/--plain-gray", help="Derive gray inputs with screentones, "
                                    "ink and scan noise (color-only data), or as plain luminance."),
    log_every: int = typer.Option(10, "--log-every", min=1, help="Steps per training record in metrics.jsonl."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start afresh in a run folder that holds a run."),
    cpu_bf16: bool = typer.Option(False, "--cpu-bf16", help="bf16 autocast on a CPU with bf16 instructions "
                                  "(AVX512-BF16/AMX; measured 1.4x on the U-Net step)."),
    channels_last: bool = typer.Option(False, "--channels-last", help="NHWC weights and activations."),
    ema: Optional[float] = typer.Option(None, "--ema", help="Keep an exponential moving average of the weights "
                                        "with this decay (e.g. 0.999); validated and saved as best.pt."),
    schedule: str = typer.Option("constant", "--schedule", help="Learning rate: constant | cosine (to lr/20)."),
    warmup: int = typer.Option(0, "--warmup", min=0, help="Linear learning-rate warm-up steps (cosine schedule)."),
    best_metric: str = typer.Option("l1_ab", "--best-metric", help="What picks best.pt: l1_ab | ciede2000."),
) -> None:
    """Train a colorization model. Writes RUN_DIR/last.pt and best.pt (resumable), metrics.jsonl,
    loss_curve.png and preview.png. Ctrl-C saves last.pt and stops; --resume continues exactly.

    Examples:

      mangacolor train --model unet --data pages/ --out runs/unet --size 256 --epochs 20

      mangacolor train --model cyclegan --data gray_pages/ --data-b color_pages/ --out runs/cg --preset tiny

      torchrun --nproc-per-node 2 -m mangacolor_cli train --model pix2pix --data pages/ --out runs/p2p
    """
    from models import CheckpointError
    from trainer import ConfigError, DataError, TrainConfig, TrainingDiverged, train

    if model is None and resume is None:
        raise typer.BadParameter(f"needed unless --resume is given; one of: {_model_names()}", param_hint="--model")
    main_rank = int(os.environ.get("RANK", "0")) == 0
    config = TrainConfig(
        model=model or "", data=str(data), out=str(out), data_b=str(data_b) if data_b else None,
        val_data=str(val_data) if val_data else None, layout=layout,
        aligned_input=aligned_input, preset=preset, options=parse_model_options(opt), size=size,
        batch_size=batch_size, epochs=epochs, steps=steps, lr=lr, amp=amp, seed=seed,
        resume=str(resume) if resume else None, workers=workers, val_every=val_every, val_fraction=val_fraction,
        device=device, grad_clip=grad_clip, manga_look=manga_look, log_every=log_every, overwrite=overwrite,
        cpu_bf16=cpu_bf16, channels_last=channels_last, ema=ema, schedule=schedule, warmup=warmup,
        best_metric=best_metric)
    err = Console(stderr=True, soft_wrap=True)
    try:
        summary = train(config)
    except ConfigError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2)
    except (DataError, CheckpointError, TrainingDiverged) as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(1)
    if not main_rank:
        return
    console = Console(soft_wrap=True)
    table = Table(title=f"{summary.model}: step {summary.step}/{summary.total_steps}, "
                        f"{summary.images_per_s:.1f} images/s" + (f" on {summary.world} processes" if summary.world > 1 else ""))
    table.add_column("validation")
    names = ["l1_ab", "psnr", "ssim", "ciede2000", "colorfulness", "colorfulness_target"]
    for header in ("L1 ab", "PSNR", "SSIM", "CIEDE2000", "colorful", "colorful (target)"):
        table.add_column(header, justify="right")
    for label, row in (("gray", summary.baseline), ("last", summary.last_val), ("best", summary.best_val)):
        if row:
            table.add_row(label, *(f"{row[n]:.4f}" if n in row else "-" for n in names))
    if summary.baseline or summary.last_val:
        console.print(table)
    best = f", best {summary.best_checkpoint}" if summary.best_checkpoint else ""
    if summary.interrupted:
        console.print(f"interrupted at step {summary.step}: resume with --resume {summary.last_checkpoint}{best}",
                      highlight=False)
    else:
        console.print(f"done: {summary.last_checkpoint}{best}", highlight=False)
