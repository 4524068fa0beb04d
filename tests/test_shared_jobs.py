"""The shared building blocks each job has one implementation of (docs/ARCHITECTURE.md, "Where each shared job lives")."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from mangacolor_cli.pages.images import is_page_name
from models.toolbox.errors import first_line
from models.toolbox.files import atomic_path, clean_stale_temps, is_temp_name, write_text_atomic
from trainer.data import load_rgb
from models.toolbox.device import DeviceError, resolve_device
from models.toolbox.images import decode_image, natural_path_key, tensor_to_uint8, to_rgb8, to_uint8
from trainer.metrics_log import curve_series, read_metrics_log
from tests.conftest import encoded


def test_pixel_conversion_rounds_every_depth_to_the_nearest_level():
    assert to_uint8(np.array([0, 257 * 128, 65535], np.uint16)).tolist() == [0, 128, 255]
    assert to_uint8(np.array([0.0, 0.5, 1.0, 1.5], np.float32)).tolist() == [0, 128, 255, 255]
    assert to_rgb8(np.zeros((2, 3), np.uint8)).shape == (2, 3, 3)
    assert tensor_to_uint8(torch.full((1, 2, 2), 0.5)).tolist() == [[128, 128], [128, 128]]


def test_sixteen_bit_training_pages_keep_their_gray_levels(tmp_path):
    gray = np.full((8, 8), 257 * 100, np.uint16)
    Image.fromarray(gray).save(tmp_path / "deep.png")
    assert np.asarray(load_rgb(tmp_path / "deep.png")).max() == 100


def test_gif_is_read_for_training_and_colored_as_a_page():
    assert decode_image(encoded(Image.new("P", (4, 4)), "GIF"), "a.gif").is_gray
    # issue 13: a GIF page is colored (written back in an adaptive palette), never copied in silence.
    assert is_page_name("a.gif") and is_page_name("a.PNG") and not is_page_name("__MACOSX/._a.png")


def test_natural_order_keeps_a_folders_pages_together():
    names = ["a-b/1.png", "a/10.png", "a/2.png"]
    assert sorted(names, key=natural_path_key) == ["a/2.png", "a/10.png", "a-b/1.png"]


def test_device_resolution_refuses_what_is_not_a_device():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(DeviceError, match="--device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            resolve_device("cuda:1")


def test_atomic_write_leaves_nothing_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.onnx"
    with pytest.raises(RuntimeError):
        with atomic_path(target, keep_suffix=True) as tmp:
            assert tmp.name.endswith(".onnx") and is_temp_name(tmp.name)
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert os.listdir(tmp_path) == []
    assert write_text_atomic(target, "whole").read_text() == "whole"


def test_a_killed_writers_temp_file_is_cleaned_whatever_its_suffix(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".m.onnx.{dead.pid}.0123abcd.mangacolor-tmp.onnx"
    stale.write_bytes(b"x")
    assert clean_stale_temps(tmp_path) == [stale]


def test_first_line_of_an_error():
    assert first_line(ValueError("one\ntwo")) == "one" and first_line(KeyError()) == "KeyError"


def test_the_metrics_log_is_read_once_for_training_and_reports(tmp_path):
    path = tmp_path / "metrics.jsonl"
    records = [{"kind": "baseline", "step": 0, "l1_ab": 0.2}, {"kind": "train", "step": 1, "losses": {"l1": 0.5}},
               {"kind": "val", "step": 1, "l1_ab": 0.1, "psnr": 20.0}]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\nnot json\n[1, 2]\n")
    assert read_metrics_log(path) == records
    series, baseline, x_key = curve_series(records)
    assert series == {"train l1": [(1.0, 0.5)], "val l1_ab": [(1.0, 0.1)], "val psnr": [(1.0, 20.0)]}
    assert baseline == {"l1_ab": 0.2} and x_key == "step"
