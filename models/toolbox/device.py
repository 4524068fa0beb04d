"""Where this process runs: the one device resolution (``--device`` -> a ``torch.device``) and the
process's place among the ones ``torchrun`` started."""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# What --device names, besides cuda:N (a GPU's index); colorize leaves mps out (mangacolor_cli.engine.choices).
DEVICES = ("auto", "cpu", "cuda", "mps")
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


def free_memory(device: torch.device) -> int | None:
    """Bytes free for new tensors on ``device``: the GPU's free memory, the CPU's available RAM
    (``MemAvailable``), or None where it cannot be told."""
    import torch

    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def is_out_of_memory(error: BaseException) -> bool:
    """An allocation failure: ``MemoryError``, CUDA's ``torch.OutOfMemoryError``, the CPU allocator's
    ``RuntimeError: ... DefaultCPUAllocator: can't allocate memory`` (also as a DataLoader worker re-raises it),
    or onnxruntime's. Imports nothing: the ONNX path of colorize never loads torch."""
    # A torch another thread is still importing has no OutOfMemoryError yet, and raised none.
    oom = getattr(sys.modules.get("torch"), "OutOfMemoryError", None)
    if isinstance(error, MemoryError) or (oom is not None and isinstance(error, oom)):
        return True
    text = str(error).lower()
    if isinstance(error, RuntimeError) and ("can't allocate memory" in text or "defaultcpuallocator" in text):
        return True
    return type(error).__module__.startswith("onnxruntime") and ("out of memory" in text or "failed to allocate" in text)
