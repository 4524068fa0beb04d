"""Issue 15, discoverability: `mangacolor models`, Colorizer.colorize on one page or a list, dir(mangacolor_cli)."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

import mangacolor_cli
from mangacolor_cli.commands import app

from .conftest import draw_page

runner = CliRunner()


# ---------------------------------------------------------------------------- models
def test_models_lists_packaged_models_and_architectures_with_presets():
    result = runner.invoke(app, ["models"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    for text in ("default", "effunet anneal_t=0.38", "decoder=[128, 64, 48]", "15.2 MB", "320", "MODEL_CARD.md", "small: base=24"):
        assert text in result.output, text
    data = json.loads(runner.invoke(app, ["models", "--json"]).stdout)
    default = next(m for m in data["packaged"] if m["name"] == "default")
    assert default["architecture"] == "effunet" and default["working_size"] == 320 and default["default"]
    assert default["card"].endswith("MODEL_CARD.md") and default["bytes"] > 1e6
    import models
    assert [a["name"] for a in data["architectures"]] == models.available()
    assert all("tiny" in a["presets"] for a in data["architectures"])


# ---------------------------------------------------------------------------- Python API
def test_colorizer_takes_one_page_or_a_list(tiny_checkpoint):
    from mangacolor_cli import Colorizer

    colorizer = Colorizer(str(tiny_checkpoint), device="cpu")
    page = np.asarray(draw_page())
    one = colorizer.colorize(page)
    assert isinstance(one, np.ndarray) and one.shape == (64, 48, 3)
    many = colorizer.colorize([page, draw_page(seed=3)])
    assert isinstance(many, list) and len(many) == 2 and np.array_equal(many[0], one)


def test_dir_of_the_package_shows_the_public_names():
    assert {"colorize", "Colorizer", "ColorizeSummary"} <= set(dir(mangacolor_cli))
