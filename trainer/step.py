"""What the trainer lends a model for one optimisation step (``models.base.StepContext``)."""

from __future__ import annotations

import contextlib
from typing import Any, ContextManager

import torch
from torch import nn

from .distributed import DistInfo, average_gradients


class NonFiniteLoss(RuntimeError):
    """Raised inside a step when a loss is NaN/inf (before the optimizer would step on it)."""


class TrainStepContext:
    """The ``StepContext`` the trainer lends a model: autocast, backward, gradient averaging across
    ranks, optional clipping, optimizer step, and a NaN/inf check before anything is stepped."""

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer], device: torch.device,
                 amp_dtype: torch.dtype | None, scalers: dict[str, Any], grad_clip: float | None,
                 info: DistInfo):
        self.optimizers, self.device, self.amp_dtype = optimizers, device, amp_dtype
        self.scalers, self.grad_clip, self.info = scalers, grad_clip, info
        self._owned = {name: [p for g in opt.param_groups for p in g["params"]] for name, opt in optimizers.items()}

    def autocast(self) -> ContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def backward_step(self, loss: torch.Tensor, optimizer: str, params: list[nn.Parameter] | None = None) -> None:
        if optimizer not in self.optimizers:
            raise KeyError(f"no optimizer named {optimizer!r} (have {', '.join(self.optimizers)})")
        opt = self.optimizers[optimizer]
        params = list(params) if params is not None else self._owned[optimizer]
        finite = bool(torch.isfinite(loss.detach()).all())
        if not finite and not self.info.enabled:
            raise NonFiniteLoss(f"loss for optimizer {optimizer!r} is {float(loss.detach().float().mean())}")
        opt.zero_grad(set_to_none=True)
        scaler = self.scalers.get(optimizer)
        (scaler.scale(loss) if scaler is not None else loss).backward()
        if self.info.enabled:
            had_no_grad = [p.grad is None for p in params]
            bad_ranks = average_gradients(params, self.info.world, 0.0 if finite else 1.0)
            if bad_ranks > 0:
                raise NonFiniteLoss(f"loss for optimizer {optimizer!r} is not finite on {int(bad_ranks)} rank(s)")
            for p, none in zip(params, had_no_grad):
                # A parameter no rank touched keeps "no gradient", as in a single process.
                if none and not p.grad.any():
                    p.grad = None
        if self.grad_clip:
            if scaler is not None:
                scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], self.grad_clip)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)
