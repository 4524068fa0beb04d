"""Issue 15, discoverability: flags without a value type, examples shown as written, shell completion."""

from __future__ import annotations

import importlib

import pytest
from typer.testing import CliRunner

from mangacolor_cli.commands import app

runner = CliRunner()


@pytest.mark.parametrize("command", ["colorize", "train", "eval", "export"])
def test_flags_show_no_bool_metavar(command):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "<bool>" not in result.output
    assert "--help" in result.output


@pytest.mark.parametrize("command", ["colorize", "train", "eval"])
def test_examples_are_shown_as_written_in_an_80_column_terminal(command):
    epilog = importlib.import_module(f"mangacolor_cli.commands.{command}").EPILOG
    examples = [line for line in epilog.splitlines() if line.startswith("  ")]
    assert examples
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "80"})
    shown = [line.rstrip() for line in result.output.splitlines()]
    for example in examples:
        # Indented as written (the help pads by one column), on one line, not re-wrapped.
        assert " " + example.rstrip() in shown, example


def test_shell_completion_is_offered():
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "120"})
    assert "--install-completion" in result.output and "--show-completion" in result.output


def test_readme_says_how_to_install_on_cpu_and_cuda_machines_and_what_each_extra_brings():
    tomllib = pytest.importorskip("tomllib")
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    install = readme[readme.index("## Install"):]
    install = install[:install.index("\n## ", 3)]
    assert "download.pytorch.org/whl/cpu" in install and "download.pytorch.org/whl/cu" in install
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in extras:
        assert f"| `{extra}` |" in install, extra
