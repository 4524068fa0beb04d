"""Training throughput: images/s of ``train_step`` for unet and pix2pix at 256 px, as the trainer runs it.

Uses the trainer's own ``TrainStepContext`` (autocast, GradScaler for float16, optimizer steps) on
synthetic batches, so data loading is left out: this is the compute bound of one process.

    python benchmarks/bench_train.py                       # CUDA with AMP when there is a GPU, else CPU fp32
    python benchmarks/bench_train.py --models unet --amp bf16,fp16,none --batch 64 --steps 30
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import models  # noqa: E402
from models.toolbox.device import resolve_device  # noqa: E402
from trainer.distributed import DistInfo  # noqa: E402
from trainer.step import TrainStepContext  # noqa: E402


def synthetic_batch(batch: int, size: int, device: torch.device) -> dict[str, torch.Tensor]:
    """A batch with every key the models read (L, gray, ab, rgb), consistent through the shared color math."""
    from models import color

    rgb = torch.rand(batch, 3, size, size, device=device)
    lab = color.rgb_to_lab(rgb)
    return {"rgb": rgb, "L": color.normalize_l(lab[:, :1]), "ab": color.normalize_ab(lab[:, 1:]),
            "gray": color.rgb_to_gray(rgb)}


def measure(name: str, preset: str | None, amp: str, batch: int, size: int, steps: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    model = models.create(name, preset=preset).to(device).train()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizers = model.optimizers(2e-4)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "none": None}[amp]
    scalers = ({k: torch.amp.GradScaler("cuda") for k in optimizers} if amp_dtype == torch.float16 else {})
    ctx = TrainStepContext(optimizers, device, amp_dtype, scalers, None, DistInfo(0, 1, 0, device))
    data = synthetic_batch(batch, size, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(3):  # warm-up: cuDNN autotuning, allocator
        model.train_step(data, ctx)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        model.train_step(data, ctx)
    sync()
    seconds = time.perf_counter() - start
    return {"model": name, "preset": preset, "amp": amp, "batch": batch, "size": size, "device": str(device),
            "images_per_s": batch * steps / seconds, "seconds_per_step": seconds / steps}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="unet,pix2pix")
    p.add_argument("--preset", default=None, help="model preset (default: each model's own default)")
    p.add_argument("--amp", default=None, help="bf16,fp16,none (default: bf16,fp16 on CUDA, none on CPU)")
    p.add_argument("--batch", type=int, default=None, help="default: 32 on CUDA, 4 on CPU")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=None, help="default: 30 on CUDA, 3 on CPU")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "train-latest.json"))
    args = p.parse_args()
    device = resolve_device("auto")
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    amps = (args.amp or ("bf16,fp16" if cuda else "none")).split(",")
    batch = args.batch or (32 if cuda else 4)
    steps = args.steps or (30 if cuda else 3)
    rows = []
    for name in args.models.split(","):
        for amp in amps:
            row = measure(name, args.preset, amp, batch, args.size, steps, device)
            rows.append(row)
            print(f"{name:10s} {amp:5s} batch {batch} {args.size}px on {device}: {row['images_per_s']:.2f} images/s",
                  flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": torch.cuda.get_device_name(0) if cuda else "cpu", "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
