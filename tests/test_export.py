"""`mangacolor export`: every model's ONNX file reproduces PyTorch, carries its metadata, and colors
pages like the checkpoint it came from (docs/ARCHITECTURE.md, "Export")."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import models
from mangacolor_cli.commands import app
from mangacolor_cli.delivery import export as export_mod
from mangacolor_cli.engine.backends import read_onnx_meta
from mangacolor_cli.engine.colorizer import Colorizer
from mangacolor_cli.delivery.export import ExportCheckError, export_checkpoint, synthetic_page
from mangacolor_cli.errors import MangacolorError

WORKING_SIZE = 64


def _tiny_checkpoint(name: str, tmp_path, seed: int = 0):
    torch.manual_seed(seed)
    model = models.create(name, preset="tiny")
    # Non-trivial normalization statistics, so eval-mode BatchNorm is exercised, not an identity.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / f"{name}.pt"
    models.save_checkpoint(path, model, meta={"working_size": WORKING_SIZE})
    return path


@pytest.fixture(scope="module", params=models.available())
def exported(request, tmp_path_factory):
    """(name, checkpoint, onnx file, export result) for each registered model's tiny preset."""
    tmp_path = tmp_path_factory.mktemp(request.param)
    ckpt = _tiny_checkpoint(request.param, tmp_path)
    onnx_path = tmp_path / f"{request.param}.onnx"
    result = export_checkpoint(ckpt, onnx_path)
    return request.param, ckpt, onnx_path, result


def _odd_page(seed: int = 1) -> np.ndarray:
    # 61x45: neither side a multiple of any model's stride, so colorize must pad.
    return synthetic_page(61, 45, seed=seed)


def test_export_writes_the_file_and_reports_a_small_difference(exported):
    name, _, onnx_path, result = exported
    assert onnx_path.is_file()
    assert result.model == name
    assert result.working_size == WORKING_SIZE
    assert 0 <= result.max_abs_diff <= 1e-4


@pytest.mark.parametrize("working_size", [WORKING_SIZE, 50])
def test_onnx_matches_pytorch_at_two_sizes(exported, working_size):
    name, ckpt, onnx_path, _ = exported
    stride = models.load_model(ckpt).stride
    page = synthetic_page(80, 57, seed=3)
    torch_net = Colorizer(str(ckpt), backend="torch", device="cpu", size=working_size)
    onnx_net = Colorizer(str(onnx_path), device="cpu", size=working_size)
    if stride > 1 and working_size == 50:
        assert torch_net.working_shape(page) != (50, 36), "working size 50 should need padding"
    diff = (onnx_net.predict_ab([page])[0] - torch_net.predict_ab([page])[0]).abs().max().item() / 110
    assert diff <= 1e-4, f"{name} at working size {working_size}: {diff}"


def test_exported_file_carries_its_metadata(exported):
    name, ckpt, onnx_path, _ = exported
    meta = read_onnx_meta(onnx_path)
    model = models.load_model(ckpt)
    assert meta["model"] == name
    assert meta["working_size"] == str(WORKING_SIZE)
    assert meta["input_norm"] == model.input_norm
    assert meta["stride"] == str(model.stride)
    assert "ab/110" in meta["normalization"]
    assert meta["version"]
    assert meta["checkpoint"] == ckpt.name


def test_exported_file_colors_pages_like_its_checkpoint(exported):
    _, ckpt, onnx_path, _ = exported
    pages = [_odd_page(1), synthetic_page(70, 90, seed=2)]
    from_ckpt = Colorizer(str(ckpt), backend="torch", device="cpu").colorize(pages)
    from_onnx = Colorizer(str(onnx_path), device="cpu").colorize(pages)
    for a, b in zip(from_ckpt, from_onnx):
        assert a.shape == b.shape
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 2


def test_batch_height_and_width_are_dynamic(exported):
    import onnxruntime as ort

    _, _, onnx_path, _ = exported
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    stride = int(read_onnx_meta(onnx_path)["stride"])
    side = stride * -(-32 // stride)  # the smallest multiple of the stride >= 32
    for batch, h, w in [(1, side, 2 * side), (3, 2 * side, side)]:
        out = session.run(None, {"input": np.zeros((batch, 1, h, w), np.float32)})[0]
        # ab/110, and a confidence channel from models that give one
        assert out.shape in ((batch, 2, h, w), (batch, 3, h, w))


def test_failed_check_leaves_no_file_and_keeps_an_existing_one(tmp_path, monkeypatch):
    ckpt = _tiny_checkpoint("unet", tmp_path)
    out = tmp_path / "model.onnx"
    monkeypatch.setattr(export_mod, "compare_with_torch", lambda *a, **k: (0.5, (64, 64), "CPUExecutionProvider"))
    with pytest.raises(ExportCheckError, match="differs from PyTorch by 0.5"):
        export_checkpoint(ckpt, out)
    assert list(tmp_path.iterdir()) == [ckpt]
    out.write_bytes(b"older export")
    with pytest.raises(ExportCheckError):
        export_checkpoint(ckpt, out)
    assert out.read_bytes() == b"older export"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([ckpt.name, out.name])


def test_half_export_is_within_the_looser_tolerance(tmp_path):
    ckpt = _tiny_checkpoint("unet", tmp_path)
    result = export_checkpoint(ckpt, tmp_path / "half.onnx", half=True)
    assert read_onnx_meta(result.path)["precision"] == "float16"
    assert result.max_abs_diff <= export_mod.HALF_TOLERANCE
    # The checkpoint's model is untouched by the float16 export.
    assert export_checkpoint(ckpt, tmp_path / "full.onnx").max_abs_diff <= 1e-4


def test_cli_export_prints_the_difference_and_fails_cleanly(tmp_path):
    ckpt = _tiny_checkpoint("unet", tmp_path)
    runner = CliRunner()
    ok = runner.invoke(app, ["export", str(ckpt), "-o", str(tmp_path / "m.onnx"), "--size", "48"])
    assert ok.exit_code == 0, ok.output
    assert "max |onnx - torch|" in ok.output and "working size 48" in ok.output
    assert read_onnx_meta(tmp_path / "m.onnx")["working_size"] == "48"

    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    fail = runner.invoke(app, ["export", str(bad), "-o", str(tmp_path / "b.onnx")])
    assert fail.exit_code == 2  # a checkpoint that does not load: the command could not start
    assert "broken.pt" in fail.output and "Traceback" not in fail.output
    assert not (tmp_path / "b.onnx").exists()

    strict = runner.invoke(app, ["export", str(ckpt), "-o", str(tmp_path / "s.onnx"), "--tolerance", "-1"])
    assert strict.exit_code == 1 and "file not written" in strict.output
    assert not (tmp_path / "s.onnx").exists()


def test_unreadable_check_image_is_a_one_line_error(tmp_path):
    ckpt = _tiny_checkpoint("unet", tmp_path)
    junk = tmp_path / "page.png"
    junk.write_bytes(b"no png here")
    with pytest.raises(MangacolorError, match="page.png"):
        export_checkpoint(ckpt, tmp_path / "m.onnx", check_image=junk)
    assert not (tmp_path / "m.onnx").exists()


def test_colorize_cli_with_the_onnx_file_gives_the_checkpoints_pages(tmp_path):
    from mangacolor_cli import commands as cli

    ckpt = _tiny_checkpoint("unet", tmp_path)
    onnx_path = export_checkpoint(ckpt, tmp_path / "model.onnx").path
    pages = tmp_path / "pages"
    pages.mkdir()
    for i, (h, w) in enumerate([(61, 45), (48, 70)]):
        Image.fromarray(synthetic_page(h, w, seed=i)).save(pages / f"p{i}.png")
    runner = CliRunner()
    for model, out in [(ckpt, "from_ckpt"), (onnx_path, "from_onnx")]:
        res = runner.invoke(cli.app, ["colorize", str(pages), "-o", str(tmp_path / out), "--model", str(model),
                                      "--device", "cpu"])
        assert res.exit_code == 0, res.output
    for i in range(2):
        a = np.asarray(Image.open(tmp_path / "from_ckpt" / f"p{i}.png")).astype(int)
        b = np.asarray(Image.open(tmp_path / "from_onnx" / f"p{i}.png")).astype(int)
        assert a.shape == b.shape and a.ndim == 3
        assert np.abs(a - b).max() <= 2


def test_half_export_leaves_the_callers_model_weights_untouched(tmp_path):
    from mangacolor_cli.engine.backends import export_onnx

    net = models.create("unet", preset="tiny").eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    export_onnx(net, tmp_path / "half.onnx", working_size=64, half=True)
    after = net.state_dict()
    assert all(after[k].dtype == before[k].dtype and torch.equal(after[k], before[k]) for k in before)


def test_export_takes_a_run_folder_as_resume_does(tmp_path):
    """``export RUN_DIR``: the run's best.pt, else its last.pt (a run stopped before its first validation);
    a folder holding neither is one error line."""
    run = tmp_path / "run"
    run.mkdir()
    _tiny_checkpoint("unet", tmp_path).rename(run / "last.pt")
    result = export_checkpoint(run, tmp_path / "last.onnx")
    assert result.path.is_file()
    (run / "last.pt").rename(run / "best.pt")
    assert export_checkpoint(run, tmp_path / "best.onnx").path.is_file()
    (tmp_path / "empty").mkdir()
    out = CliRunner().invoke(app, ["export", str(tmp_path / "empty"), "-o", str(tmp_path / "x.onnx")])
    assert out.exit_code == 2 and "not a training run" in out.output and not (tmp_path / "x.onnx").exists()
