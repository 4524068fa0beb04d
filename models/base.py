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
import functools
import inspect
from typing import Any, ClassVar, ContextManager, Iterable, Protocol

import torch
from torch import nn

from . import color

# How a model reads the page: ``lab`` = L/50 - 1 in [-1, 1], ``gray01`` = the gray value in [0, 1].
INPUT_NORMS = ("lab", "gray01")


def prepare_input(pixels: torch.Tensor, input_norm: str) -> torch.Tensor:
    """Pages ``[B, 1|3, H, W]`` in [0, 1] (gray or sRGB) -> the normalized ``[B, 1, H, W]`` a model reads.

    The one place ``input_norm`` is interpreted: ``ColorModel.prepare_input`` and the ONNX path
    (whose file carries ``input_norm`` in its metadata) both come here.
    """
    if input_norm == "gray01":
        return pixels if pixels.shape[1] == 1 else color.rgb_to_gray(pixels)
    if input_norm == "lab":
        return color.normalize_l(color.gray_to_l(pixels) if pixels.shape[1] == 1 else color.rgb_to_lab(pixels)[:, :1])
    raise ValueError(f"unknown input_norm {input_norm!r}; one of {', '.join(INPUT_NORMS)}")


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


# What a tensor too small for a layer raises (torch's messages), as opposed to an op the meta device lacks.
_TOO_SMALL = ("more than 1 spatial element", "more than 1 value per channel", "kernel size can't be greater",
              "output size is too small", "padding size should be less", "smaller than kernel")


class _ShapeOnlyStep:
    def autocast(self) -> ContextManager[Any]:
        return contextlib.nullcontext()

    def backward_step(self, loss, optimizer, params=None) -> None:
        pass


def _size_problem(model: "ColorModel", size: int) -> str | None:
    import warnings

    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            # What create(name, **options) builds, from the class itself: the registry imports this module.
            probe = type(model)(**model.options)
    except Exception:
        return None
    batch = {k: torch.zeros(2, c, size, size, device="meta") for k, c in (("gray", 1), ("L", 1), ("ab", 2), ("rgb", 3))}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probe.train().train_step(batch, _ShapeOnlyStep())
    except Exception as e:
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return text if any(sign in text.lower() for sign in _TOO_SMALL) else None
    return None


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
    of it) and ``input_norm`` (one of ``INPUT_NORMS``), and implement ``colorize``, ``optimizers``
    and ``train_step``. Their constructor arguments (plain JSON-able values) are captured into
    ``self.options`` automatically, defaults included, as diffusers' ``register_to_config`` does: a
    checkpoint rebuilds the model from them, and no option can be left out by hand.
    ``self.meta`` holds the facts a checkpoint carried (``{}`` for a model built in memory).
    """

    name: ClassVar[str] = "base"
    stride: int = 1
    input_norm: str = "lab"

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _capturing_options(cls.__init__)

    def __init__(self, **_options: Any):
        # ``_options``: older subclasses passed their options up by hand; they are captured anyway.
        super().__init__()
        self.options: dict[str, Any] = {}
        self.meta: dict[str, Any] = {}

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

    def prepare_input(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pages ``[B, 1|3, H, W]`` in [0, 1] -> the normalized input ``colorize`` reads."""
        return prepare_input(pixels, self.input_norm)

    def model_input(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The normalized input this model reads from a training batch (from its gray page)."""
        return self.prepare_input(batch["gray"])

    def size_problem(self, size: int) -> str | None:
        """Why ``size`` x ``size`` training crops are too small for this model, in one line, or None.

        A training step (discriminators included) is traced on the ``meta`` device: shapes only, nothing
        allocated or computed, so a full preset's InstanceNorm at 1x1 or a kernel wider than its input is
        found before any data loads. A model that cannot be traced this way is not judged (None).
        """
        problem = _size_problem(self, size)
        if problem is None:
            return None
        fits = next((s for s in (64, 128, 256, 512, 1024) if s > size and s % self.stride == 0
                     and _size_problem(self, s) is None), None)
        hint = f"; use --size {fits} or more" if fits else ""
        return f"--size {size} is too small for {self.name} with these options ({problem}){hint}"


def _capturing_options(init):
    """Wrap a model's ``__init__`` so the outermost call records every argument, defaults included."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        outermost = "_capturing" not in self.__dict__
        if outermost:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            options: dict[str, Any] = {}
            for key, value in list(bound.arguments.items())[1:]:
                kind = signature.parameters[key].kind
                if kind is inspect.Parameter.VAR_KEYWORD:
                    options.update(value)
                elif kind is not inspect.Parameter.VAR_POSITIONAL:
                    options[key] = value
            self.__dict__["_capturing"] = True
        try:
            init(self, *args, **kwargs)
        finally:
            if outermost:
                del self.__dict__["_capturing"]
        if outermost:
            self.options = options

    return __init__


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
