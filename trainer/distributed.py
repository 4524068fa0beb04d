"""Multi-process training under ``torchrun`` (docs/ARCHITECTURE.md, "Scale"): process group, gradient averaging, agreement.

Gradients are averaged with one ``all_reduce`` per optimizer step over exactly the parameters that
optimizer owns, instead of wrapping the model in ``DistributedDataParallel``: models call their own
sub-networks inside ``train_step`` (GANs with two or three optimizers, generators reused for the
discriminator's step), which DDP's forward hooks do not follow. The result is the same average DDP
computes, without its overlap of communication with the backward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from models.toolbox.device import process_ranks, resolve_device


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: rank, world size and its device."""

    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group ``torchrun`` describes (nccl on CUDA, gloo on the CPU); alone otherwise."""
    rank, world, local_rank = process_ranks()
    dev = resolve_device(device)
    if world > 1 and dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=30))
    return DistInfo(rank, world, local_rank, dev)


def shutdown_distributed(info: DistInfo) -> None:
    """Leave the process group, if this process joined one."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_state(module: nn.Module, src: int = 0) -> None:
    """Make every rank's parameters and buffers equal to rank ``src``'s."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src)


def average_gradients(params: list[nn.Parameter], world: int, flag: float = 0.0) -> float:
    """Average ``param.grad`` over ranks in one flat all_reduce; returns the sum of ``flag`` over ranks.

    A parameter without a gradient on this rank counts as zero, so every rank sends the same layout.
    ``flag`` rides along (e.g. 1.0 for a non-finite loss) so ranks agree on it without a second call.
    """
    device = params[0].device if params else torch.device("cpu")
    grads = []
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        grads.append(p.grad)
    flat = torch.cat([g.reshape(-1).float() for g in grads] + [torch.tensor([flag], device=device)])
    dist.all_reduce(flat)
    flag_sum = float(flat[-1])
    flat = flat[:-1] / world
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n
    return flag_sum


def barrier(info: DistInfo) -> None:
    """Wait for every rank."""
    if info.enabled:
        dist.barrier()
