"""ONNX export of a ColorModel and onnxruntime sessions that pick the CUDA provider only where a GPU is.

The exported graph is the model's ``inference_module()``: input ``"input"`` ``[B,1,H,W]`` (normalized
per the model's ``input_norm``), output ``"ab"`` ``[B,2,H,W]`` (ab/110), batch/height/width dynamic.
What a loader needs to use the file alone lives in its ``metadata_props`` under ``mangacolor.*``.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.toolbox.errors import first_line
from models.toolbox.files import atomic_path
from models.toolbox.device import is_out_of_memory  # noqa: F401 (backends.is_out_of_memory: the one check)

from ..errors import ModelError
from ..version import __version__
from .onnx_check import check_onnx_file
from .pagework import loaded_torch

if TYPE_CHECKING:
    from models import ColorModel
# torch is imported where a function needs it: the ONNX path of colorize (load_session, meta) runs without it.

INPUT_NAME = "input"
OUTPUT_NAME = "ab"
META_PREFIX = "mangacolor."
# Idle onnxruntime threads busy-wait by default; on a few cores that steals the CPU the decode/compose threads need.
DEFAULT_SPINNING = False


def export_onnx(model: ColorModel, path: str | os.PathLike, *, working_size: int, opset: int = 17,
                half: bool = False, meta: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s inference graph to ``path`` (atomically) with its metadata; returns the path.

    ``half`` exports float16 weights and I/O (for CUDA; onnxruntime's CPU provider runs float32 best).
    ``meta`` items are added to the metadata as ``mangacolor.<key>`` (non-strings as JSON).
    """
    import onnx
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    module = model.inference_module().eval()
    dtype = torch.float16 if half else torch.float32
    side = max(model.stride, 64) // model.stride * model.stride
    dummy = torch.zeros(1, 1, side, side, dtype=dtype)
    try:
        with atomic_path(path) as tmp:
            if half:
                # A half copy: casting the caller's model in place and back would round its weights.
                module = copy.deepcopy(module).half()
            with torch.no_grad(), warnings.catch_warnings():
                # The TorchScript exporter is deprecated but is the one that works on CPU for every model here.
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    module, (dummy,), str(tmp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                    dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                                  OUTPUT_NAME: {0: "batch", 2: "height", 3: "width"}},
                    opset_version=opset, dynamo=False)
            proto = onnx.load(str(tmp))
            props = {
                "model": model.name,
                "options": json.dumps(model.options, sort_keys=True),
                "input_norm": model.input_norm,
                "stride": str(model.stride),
                "working_size": str(int(working_size)),
                "normalization": "input L/50-1 (or gray in [0,1] when input_norm is gray01), output ab/110",
                "precision": "float16" if half else "float32",
                "version": __version__,
            }
            for key, value in (meta or {}).items():
                props[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            del proto.metadata_props[:]
            for key, value in props.items():
                entry = proto.metadata_props.add()
                entry.key, entry.value = META_PREFIX + key, value
            onnx.save(proto, str(tmp))
    finally:
        model.train(was_training)
    return path


def read_onnx_meta(path: str | os.PathLike) -> dict[str, str]:
    """The ``mangacolor.*`` metadata of an exported file, keys without the prefix (values as stored)."""
    import onnxruntime as ort

    path = Path(path)
    check_onnx_file(path)
    try:
        # Reading metadata through a CPU session avoids loading the whole protobuf twice.
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own untyped errors for bad files
        raise ModelError(f"{path}: not a loadable ONNX model ({first_line(e)})") from None
    return meta_of_session(session)


def meta_of_session(session: Any) -> dict[str, str]:
    """The ``mangacolor.*`` metadata of an open onnxruntime session."""
    custom = session.get_modelmeta().custom_metadata_map
    return {k[len(META_PREFIX):]: v for k, v in custom.items() if k.startswith(META_PREFIX)}


def cuda_present() -> bool:
    """True when an NVIDIA GPU is really there (driver loaded), whatever build of torch is installed."""
    torch = loaded_torch()  # asked only when already loaded: the ONNX path does not import it
    if torch is not None and torch.cuda.is_available():
        return True
    return Path("/proc/driver/nvidia/version").exists() and Path("/dev/nvidiactl").exists()


# Graph optimization levels by name (``load_session(optimization=...)``).
OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")


def load_session(path: str | os.PathLike, device: str = "auto", *, threads: int | None = None,
                 spinning: bool | None = None, optimization: str = "all") -> tuple[Any, str]:
    """Open an onnxruntime session for ``path`` on ``device`` (auto|cpu|cuda); returns it and its provider.

    The CUDA provider is requested only where a GPU is present, because onnxruntime-gpu logs errors
    when asked for it on a machine without one. ``threads``: intra-op threads (None: onnxruntime's
    default, one per core); ``spinning``: whether idle intra-op threads busy-wait (None: the
    measured default, see docs/PERFORMANCE.md); ``optimization``: one of ``OPTIMIZATION_LEVELS``.
    """
    import onnxruntime as ort

    path = Path(path)
    check_onnx_file(path)
    want_cuda = device == "cuda" or (device == "auto" and cuda_present())
    if device == "cuda" and not cuda_present():
        raise ModelError(f"{path}: --device cuda asked for, but no NVIDIA GPU is present")
    providers = ["CPUExecutionProvider"]
    if want_cuda and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    if threads:
        options.intra_op_num_threads = int(threads)
    if spinning is None:
        spinning = DEFAULT_SPINNING
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as e:  # onnxruntime raises its own untyped errors for bad files
        raise ModelError(f"{path}: not a loadable ONNX model ({first_line(e)})") from None
    provider = session.get_providers()[0]
    if device == "cuda" and provider != "CUDAExecutionProvider":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ModelError(f"{path}: --device cuda asked for, but the installed onnxruntime is its CPU build "
                             f"(README, \"Install\": swap in onnxruntime-gpu)")
        raise ModelError(f"{path}: --device cuda asked for, but onnxruntime's CUDA provider did not load")
    return session, provider


# ---------------------------------------------------------------------- backend choice
# Auto backend: export to onnxruntime when a page costs at least this many multiply-adds (the export takes ~1 s).
ONNX_AUTO_MIN_MACS = 1e9


def estimate_macs(net: ColorModel, height: int, width: int) -> float:
    """Multiply-adds of the model's convolutions and linear layers for one ``height x width`` input, estimated.

    Counted on a small input and scaled by area: exact for fully convolutional models.
    """
    import torch

    side = max(net.stride, 64 // net.stride * net.stride)
    total = 0.0

    def count(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, torch.nn.ConvTranspose2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += inputs[0].numel() * module.out_channels // module.groups * k
        elif isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += output.numel() * module.in_channels // module.groups * k
        elif isinstance(module, torch.nn.Linear):
            total += output.numel() * module.in_features

    hooks = [m.register_forward_hook(count) for m in net.modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear))]
    was_training = net.training
    try:
        net.eval()
        param = next(net.parameters(), None)
        x = torch.zeros(1, 1, side, side, device=param.device if param is not None else "cpu")
        with torch.inference_mode():
            net.colorize(x.to(param.dtype) if param is not None else x)
    finally:
        for hook in hooks:
            hook.remove()
        net.train(was_training)
    return total * (height * width) / (side * side)


def choose_backend(net: ColorModel, device: str, working_size: int) -> tuple[str, str]:
    """``--backend auto`` for a torch model: (backend, why). See docs/PERFORMANCE.md for the measurements."""
    if device == "cuda":
        return "torch", "auto: torch float16 on the GPU"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "torch", "auto: onnxruntime is not installed"
    macs = estimate_macs(net, working_size, working_size * 3 // 4)
    if macs < ONNX_AUTO_MIN_MACS:
        return "torch", f"auto: {macs / 1e9:.2f} GMAC a page is too little to pay for an onnx export"
    return "onnx", f"auto: onnxruntime is faster on the CPU ({macs / 1e9:.1f} GMAC a page)"


def _load_onnx(path: Path, device: str):
    from .backends import load_session
    return load_session(path, device)


def session_from_model(net: ColorModel, working_size: int, device: str):
    """Export a torch model to a temporary ONNX file and open it (``--backend onnx`` with a checkpoint)."""
    from .backends import export_onnx, load_session
    tmp = Path(tempfile.mkdtemp(prefix="mangacolor-onnx-"))
    try:
        path = export_onnx(net, tmp / f"{net.name}.onnx", working_size=working_size)
        return load_session(path, device)
    except ModelError:
        raise
    except Exception as e:  # the exporter raises many kinds; the user needs one line
        raise ModelError(f"cannot export model {net.name!r} to ONNX for --backend onnx ({first_line(e)})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
