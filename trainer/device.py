"""The one device resolution: ``--device`` (auto, cpu, cuda, cuda:N, mps) -> a ``torch.device``."""

from __future__ import annotations

import os
import re

import torch

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class DeviceError(ValueError):
    """A ``--device`` that is not one, or asks for a GPU that is not there; one line."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` is this process's GPU when there is one (``cuda:LOCAL_RANK`` under torchrun), else the CPU.

    A named device is checked: ``cuda`` without a GPU torch can use is a ``DeviceError``, not a crash
    at the first tensor.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not _DEVICE.match(device):
        raise DeviceError(f"--device must be auto, cpu or cuda (cuda:N), got {device!r}")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"--device {device} asked for, but torch sees no CUDA GPU (CPU build or no driver)")
    return torch.device(device)
