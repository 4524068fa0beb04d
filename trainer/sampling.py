"""Which crops a training step sees: :class:`EpochSampler` makes every batch a function of the seed and the
step alone (the same with 0 or 8 loader workers, on any number of ranks, and after a resume), and
``worker_init`` sets up the loader's worker processes."""

from __future__ import annotations

import math
import signal
from typing import Iterator

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler):
    """Yields ``(index, epoch, position)`` keys for one rank; each epoch's order is a function of (seed, epoch).

    An epoch is a permutation of the dataset, cycled to a whole number of global batches
    (``batch_size * world`` items each); global batch ``b`` gives rank ``r`` the positions
    ``[b*B*W + r*B, b*B*W + (r+1)*B)``. ``set_epoch(epoch, start_batch)`` starts mid-epoch (resume);
    with ``num_batches`` set, iteration runs on through the following epochs for that many batches,
    so one DataLoader (and its workers) serves a whole run.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        if n <= 0:
            raise ValueError("EpochSampler needs a non-empty dataset")
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.epoch, self.start_batch, self.num_batches = 0, 0, None

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(self.n / (self.batch_size * self.world))

    def set_epoch(self, epoch: int, start_batch: int = 0, num_batches: int | None = None) -> None:
        """Start at batch ``start_batch`` of ``epoch``; yield ``num_batches`` batches (default: to the epoch's end)."""
        self.epoch, self.start_batch, self.num_batches = epoch, start_batch, num_batches

    def _order(self, epoch: int) -> list[int]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(self.n, generator=gen)
        total = self.batches_per_epoch * self.batch_size * self.world
        return perm.repeat(math.ceil(total / self.n))[:total].tolist()

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        B, W, per_epoch = self.batch_size, self.world, self.batches_per_epoch
        epoch, b = self.epoch, self.start_batch
        order = self._order(epoch)
        for _ in range(len(self) // B):
            if b == per_epoch:
                epoch, b = epoch + 1, 0
                order = self._order(epoch)
            start = b * B * W + self.rank * B
            for pos in range(start, start + B):
                yield (order[pos], epoch, pos)
            b += 1

    def __len__(self) -> int:
        batches = self.num_batches if self.num_batches is not None else self.batches_per_epoch - self.start_batch
        return batches * self.batch_size


def worker_init(_worker_id: int) -> None:
    """DataLoader workers: one thread each; Ctrl-C and SIGTERM are left to the main process (it saves, then stops)."""
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
