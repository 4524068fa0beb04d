"""The contract every model keeps, so one trainer, one exporter and one colorizer drive them all.

Modelled on pytorch-CycleGAN-and-pix2pix's ``BaseModel``: each model file holds its own networks,
losses and optimisation step; the trainer only feeds batches and hands it a ``StepContext``.

Tensors, always batch-first, float:
  * ``L``    the page's lightness, normalized ``L/50 - 1`` in [-1, 1], ``[B, 1, H, W]``
  * ``gray`` the page's gray value in [0, 1] ``[B, 1, H, W]`` (for models with ``input_norm == 'gray01'``)
  * ``ab``   chroma normalized ``ab/110`` in [-1, 1], ``[B, 2, H, W]``
  * ``rgb``  sRGB in [0, 1], ``[B, 3, H, W]``

A training batch is a dict with those keys (all present, for the same pixels) for paired data;
for unpaired data (CycleGAN) the keys ``L``/``gray`` come from gray pages and ``ab``/``rgb`` from
unrelated color pages.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar, ContextManager, Iterable, Protocol

import torch
from torch import nn


class StepContext(Protocol):
    """What the trainer lends a model for one optimisation step."""

    def autocast(self) -> ContextManager[Any]:
        """Mixed precision where enabled (CUDA + --amp), a no-op otherwise."""

    def backward_step(self, loss: torch.Tensor, optimizer: str,
                      params: list[nn.Parameter] | None = None) -> None:
        """Backward ``loss``, average gradients across DDP ranks, clip, step ``optimizer`` and zero it.

        ``params`` are the parameters that optimizer owns (defaults to all of them); gradients of
        other parameters are left as they were.
        """


class NullStepContext:
    """Plain single-process fp32 steps; for tests and notebooks."""

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer]):
        self.optimizers = optimizers

    def autocast(self) -> ContextManager[Any]:
        return contextlib.nullcontext()

    def backward_step(self, loss, optimizer, params=None):
        opt = self.optimizers[optimizer]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)


class ColorModel(nn.Module):
    """Base class of every registered model.

    Subclasses set ``name`` (via ``@register``), ``stride`` (input sides are padded to a multiple
    of it) and ``input_norm`` (``'lab'`` for L/50-1, ``'gray01'`` for the gray value in [0, 1]),
    store their JSON-able constructor arguments in ``self.options`` and implement ``colorize``,
    ``optimizers`` and ``train_step``.
    """

    name: ClassVar[str] = "base"
    stride: int = 1
    input_norm: str = "lab"

    def __init__(self, **options: Any):
        super().__init__()
        self.options: dict[str, Any] = dict(options)

    # ------------------------------------------------------------------ presets
    @classmethod
    def presets(cls) -> dict[str, dict[str, Any]]:
        """Named option sets: ``full`` matches the paper, ``tiny`` is for tests."""
        return {"full": {}, "tiny": {}}

    # ------------------------------------------------------------------ inference
    def colorize(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized input ``[B,1,H,W]`` (per ``input_norm``) -> ab normalized ``[B,2,H,W]``.

        Called in eval mode; H and W are multiples of ``stride``. Needs only the generator.
        """
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.colorize(x)

    def inference_module(self) -> nn.Module:
        """The smallest module whose forward is ``colorize`` (what export writes to ONNX)."""
        # The wrapper takes the model's mode: exporting restores the wrapper's mode onto the model.
        return _ColorizeOnly(self).train(self.training)

    # ------------------------------------------------------------------ training
    def optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        """Optimizers by name, as the paper sets them up (betas, weight decay)."""
        return {"g": torch.optim.Adam(self.parameters(), lr=lr, betas=(0.5, 0.999))}

    def train_step(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, float]:
        """One optimisation step on ``batch``; returns the named losses as floats."""
        raise NotImplementedError

    def prepare_data_stats(self, batches: Iterable[dict[str, torch.Tensor]]) -> None:
        """Called once by the trainer before training with a sample of training batches.

        Models that need data statistics (eccv16's class-rebalancing prior) compute and store them
        as buffers here, so they travel in the checkpoint; others ignore it.
        """

    def model_input(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The normalized input this model reads from a batch."""
        return batch["gray"] if self.input_norm == "gray01" else batch["L"]


class ChromaRegressionModel(ColorModel):
    """A generator alone, regressing ab with an L1 loss (autoencoder, U-Net): one optimizer, 'g'."""

    def optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        return {"g": torch.optim.Adam(self.parameters(), lr=lr, betas=(0.9, 0.999))}

    def train_step(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, float]:
        with ctx.autocast():
            pred = self.colorize(self.model_input(batch))
            loss = nn.functional.l1_loss(pred.float(), batch["ab"])
        ctx.backward_step(loss, "g")
        return {"l1": loss.item()}


class _ColorizeOnly(nn.Module):
    def __init__(self, model: ColorModel):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.colorize(x)
