"""The fast paths of the Colorizer: fused compose, out-of-memory batch splitting, auto backend, session knobs.

Correctness only: the speed itself is measured by benchmarks/bench_colorize.py, never asserted here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import models
from mangacolor_cli.engine import backends
from mangacolor_cli.engine.backends import estimate_macs, export_onnx, load_session
from mangacolor_cli.engine.colorizer import Colorizer
from mangacolor_cli.errors import ModelError
from models import color
from models.color import lab_to_srgb8_keeping_l, lab_to_srgb_keeping_l
from tests.conftest import draw_page, strongly_colored_unet


@pytest.fixture(scope="module")
def tiny_model():
    return strongly_colored_unet(3)


def _random_lab(h: int = 40, w: int = 50, chroma: float = 60.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 1, h, w, generator=g) * 100, torch.randn(1, 2, h, w, generator=g) * chroma


def _lightness_of(rgb8: torch.Tensor) -> torch.Tensor:
    return color.rgb_to_lab(rgb8.permute(2, 0, 1)[None].float() / 255)[:, :1]


def test_uint8_compose_equals_the_float_path_rounded():
    L, ab = _random_lab(chroma=80.0)
    fast = lab_to_srgb8_keeping_l(L, ab).int()
    slow = lab_to_srgb_keeping_l(L, ab)[0].mul(255).round().permute(1, 2, 0).int()
    assert (fast - slow).abs().max() <= 1


def test_in_gamut_colors_compose_exactly_as_the_shared_lab_conversion():
    # Gamut mapping must leave colors that sRGB can show alone.
    L, ab = _random_lab(chroma=8.0, seed=1)
    L = L * 0.5 + 25
    unclipped = color.lab_to_rgb(torch.cat([L, ab], 1), clip=False)[0].permute(1, 2, 0)
    inside = ((unclipped >= 0) & (unclipped <= 1)).all(dim=-1)
    assert inside.float().mean() > 0.9
    fast = lab_to_srgb8_keeping_l(L, ab).int()[inside]
    assert (fast - unclipped.mul(255).round().int()[inside]).abs().max() <= 1


def test_out_of_gamut_colors_keep_lightness_in_the_uint8_compose():
    L, ab = _random_lab(chroma=120.0, seed=2)
    out = lab_to_srgb8_keeping_l(L, ab)
    assert out.dtype == torch.uint8 and out.shape == (40, 50, 3)
    assert (_lightness_of(out) - L).abs().max() < 0.6


def test_compose_on_one_thread_gives_the_same_page_and_restores_threads(tiny_model):
    page = np.asarray(draw_page(64, 48))
    colorizer = Colorizer(tiny_model, size=32, backend="torch")
    ab = colorizer.predict_ab([page])[0]
    before = torch.get_num_threads()
    one = colorizer.compose(page, ab, threads=1)
    assert torch.get_num_threads() == before
    assert np.array_equal(one, colorizer.compose(page, ab))


def test_out_of_memory_splits_the_batch_and_keeps_every_page(tiny_model, monkeypatch):
    pages = [np.asarray(draw_page(48, 64, seed)) for seed in range(5)]
    expected = Colorizer(tiny_model, size=32, backend="torch", batch_size=8).colorize(pages)
    colorizer = Colorizer(tiny_model, size=32, backend="torch", batch_size=8)
    real_call = colorizer._model_call
    sizes = []

    def call_fitting_one_page(batch):
        sizes.append(len(batch))
        if len(batch) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_call(batch)

    monkeypatch.setattr(colorizer, "_model_call", call_fitting_one_page)
    got = colorizer.colorize(pages)
    assert len(got) == 5 and all(np.array_equal(a, b) for a, b in zip(got, expected))
    assert colorizer.fitting_batch == 1
    sizes.clear()
    colorizer.colorize(pages[:3])
    assert sizes == [1, 1, 1], "after an out-of-memory error the smaller batch is kept"


def test_out_of_memory_on_a_single_page_is_a_one_line_model_error(tiny_model, monkeypatch):
    colorizer = Colorizer(tiny_model, size=32, backend="torch")

    def out_of_memory(batch):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(colorizer, "_model_call", out_of_memory)
    with pytest.raises(ModelError, match="--size") as info:
        colorizer.colorize([np.asarray(draw_page())])
    assert "\n" not in str(info.value)


def test_other_model_errors_are_not_taken_for_out_of_memory(tiny_model, monkeypatch):
    colorizer = Colorizer(tiny_model, size=32, backend="torch", batch_size=4)
    monkeypatch.setattr(colorizer, "_model_call", lambda batch: (_ for _ in ()).throw(RuntimeError("shape mismatch")))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        colorizer.colorize([np.asarray(draw_page(48, 64, s)) for s in range(2)])


def test_onnxruntime_allocation_failure_counts_as_out_of_memory():
    fake = type("RuntimeException", (Exception,), {"__module__": "onnxruntime.capi.onnxruntime_pybind11_state"})
    assert backends.is_out_of_memory(fake("Failed to allocate memory for requested buffer of size 123"))
    assert not backends.is_out_of_memory(fake("Invalid input shape"))
    assert not backends.is_out_of_memory(ValueError("out of memory"))


def test_estimate_macs_counts_convolutions_and_scales_with_area():
    class OneConv(torch.nn.Module):
        stride = 1

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)

        def colorize(self, x):
            return self.conv(x)

    assert estimate_macs(OneConv(), 100, 30) == pytest.approx(100 * 30 * 4 * 9)
    net = models.create("unet", preset="tiny")
    assert estimate_macs(net, 256, 128) == pytest.approx(4 * estimate_macs(net, 128, 64))


def test_auto_backend_exports_a_heavy_model_to_onnx_and_keeps_a_light_one_on_torch(tiny_model, monkeypatch):
    pages = [np.asarray(draw_page(48, 64, seed)) for seed in range(2)]
    light = Colorizer(tiny_model, size=32, device="cpu")
    assert light.backend == "torch" and "too little" in light.describe()
    monkeypatch.setattr(backends, "ONNX_AUTO_MIN_MACS", 0.0)
    heavy = Colorizer(tiny_model, size=32, device="cpu")
    assert heavy.backend == "onnx" and "faster" in heavy.describe()
    for a, b in zip(light.colorize(pages), heavy.colorize(pages)):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_auto_backend_falls_back_to_torch_when_the_export_fails(tiny_model, monkeypatch):
    monkeypatch.setattr(backends, "ONNX_AUTO_MIN_MACS", 0.0)

    def failing_export(*args, **kwargs):
        raise ModelError("cannot export model 'unet' to ONNX (unsupported operator)")

    monkeypatch.setattr(backends, "session_from_model", failing_export)
    colorizer = Colorizer(tiny_model, size=32, device="cpu")
    assert colorizer.backend == "torch" and "export failed" in colorizer.describe()
    assert colorizer.colorize([np.asarray(draw_page())])[0].shape == (64, 48, 3)


@pytest.mark.parametrize("knobs", [dict(threads=1, spinning=False, optimization="basic"),
                                   dict(threads=2, spinning=True, optimization="disable")])
def test_session_knobs_change_speed_not_results(tmp_path, knobs):
    torch.manual_seed(0)
    # Default-initialized weights: no tanh saturation, where float rounding could flip a sign.
    path = export_onnx(models.create("unet", preset="tiny").eval(), tmp_path / "m.onnx", working_size=32)
    x = {"input": np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)}
    default, _ = load_session(path, "cpu")
    tuned, provider = load_session(path, "cpu", **knobs)
    assert provider == "CPUExecutionProvider"
    assert np.allclose(default.run(None, x)[0], tuned.run(None, x)[0], atol=1e-4)


def test_torch_batch_spread_over_cpu_threads_gives_the_same_pages(tiny_model):
    pages = [np.asarray(draw_page(48, 64, seed)) for seed in range(3)]
    serial = Colorizer(tiny_model, size=32, backend="torch", batch_size=3)
    serial.cpu_workers = 1
    spread = Colorizer(tiny_model, size=32, backend="torch", batch_size=3)
    spread.cpu_workers = 2
    before = torch.get_num_threads()
    for a, b in zip(serial.colorize(pages), spread.colorize(pages)):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert torch.get_num_threads() == before


# ---------------------------------------------------------------- the pipeline's overlap and batch choice (issue 16)
def test_automatic_batch_is_one_page_on_the_cpu_for_onnx_and_one_per_thread_for_torch(tiny_model, tmp_path):
    path = export_onnx(tiny_model, tmp_path / "m.onnx", working_size=32)
    onnx_run = Colorizer(path)
    assert onnx_run.auto_batch and onnx_run.batch_size == 1 and onnx_run.pages_per_call((320, 224)) == 1
    torch_run = Colorizer(tiny_model, size=32, backend="torch")
    assert torch_run.batch_size == max(1, torch_run.cpu_workers)
    asked = Colorizer(path, batch_size=3)
    assert not asked.auto_batch and asked.pages_per_call((2000, 2000)) == 3
    assert "batch 1 (auto)" in onnx_run.describe()


def test_automatic_batch_on_a_gpu_fits_the_page_shape(tiny_model, monkeypatch):
    from mangacolor_cli.engine import runner as colorizer_module
    run = Colorizer(tiny_model, size=32, backend="torch")
    monkeypatch.setattr(Colorizer, "on_gpu", property(lambda self: True))
    run.batch_size = run._auto_batch_size()
    assert run.batch_size == colorizer_module.AUTO_GPU_BATCH
    assert run.pages_per_call((768, 544)) == colorizer_module.AUTO_GPU_BATCH
    assert run.pages_per_call((768, 1088)) == colorizer_module.AUTO_GPU_BATCH // 2  # a double-page spread
    assert run.pages_per_call((8000, 8000)) == 1


def test_page_batcher_takes_the_batch_size_by_shape():
    from mangacolor_cli.engine.colorizer import PageBatcher
    calls = []
    batcher = PageBatcher(lambda shape: 2 if shape == (1, 1) else 3, lambda page: page.shape,
                          lambda pages: calls.append(len(pages)) or [None] * len(pages))
    for i in range(5):
        batcher.add(i, np.zeros((1, 1)))
        batcher.add(i, np.zeros((2, 2)))
    batcher.flush()
    assert sorted(calls) == [1, 2, 2, 2, 3]


def test_regions_made_ahead_give_the_same_page(tiny_model):
    from mangacolor_cli.engine.colorizer import page_regions
    from models.toolbox.images import DecodedPage
    page = DecodedPage(np.asarray(draw_page(120, 160, 3)))
    for fill in ("flat", "soft"):
        run = Colorizer(tiny_model, size=32, backend="torch", fill=fill)
        (ab, conf), = run.predict([page], as_numpy=True)
        ahead = page_regions(page, fill)
        assert (ahead is None) == (fill == "soft")
        assert np.array_equal(run.compose(page, ab, confidence=conf, regions=ahead),
                              run.compose(page, ab, confidence=conf))
    rgb = DecodedPage(np.stack([np.asarray(draw_page(40, 50))] * 3, -1))
    assert page_regions(rgb, "flat") is None  # not 8-bit gray: the compose segments from its L


def test_a_model_that_fails_to_load_beside_the_decoding_writes_nothing(tmp_path):
    from mangacolor_cli import colorize
    from mangacolor_cli.errors import UsageError
    folder = tmp_path / "pages"
    folder.mkdir()
    for i in range(12):
        draw_page(48, 64, i).save(folder / f"{i:03d}.png")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07" + b"not a model" * 10)
    with pytest.raises(ModelError, match="bad.onnx"):
        colorize(folder, tmp_path / "out", model=bad)
    assert not (tmp_path / "out").exists()
    with pytest.raises(UsageError, match="--fill"):  # bad options: before any page is read
        colorize(folder, tmp_path / "out", model=bad, fill="watercolor")


def test_the_pipeline_loading_the_model_in_a_thread_gives_the_api_pages(tiny_checkpoint, tmp_path):
    from PIL import Image

    from mangacolor_cli import colorize
    folder = tmp_path / "pages"
    folder.mkdir()
    pages = [draw_page(96, 128, i) for i in range(5)]
    for i, page in enumerate(pages):
        page.save(folder / f"{i:03d}.png")
    ready = []
    summary = colorize(folder, tmp_path / "out", model=tiny_checkpoint, on_ready=ready.append)
    assert summary.done == 5 and len(ready) == 1 and summary.model == ready[0].describe()
    assert 0 < summary.load_seconds <= summary.seconds
    want = ready[0].colorize([np.asarray(p) for p in pages])
    for i in range(5):
        got = np.asarray(Image.open(tmp_path / "out" / f"{i:03d}.png"))
        assert np.abs(got.astype(int) - want[i].astype(int)).max() <= 1


def test_progress_bar_status_clock_and_suspension():
    import io

    from rich.console import Console

    from models.toolbox.progress import ProgressBar
    screen = io.StringIO()
    bar = ProgressBar(3, unit="pages", transient=True, console=Console(file=screen, force_terminal=True, width=100))
    bar.set_status("loading the model...")
    bar._rich.refresh()
    assert "loading the model..." in screen.getvalue()
    bar.restart_clock()
    bar.update(1)
    assert bar.eta() is not None
    with bar.suspended():  # a caller's error line prints on its own line, not into the bar
        assert not bar._rich.live.is_started
    assert bar._rich.live.is_started
    bar.close()
    quiet = ProgressBar(3, enabled=False)  # a disabled bar takes every call
    quiet.set_status("x")
    with quiet.suspended():
        pass
    quiet.close()


def test_errors_and_the_model_line_print_above_the_bar(tmp_path, tiny_checkpoint):
    from mangacolor_cli import colorize
    folder = tmp_path / "pages"
    folder.mkdir()
    for i in range(3):
        draw_page(48, 64, i).save(folder / f"{i:03d}.png")
    (folder / "001b.png").write_bytes(b"not a png")
    seen = []
    from mangacolor_cli.engine import run as pipeline
    states = []
    suspended = pipeline.ProgressBar.suspended

    def spy(self):
        states.append("suspended")
        return suspended(self)
    import unittest.mock as mock
    with mock.patch.object(pipeline.ProgressBar, "suspended", spy):
        summary = colorize(folder, tmp_path / "out", model=tiny_checkpoint, on_error=seen.append,
                           on_ready=lambda c: seen.append("ready"))
    assert summary.failed == 1 and "ready" in seen and any("001b.png" in m for m in seen)
    assert len(states) >= 2  # one for the model line, one for the error
