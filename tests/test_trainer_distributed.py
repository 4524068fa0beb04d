"""The StepContext under 2 gloo processes: one step equals a single-process step on all the data."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
from torch import nn

from trainer.distributed import init_distributed, shutdown_distributed
from trainer.step import NonFiniteLoss, TrainStepContext

WORLD = 2


def _net() -> nn.Module:
    torch.manual_seed(0)
    # The last layer gets no gradient: it must stay untouched, as in a single process.
    return nn.ModuleDict({"a": nn.Linear(4, 3), "b": nn.Linear(3, 1), "unused": nn.Linear(2, 2)})


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.linspace(-1, 1, 8 * 4).reshape(8, 4)
    return x, x.sum(1, keepdim=True) ** 2


def _loss(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((net["b"](torch.tanh(net["a"](x))) - y) ** 2).mean()


def _rank_main(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    info = init_distributed("cpu")
    try:
        net = _net()
        opt = torch.optim.Adam(net.parameters(), lr=0.1)
        ctx = TrainStepContext({"g": opt}, torch.device("cpu"), None, {}, None, info)
        x, y = _data()
        half = slice(rank * 4, rank * 4 + 4)
        for _ in range(2):
            ctx.backward_step(_loss(net, x[half], y[half]), "g")
        torch.save(net.state_dict(), Path(out) / f"rank{rank}.pt")
        poisoned = _loss(net, x[half], y[half]) * (float("nan") if rank == 1 else 1.0)
        try:
            ctx.backward_step(poisoned, "g")
        except NonFiniteLoss:
            (Path(out) / f"rank{rank}.stopped").touch()
    finally:
        shutdown_distributed(info)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gradients_are_averaged_across_ranks_and_a_nan_on_one_rank_stops_all(tmp_path):
    single = _net()
    opt = torch.optim.Adam(single.parameters(), lr=0.1)
    # fork: the ranks inherit the imported modules (the optimizer's lazy imports too), saving seconds each.
    mp.start_processes(_rank_main, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True, start_method="fork")
    x, y = _data()
    for _ in range(2):
        opt.zero_grad()
        _loss(single, x, y).backward()
        opt.step()
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    for name, value in single.state_dict().items():
        assert torch.equal(ranks[0][name], ranks[1][name]), name
        assert torch.allclose(ranks[0][name], value, atol=1e-6), name
    assert torch.equal(ranks[0]["unused.weight"], _net().state_dict()["unused.weight"])
    assert all((tmp_path / f"rank{r}.stopped").exists() for r in range(WORLD))
