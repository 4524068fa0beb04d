"""Model options are captured from the constructor (defaults included) and every one survives a checkpoint."""

from __future__ import annotations

import inspect

import pytest
import torch

import models


def _distinct_options(name: str) -> dict:
    """The tiny preset, with every float option moved off its default, so a dropped option shows."""
    cls = models.model_class(name)
    options = dict(cls.presets()["tiny"])
    for key, param in inspect.signature(cls.__init__).parameters.items():
        if key not in options and isinstance(param.default, float) and not isinstance(param.default, bool):
            options[key] = param.default + 0.125
    return options


@pytest.mark.parametrize("name", models.available())
def test_every_constructor_argument_is_captured_with_its_value(name):
    cls = models.model_class(name)
    given = _distinct_options(name)
    model = models.create(name, **given)
    arguments = [k for k, p in inspect.signature(cls.__init__).parameters.items()
                 if k != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    assert sorted(model.options) == sorted(arguments)
    for key, value in given.items():
        assert model.options[key] == value


@pytest.mark.parametrize("name", models.available())
def test_every_option_round_trips_through_a_checkpoint(name, tmp_path):
    torch.manual_seed(0)
    model = models.create(name, **_distinct_options(name))
    path = models.save_checkpoint(tmp_path / "m.pt", model, meta={"working_size": 64})
    loaded = models.load_model(path)
    assert loaded.options == model.options
    assert {k: v.shape for k, v in loaded.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    assert loaded.meta == {"working_size": 64}


def test_a_model_built_in_memory_has_no_checkpoint_meta():
    assert models.create("unet", preset="tiny").meta == {}
