"""Checks on an ONNX file before onnxruntime opens it: it parses, and its external data stays beside it.

An ONNX model may keep its weights in other files named by relative paths inside the protobuf; a
hostile file could name ``../../home/you/.ssh/id_rsa`` or ``/etc/shadow`` and have onnxruntime read
it. We refuse any external-data location that is absolute, climbs with ``..``, or resolves (links
followed) outside the model's own folder, before any runtime touches it.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from models.toolbox.errors import first_line

from ..errors import ModelError


def check_onnx_file(path: str | os.PathLike) -> None:
    """Raise ``ModelError`` (one line naming ``path``) unless it is a parseable ONNX model whose external
    data files, if any, lie inside its own folder.

    A file without the bytes ``location`` (the key that names an external data file) names no
    external data: its top-level protobuf fields are walked instead of parsed by onnx (a truncated
    or foreign file, or one without a graph, is refused the same), which saves importing onnx
    (1.5 s of colorize's start-up).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such ONNX file")
    data = path.read_bytes()
    if b"location" not in data:
        problem = _top_level_problem(data)
        if problem:
            raise ModelError(f"{path}: not a loadable ONNX model ({problem})")
        return
    import onnx
    from onnx.external_data_helper import _get_all_tensors

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


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def _top_level_problem(data: bytes) -> str | None:
    """Why ``data`` is not a ModelProto's wire format (every top-level field whole, a graph among them), or None."""
    i, has_graph = 0, False
    try:
        while i < len(data):
            key, i = _varint(data, i)
            field, wire = key >> 3, key & 7
            if field == 0:
                return "field number 0"
            if wire == 0:
                _, i = _varint(data, i)
            elif wire == 1:
                i += 8
            elif wire == 5:
                i += 4
            elif wire == 2:
                length, i = _varint(data, i)
                i += length
                has_graph |= field == 7  # ModelProto.graph
            else:
                return f"wire type {wire} at the top level"
            if i > len(data):
                return "truncated"
    except ValueError as e:
        return str(e)
    return None if has_graph else "no graph"


def _inside(folder: Path, location: str) -> bool:
    if not location or "\x00" in location:
        return False
    for flavour in (PurePosixPath, PureWindowsPath):
        pure = flavour(location)
        if pure.is_absolute() or pure.drive or pure.root or ".." in pure.parts:
            return False
    return (folder / location).resolve().is_relative_to(folder)
