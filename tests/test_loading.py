"""Safe loading: checkpoints only through weights_only, pickled objects refused, corrupt checkpoints and
ONNX files reported in one line through `colorize --model` and `export`, ONNX external data kept
inside the model's folder (checked before onnxruntime opens the file), checkpoint writes atomic."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import models
from mangacolor_cli.commands import app
from mangacolor_cli.engine.backends import load_session
from mangacolor_cli.engine.onnx_check import check_onnx_file
from mangacolor_cli.errors import ModelError
from models.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from tests.conftest import draw_page

MARKER = Path(os.environ.get("TMPDIR", "/tmp")) / "mangacolor-pickle-ran"


class RunsCode:
    """Unpickling this runs a shell command: the attack weights_only exists to stop."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


class CustomOptions:
    """A harmless custom class: still not a plain value, still refused."""


def cli(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output and isinstance(result.exception, (SystemExit, type(None))), result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    return result, errors


@pytest.fixture
def page(tmp_path):
    path = tmp_path / "page.png"
    draw_page().save(path)
    return path


def assert_refused_everywhere(path: Path, page: Path, tmp_path: Path, *words: str) -> None:
    """``colorize --model path`` and ``export path`` both fail with one line naming the file and exit 2 (the
    command could not start); nothing written."""
    before = set(tmp_path.rglob("*"))
    result, errors = cli("colorize", str(page), "--model", str(path), "--size", "32")
    assert result.exit_code == 2 and len(errors) == 1 and str(path) in errors[0], result.output
    assert all(w in errors[0] for w in words), errors[0]
    if path.suffix != ".onnx":
        result, errors = cli("export", str(path), "-o", str(tmp_path / "x.onnx"))
        assert result.exit_code == 2 and len(errors) == 1 and str(path) in errors[0], result.output
    assert set(tmp_path.rglob("*")) == before


# ---------------------------------------------------------------------- checkpoints
def test_checkpoints_are_read_with_weights_only(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "m.pt", models.create("unet", preset="tiny"))
    real, seen = torch.load, []
    monkeypatch.setattr(torch, "load", lambda *a, **k: seen.append(k.get("weights_only")) or real(*a, **k))
    load_model(path)
    assert seen and all(flag is True for flag in seen)


@pytest.mark.parametrize("payload", [RunsCode(), CustomOptions()], ids=["code", "custom-class"])
def test_checkpoint_with_a_pickled_object_is_refused_and_runs_nothing(tmp_path, page, payload):
    MARKER.unlink(missing_ok=True)
    model = models.create("unet", preset="tiny")
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "model": "unet", "options": dict(model.options), "state_dict": model.state_dict(),
                "meta": {"note": payload}}, path)
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    assert str(err.value).startswith(f"{path}: refused to load") and "\n" not in str(err.value)
    assert "weights_only` set to `False`" not in str(err.value)  # never advise turning the check off
    assert_refused_everywhere(path, page, tmp_path, "refused")
    assert not MARKER.exists()


def corrupt_checkpoints(good: bytes) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    return {"truncated": good[: len(good) // 2], "empty": b"", "text": b"not a checkpoint\n",
            "random": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), "zip-header-only": good[:64]}


def test_corrupt_or_truncated_checkpoints_give_one_line_errors(tmp_path, page, tiny_checkpoint):
    good = Path(tiny_checkpoint).read_bytes()
    for name, data in corrupt_checkpoints(good).items():
        path = tmp_path / f"{name}.pt"
        path.write_bytes(data)
        with pytest.raises(CheckpointError) as err:
            read_checkpoint(path)
        assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)
        assert_refused_everywhere(path, page, tmp_path)
        path.unlink()


@pytest.mark.parametrize("payload, words", [
    ({"model": "unet", "state_dict": {}, "format": "1"}, "format"),
    ({"model": "no-such-model", "state_dict": {}}, "no-such-model"),
    ({"model": "unet", "state_dict": {"w": [1, 2]}}, "not tensors"),
    ({"model": "unet", "state_dict": {}, "options": "tiny"}, "options"),
    ([1, 2, 3], "not a mangacolor checkpoint"),
], ids=["format", "unknown-model", "weights", "options", "list"])
def test_malformed_checkpoint_payloads_are_refused_in_one_line(tmp_path, payload, words):
    path = tmp_path / "odd.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=words) as err:
        load_model(path)
    assert "\n" not in str(err.value)


def test_checkpoint_write_is_atomic_when_saving_fails_midway(tmp_path, monkeypatch):
    model = models.create("unet", preset="tiny")
    path = save_checkpoint(tmp_path / "last.pt", model)
    before = path.read_bytes()

    def fails_after_some_bytes(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", fails_after_some_bytes)
    with pytest.raises(OSError):
        save_checkpoint(path, model)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["last.pt"]


# ---------------------------------------------------------------------- ONNX
def mul_model(folder: Path, name: str = "m.onnx", location: str = "w.bin") -> Path:
    """A one-node ONNX model (ab = input * w) whose weight lives in an external data file."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnx.external_data_helper import convert_model_to_external_data

    weight = numpy_helper.from_array(np.full((1, 1, 1, 1), 0.5, np.float32), "w")
    graph = helper.make_graph([helper.make_node("Mul", ["input", "w"], ["ab"])], "g",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("ab", TensorProto.FLOAT, [1, 1, 4, 4])], [weight])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    convert_model_to_external_data(proto, all_tensors_to_one_file=True, location="w.bin", size_threshold=0)
    onnx.save(proto, folder / name)
    if location != "w.bin":
        proto = onnx.load(folder / name, load_external_data=False)
        for entry in proto.graph.initializer[0].external_data:
            if entry.key == "location":
                entry.value = location
        onnx.save(proto, folder / name)
    return folder / name


def test_onnx_with_external_data_beside_it_loads(tmp_path):
    session, provider = load_session(mul_model(tmp_path / "model"), "cpu")
    (out,) = session.run(None, {"input": np.ones((1, 1, 4, 4), np.float32)})
    assert provider == "CPUExecutionProvider" and np.allclose(out, 0.5)


@pytest.mark.parametrize("where", ["parent", "absolute", "symlink"])
def test_onnx_external_data_outside_its_folder_is_refused_before_onnxruntime_opens_it(
        tmp_path, page, monkeypatch, where):
    import onnxruntime

    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.full(1, 0.5, np.float32).tobytes())
    folder = tmp_path / "model"
    if where == "symlink":
        path = mul_model(folder, location="linked.bin")
        (folder / "linked.bin").symlink_to(secret)
    else:
        path = mul_model(folder, location="../secret.bin" if where == "parent" else str(secret))

    def never(*args, **kwargs):
        raise AssertionError("onnxruntime opened a refused file")

    monkeypatch.setattr(onnxruntime, "InferenceSession", never)
    with pytest.raises(ModelError, match="outside the model's folder"):
        check_onnx_file(path)
    assert_refused_everywhere(path, page, tmp_path, "outside the model's folder")


def test_corrupt_or_truncated_onnx_gives_one_line_errors(tmp_path, page):
    good = mul_model(tmp_path / "model").read_bytes()
    for name, data in {"truncated": good[: len(good) // 2], "empty": b"", "text": b"hello, not onnx"}.items():
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(data)
        with pytest.raises(ModelError) as err:
            check_onnx_file(path)
        assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)
        assert_refused_everywhere(path, page, tmp_path)
        path.unlink()
