"""The layout's promises (docs/ARCHITECTURE.md): imports flow one way, the public API and entry point
load, and the command line starts without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from importlib import import_module
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# A package may import only the packages below it.
BELOW = {"models": set(), "trainer": {"models"}, "mangacolor_cli": {"trainer", "models"}}


def _imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(BELOW)


@pytest.mark.parametrize("package", sorted(BELOW))
def test_imports_flow_one_way(package):
    for path in sorted((ROOT / package).rglob("*.py")):
        wrong = _imported_packages(path) - BELOW[package] - {package}
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}, above {package}"


def test_public_api_loads_from_the_package():
    from mangacolor_cli import ColorizeSummary, Colorizer, colorize

    assert callable(colorize) and isinstance(Colorizer, type) and isinstance(ColorizeSummary, type)


def test_the_entry_point_in_pyproject_is_the_commands_main():
    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["mangacolor"]
    module, _, name = target.partition(":")
    assert callable(getattr(import_module(module), name))


def test_the_command_line_and_option_choices_load_without_torch():
    code = ("import sys, mangacolor_cli.commands, trainer.choices, mangacolor_cli.engine.choices; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "False"
