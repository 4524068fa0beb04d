"""Where this process runs: the one device resolution (``--device`` -> a ``torch.device``) and the
process's place among the ones ``torchrun`` started."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class DeviceError(ValueError):
    """A ``--device`` that is not one, or asks for a GPU that is not there; one line."""


def process_ranks() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` as ``torchrun`` sets them; ``(0, 1, 0)`` for a plain process."""
    env = os.environ
    return int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1")), int(env.get("LOCAL_RANK", "0"))


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` is this process's GPU when there is one (``cuda:LOCAL_RANK`` under torchrun), else the CPU.

    A named device is checked: ``cuda`` without a GPU torch can use is a ``DeviceError``, not a crash
    at the first tensor.
    """
    import torch  # here, so process_ranks and DeviceError (colorize's ONNX path) load without it

    if isinstance(device, torch.device):
        device = str(device)
    if not _DEVICE.match(device):
        raise DeviceError(f"--device must be auto, cpu or cuda (cuda:N), got {device!r}")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", process_ranks()[2])
        return torch.device("cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"--device {device} asked for, but torch sees no CUDA GPU (CPU build or no driver)")
    return torch.device(device)
