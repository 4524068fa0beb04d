"""Checks on an ONNX file before onnxruntime opens it: it parses, and its external data stays beside it.

An ONNX model may keep its weights in other files named by relative paths inside the protobuf; a
hostile file could name ``../../home/you/.ssh/id_rsa`` or ``/etc/shadow`` and have onnxruntime read
it. We refuse any external-data location that is absolute, climbs with ``..``, or resolves (links
followed) outside the model's own folder, before any runtime touches it.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from models.errors import first_line

from ..errors import ModelError


def check_onnx_file(path: str | os.PathLike) -> None:
    """Raise ``ModelError`` (one line naming ``path``) unless it is a parseable ONNX model whose external
    data files, if any, lie inside its own folder."""
    import onnx
    from onnx.external_data_helper import _get_all_tensors

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such ONNX file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends on a corrupt or truncated file
        raise ModelError(f"{path}: not a loadable ONNX model ({type(e).__name__}: {first_line(e)})") from None
    if not proto.HasField("graph"):
        raise ModelError(f"{path}: not a loadable ONNX model (no graph)")
    folder = path.resolve().parent
    for tensor in _get_all_tensors(proto):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        if not _inside(folder, location):
            raise ModelError(f"{path}: refused: tensor {tensor.name!r} reads external data from {location!r}, "
                             "outside the model's folder")


def _inside(folder: Path, location: str) -> bool:
    if not location or "\x00" in location:
        return False
    for flavour in (PurePosixPath, PureWindowsPath):
        pure = flavour(location)
        if pure.is_absolute() or pure.drive or pure.root or ".." in pure.parts:
            return False
    return (folder / location).resolve().is_relative_to(folder)
