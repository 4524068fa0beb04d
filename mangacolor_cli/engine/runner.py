"""Running a model on pages: the model file (a path, a packaged name or the default), loading it on a
backend (torch or onnxruntime) and a device, the batch and working shape, and ``predict`` (ab and the
model's confidence at the working size; numpy where the ONNX model runs without torch). ``Colorizer``
(``engine.colorizer``) is a ``ModelRunner`` that also paints the page.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np
from PIL import Image

from models.cie import AB_SCALE, normalize_gray
from models.paint.page import page_tensor
from models.toolbox.device import DeviceError, resolve_device
from models.toolbox.errors import first_line
from models.toolbox.images import DecodedPage

from ..errors import ModelError, UsageError
from . import backends
from .pagework import PageBatcher, PageLike, _LazyModule, _pad_np, _pad_to, _scaled_size, as_page, loaded_torch

if TYPE_CHECKING:
    import models
    import torch


if not TYPE_CHECKING:
    torch = _LazyModule("torch")
    models = _LazyModule("models")
F = _LazyModule("torch.nn.functional")
color = _LazyModule("models.color")


def prepare_input(pixels: torch.Tensor, input_norm: str) -> torch.Tensor:
    from models.base import prepare_input as prepare
    return prepare(pixels, input_norm)


def inference_mode(fn: Callable) -> Callable:
    # torch.inference_mode() where torch is loaded; the numpy (ONNX) path has no autograd to turn off.
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        loaded = loaded_torch()
        if loaded is None:
            return fn(*args, **kwargs)
        with loaded.inference_mode():
            return fn(*args, **kwargs)
    return wrapper


DEFAULT_SIZE = 768
# The automatic batch on a GPU (not measured: no GPU here): at most this many pages a call, and at most
# this many working-size pixels (16 pages of 768x544).
AUTO_GPU_BATCH = 16
AUTO_GPU_BATCH_PIXELS = 16 * 768 * 544
# The largest --size: the models learn at 256-768, and memory grows with the working pixels (a 600x800 page:
# 2 GB at 2048, 4 GB and up to a minute at 3000) with no detail gained; the output keeps the page's own size.
MAX_WORKING_SIZE = 2048
# The largest --batch-size: the pipeline holds two batches of pages decoded ahead, so memory grows with it.
MAX_BATCH_SIZE = 64
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_MODEL = WEIGHTS_DIR / "default.onnx"


def resolve_model_path(name_or_path: str | os.PathLike | None) -> Path:
    """A model argument -> an existing ``.pt``/``.onnx`` file: a path, a name in the package's weights, or the default."""
    if name_or_path is None or str(name_or_path) in ("", "default"):
        if DEFAULT_MODEL.is_file():
            return DEFAULT_MODEL
        raise ModelError(f"{DEFAULT_MODEL}: no default model is installed yet; pass --model PATH "
                         "(a .pt checkpoint or an .onnx file)")
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    for ext in (".onnx", ".pt"):
        packaged = WEIGHTS_DIR / f"{name_or_path}{ext}"
        if packaged.is_file():
            return packaged
    raise ModelError(f"{path}: no such model file (and no packaged model of that name in {WEIGHTS_DIR})")


def check_model(model: str | os.PathLike | None, backend: str = "auto") -> Path:
    """``resolve_model_path``, and an ``.onnx`` file refused with ``--backend torch``; cheap, before any model loads."""
    path = resolve_model_path(model)
    if backend == "torch" and path.suffix.lower() == ".onnx":
        raise UsageError(f"{path}: an .onnx model runs only with --backend onnx (or auto)")
    return path


class ModelRunner:
    """A loaded model plus how to run it on pages: ``predict`` gives each page's ab (and confidence) at the
    working size. ``model``: a ``.pt`` checkpoint, an ``.onnx`` file, a packaged model name, a ``ColorModel``,
    or None for the packaged default; ``device``, ``backend``, ``size``, ``batch_size``, ``half``: see
    ``Colorizer``, which checks them (``check_options``) before a ModelRunner loads anything.
    """

    def __init__(self, model: str | os.PathLike | models.ColorModel | None = None, *, device: str = "auto",
                 backend: str = "auto", size: int | None = None, batch_size: int | None = None,
                 half: bool | None = None):
        self.auto_batch = batch_size is None
        self.batch_size = batch_size or 1  # resolved below once the device is known
        self.session: Any = None
        self.net: models.ColorModel | None = None
        self.provider = ""
        self.precision = "float32"
        meta_size: int | None = None

        if model is not None and not isinstance(model, (str, os.PathLike)) and isinstance(model, models.ColorModel):
            self.model_path, net = None, model
        else:
            self.model_path = check_model(model, backend)
            net = None
        is_onnx = self.model_path is not None and self.model_path.suffix.lower() == ".onnx"
        self.backend = "onnx" if (backend == "onnx" or is_onnx) else "torch"
        self.backend_reason = "asked for" if backend != "auto" else ("an .onnx model" if is_onnx else "")

        if net is None and not is_onnx:
            try:
                net = models.load_model(self.model_path)
            except models.CheckpointError as e:
                raise ModelError(str(e)) from None
            meta_size = net.meta.get("working_size")
        if net is not None:
            net.eval()
            self.model_name, self.stride, self.input_norm = net.name, int(net.stride), net.input_norm
        if backend == "auto" and net is not None:
            working_size = int(size or meta_size or DEFAULT_SIZE)
            self.backend, self.backend_reason = backends.choose_backend(net, self._torch_device(device).type, working_size)
            if self.backend == "onnx":
                try:
                    session = backends.session_from_model(net, working_size, device)
                except ModelError as e:
                    self.backend, self.backend_reason = "torch", f"auto: torch, as the onnx export failed: {e}"

        if self.backend == "torch":
            self.device = self._torch_device(device)
            self.half = self.device.type == "cuda" if half is None else bool(half and self.device.type == "cuda")
            self.net = net.to(self.device)
            if self.half:
                self.net = self.net.half()
            if self.device.type == "cuda":
                # Tensor cores read NHWC; cudnn.benchmark pays once per working shape (unmeasured: no GPU here).
                self.net = self.net.to(memory_format=torch.channels_last)
                torch.backends.cudnn.benchmark = True
            self.provider = f"torch {self.device}{' float16' if self.half else ''}"
            self.precision = "float16" if self.half else "float32"
        else:
            self.device = None  # torch.device("cpu") on first use: the numpy path never asks
            self.half = False
            onnx_device = "cuda" if str(device).startswith("cuda") else device
            if is_onnx:
                self.session, self.provider = backends.load_session(self.model_path, onnx_device)
            elif backend == "auto":
                self.session, self.provider = session
            else:
                self.session, self.provider = backends.session_from_model(net, size or meta_size or DEFAULT_SIZE, onnx_device)
            meta = backends.meta_of_session(self.session)
            self.model_name = meta.get("model", getattr(self, "model_name", "onnx"))
            self.stride = int(meta.get("stride", getattr(self, "stride", 32)))
            self.input_norm = meta.get("input_norm", getattr(self, "input_norm", "lab"))
            if meta.get("working_size", "").isdigit():
                meta_size = int(meta["working_size"])
            if self.provider == "CUDAExecutionProvider":
                # ONNX post-processing (upsampling, Lab -> sRGB) runs in torch; on a CPU torch build that is the CPU.
                self.device = resolve_device("auto")
            self.precision = meta.get("precision", "float32")  # int8: written behind a quality gate (delivery.quantize)
            self._onnx_input = self.session.get_inputs()[0]
            self._onnx_dtype = np.float16 if "float16" in self._onnx_input.type else np.float32
        self.size = int(size or meta_size or DEFAULT_SIZE)
        # Threads a torch model call on the CPU spreads a batch over, one page each.
        self.cpu_workers = torch.get_num_threads() if self.backend == "torch" else (os.cpu_count() or 1)
        if self.auto_batch:
            self.batch_size = self._auto_batch_size()
        # Pages per model call that fit the device; halved on an out-of-memory error and kept there.
        self.fitting_batch = self.batch_size

    def _auto_batch_size(self) -> int:
        """Pages per model call when none is asked for (docs/PERFORMANCE.md, "Batch size").

        On the CPU one page a call for onnxruntime (measured: a batch of 4 was 10-20 % slower end to
        end, since the pipeline composes page i beside the model's page i + 1, and the first page waits
        for no others); the torch model spreads a batch one page per thread, so it takes one per
        thread. On a GPU up to ``AUTO_GPU_BATCH`` pages, fewer for large working shapes
        (:meth:`pages_per_call`).
        """
        if self.on_gpu:
            return AUTO_GPU_BATCH
        return max(1, self.cpu_workers) if self.backend == "torch" else 1

    @property
    def on_gpu(self) -> bool:
        return self.provider == "CUDAExecutionProvider" or (self.backend == "torch" and self.device.type == "cuda")

    def pages_per_call(self, shape: tuple[int, int]) -> int:
        """Pages of working shape ``shape`` per model call: ``batch_size``, or with the automatic batch on a
        GPU as many as fit ``AUTO_GPU_BATCH_PIXELS`` (a double-page spread takes half the pages)."""
        if not (self.auto_batch and self.on_gpu):
            return self.batch_size
        return max(1, min(self.batch_size, AUTO_GPU_BATCH_PIXELS // max(1, shape[0] * shape[1])))

    @property
    def device(self) -> torch.device:
        if self._device is None:
            self._device = torch.device("cpu")
        return self._device

    @device.setter
    def device(self, value: torch.device | None) -> None:
        self._device = value

    # ------------------------------------------------------------------ set-up helpers
    @staticmethod
    def _torch_device(device: str) -> torch.device:
        try:
            return resolve_device(device)
        except DeviceError as e:
            raise ModelError(str(e)) from None

    def describe(self) -> str:
        """One line: which model, backend (and why), device/provider and working size run."""
        source = self.model_path or "in-memory model"
        why = f" ({self.backend_reason})" if self.backend_reason else ""
        precision = "" if self.precision == "float32" or self.precision in self.provider else f" {self.precision}"
        return (f"model {self.model_name}{precision} ({source}), backend {self.backend}{why}, {self.provider}, "
                f"working size {self.size}, batch {self.batch_size}{' (auto)' if self.auto_batch else ''}")

    def batcher(self, run: Callable[[list[DecodedPage]], Sequence[Any]] | None = None) -> "PageBatcher":
        """A ``PageBatcher`` for this model (``run``: what each batch goes through, default ``predict_ab``)."""
        return PageBatcher(self.pages_per_call, self.working_shape, run or self.predict_ab)

    def working_shape(self, page: PageLike) -> tuple[int, int]:
        """The padded ``(h, w)`` the model sees for this page: long side = size, multiples of the stride."""
        h, w = _scaled_size(as_page(page), self.size)
        s = self.stride
        return -(-h // s) * s, -(-w // s) * s

    def predict_ab(self, pages: Sequence[PageLike]) -> list[torch.Tensor]:
        """Run the model on pages of one working shape (one batch); returns each page's ab ``[1,2,h,w]`` in Lab units."""
        return [ab for ab, _ in self.predict(pages)]

    @inference_mode
    def predict(self, pages: Sequence[PageLike], *, as_numpy: bool = False
                ) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """``predict_ab`` with each page's confidence ``[1,1,h,w]`` in [0, 1] beside its ab, or None
        where the model gives none (a model gives one through a ``predict(x) -> (ab, confidence)``
        method, or as a second ONNX output).

        ``as_numpy``: numpy arrays may come back (the ONNX model on 8-bit gray pages on the CPU runs
        without torch: resize, input and output in numpy; ``compose`` takes either).
        """
        pages = [as_page(p) for p in pages]
        shapes = {self.working_shape(p) for p in pages}
        if len(shapes) != 1:
            raise ValueError(f"predict wants pages of one working shape, got {sorted(shapes)}")
        ph, pw = shapes.pop()
        if self._numpy_path(pages):
            predicted = self._predict_numpy(pages, ph, pw)
            if as_numpy:
                return predicted
            return [(torch.from_numpy(ab), None if c is None else torch.from_numpy(c)) for ab, c in predicted]
        inputs, sizes = [], []
        # One thread per page on the CPU: OpenMP teams stall when decode/compose threads share the cores.
        with _cpu_threads(1 if self.device.type == "cpu" else None):
            for page in pages:
                h, w = _scaled_size(page, self.size)
                x = page_tensor(page.pixels, self.device)
                x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
                x = prepare_input(x, self.input_norm)
                inputs.append(_pad_to(x, ph, pw))
                sizes.append((h, w))
        batch = torch.cat(inputs)
        step = self.fitting_batch
        out = torch.cat([self._run_model(batch[i:i + step]) for i in range(0, len(batch), step)])
        ab = color.denormalize_ab(out[:, :2])
        conf = out[:, 2:3].clamp(0.0, 1.0) if out.shape[1] > 2 else None
        return [(ab[i:i + 1, :, :h, :w], None if conf is None else conf[i:i + 1, :, :h, :w])
                for i, (h, w) in enumerate(sizes)]

    def _numpy_path(self, pages: Sequence[DecodedPage]) -> bool:
        return (self.session is not None and self._device is None
                and all(p.is_gray and p.pixels.dtype == np.uint8 for p in pages))

    def _predict_numpy(self, pages: Sequence[DecodedPage], ph: int, pw: int) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """``predict`` for 8-bit gray pages and an onnxruntime session on the CPU, in numpy (no torch).

        The same input as the torch path: PIL's bilinear resize with its antialiasing (what torch's
        ``antialias=True`` reproduces), ``prepare_input`` of a gray page, the same padding.
        """
        batch = np.stack([self.model_input(page, ph, pw) for page in pages])[:, None]
        sizes = [_scaled_size(page, self.size) for page in pages]
        step = self.fitting_batch
        out = np.concatenate([self._run_model(batch[i:i + step]) for i in range(0, len(batch), step)])
        ab = out[:, :2] * np.float32(AB_SCALE)
        conf = np.clip(out[:, 2:3], 0.0, 1.0) if out.shape[1] > 2 else None
        return [(ab[i:i + 1, :, :h, :w], None if conf is None else conf[i:i + 1, :, :h, :w])
                for i, (h, w) in enumerate(sizes)]

    def model_input(self, page: DecodedPage, ph: int | None = None, pw: int | None = None) -> np.ndarray:
        """An 8-bit gray page as the model's ``[ph, pw]`` float32 input (resized to the working size,
        normalized, padded; default: its own working shape), as ``predict`` feeds it to an ONNX model."""
        if ph is None or pw is None:
            ph, pw = self.working_shape(page)
        h, w = _scaled_size(page, self.size)
        x = np.asarray(Image.fromarray(page.pixels.astype(np.float32) / np.float32(255.0), mode="F")
                       .resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)
        return _pad_np(normalize_gray(np.clip(x, 0.0, 1.0), self.input_norm), ph, pw)

    def _onnx_call(self, batch: np.ndarray) -> np.ndarray:
        outs = self.session.run(None, {self._onnx_input.name: batch.astype(self._onnx_dtype, copy=False)})
        out = np.asarray(outs[0], dtype=np.float32)
        if len(outs) > 1 and np.ndim(outs[1]) == 4 and np.shape(outs[1])[1] == 1:
            out = np.concatenate([out, np.asarray(outs[1], dtype=np.float32)], axis=1)
        return out

    def _net_call(self, x: torch.Tensor) -> torch.Tensor:
        """The torch model on a batch -> ab/110 ``[B,2,h,w]``, with its confidence as a third channel if it gives one."""
        predict = getattr(self.net, "predict", None)
        if callable(predict):
            ab, confidence = predict(x)
            return torch.cat([ab.float(), confidence.float()], dim=1)
        return self.net.colorize(x).float()

    def _model_call(self, batch: torch.Tensor) -> torch.Tensor:
        """One call of the model on a normalized batch -> ab/110 (and confidence), float32 on ``self.device``."""
        if isinstance(batch, np.ndarray):
            return self._onnx_call(batch)
        if self.backend == "torch" and self.device.type == "cpu":
            # torch on the CPU: one page per core, each on one thread (measured 1.8x faster than one OpenMP team).
            if len(batch) == 1 or self.cpu_workers == 1:
                return self._torch_call_one_thread(batch)
            chunks = batch.tensor_split(min(self.cpu_workers, len(batch)))
            with cf.ThreadPoolExecutor(len(chunks), thread_name_prefix="model") as pool:
                return torch.cat(list(pool.map(self._torch_call_one_thread, chunks)))
        if self.backend == "torch":
            x = batch.to(torch.float16 if self.half else torch.float32)
            if self.device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            return self._net_call(x)
        return torch.from_numpy(self._onnx_call(batch.cpu().numpy())).to(self.device)

    @inference_mode
    def _torch_call_one_thread(self, batch: torch.Tensor) -> torch.Tensor:
        with _cpu_threads(1):
            return self._net_call(batch)

    def _run_model(self, batch: torch.Tensor) -> torch.Tensor:
        """``_model_call``, splitting the batch in halves on an out-of-memory error; every page comes back."""
        try:
            return self._model_call(batch)
        except Exception as e:  # torch.OutOfMemoryError, or onnxruntime's untyped allocation failure
            if not backends.is_out_of_memory(e):
                raise
            if len(batch) == 1:
                raise ModelError(f"out of memory on one page at working size {self.size} ({first_line(e)}); "
                                 "try a smaller --size or --device cpu") from None
        # Retried outside the except block, so the failed call's tensors are freed first.
        if loaded_torch() is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
        half = (len(batch) + 1) // 2
        self.fitting_batch = min(self.fitting_batch, half)
        parts = [self._run_model(batch[:half]), self._run_model(batch[half:])]
        return np.concatenate(parts) if isinstance(batch, np.ndarray) else torch.cat(parts)


@contextlib.contextmanager
def _cpu_threads(threads: int | None) -> Iterator[None]:
    # torch's thread count is per calling thread under OpenMP, so a worker can narrow its own and restore it.
    if threads is None or threads == torch.get_num_threads():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
