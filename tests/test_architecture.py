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


# Inside mangacolor_cli, each part may import only the parts below it (docs/ARCHITECTURE.md): delivery (export,
# quantize) runs models through engine and scores them through evaluation, so it sits above both.
# The package's own __init__, entry and __main__ are the top.
INSIDE_BELOW = {
    "commands": {"delivery", "evaluation", "engine", "pages", "errors", "version"},
    "delivery": {"evaluation", "engine", "pages", "errors", "version"},
    "evaluation": {"engine", "pages", "errors", "version"},
    "engine": {"pages", "errors", "version"},
    "pages": {"errors", "version"},
    "errors": set(),
    "version": set(),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for package in BELOW for path in sorted((ROOT / package).rglob("*.py"))}


def _imported_modules(path: Path, known: dict[str, Path]) -> set[str]:
    """Our modules ``path`` imports, anywhere in it (a lazy import inside a function counts too)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def ours(module: str) -> str | None:  # the longest prefix of ``module`` that is one of our modules
        while module and module not in known:
            module = module.rpartition(".")[0]
        return module or None

    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {ours(alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:  # `from . import x` imports the module x; `from .. import name`, the package
                found.add(ours(f"{module}.{alias.name}") if f"{module}.{alias.name}" in known else ours(module))
    return found - {None, name}


def test_no_module_imports_one_that_imports_it_back():
    known = _modules()
    graph = {name: _imported_modules(path, known) for name, path in known.items()}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = path[path.index(name):] + [name]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, path + [name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_inside_mangacolor_cli_imports_flow_down_from_commands_to_errors():
    known = _modules()
    part = lambda module: module.split(".")[1] if module.count(".") else "the package itself"
    for name, path in known.items():
        if not name.startswith("mangacolor_cli.") or part(name) not in INSIDE_BELOW:
            continue  # the package's __init__, entry and __main__: the top
        imported = {part(m) for m in _imported_modules(path, known) if m.split(".")[0] == "mangacolor_cli"}
        wrong = imported - INSIDE_BELOW[part(name)] - {part(name)}
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}, not below {part(name)}"


def test_the_colorize_path_imports_nothing_from_the_trainer():
    # Colorize (engine, pages) takes its shared jobs from models.toolbox; the trainer is training's alone.
    known = _modules()
    colorize_path = [name for name in known if name.split(".")[:2] in (["mangacolor_cli", "engine"],
                                                                       ["mangacolor_cli", "pages"])]
    assert colorize_path
    for name in colorize_path:
        path = known[name]
        wrong = sorted(m for m in _imported_modules(path, known) if m.split(".")[0] == "trainer")
        assert not wrong and "trainer" not in _imported_packages(path), \
            f"{path.relative_to(ROOT)} imports {wrong or ['trainer']}: the colorize path takes shared jobs from models.toolbox"


def test_the_version_lives_in_a_module_that_imports_nothing_and_matches_pyproject():
    import mangacolor_cli
    from mangacolor_cli import version

    tree = ast.parse((ROOT / "mangacolor_cli" / "version.py").read_text(encoding="utf-8"))
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert mangacolor_cli.__version__ == version.__version__ == expected


# The display: the progress bar (rich, tqdm.auto in a notebook) and the scripts' own command lines.
MAY_PRINT = {"models/toolbox/progress.py"}


def test_library_code_never_prints_it_logs_returns_or_calls_back():
    library = [ROOT / "mangacolor_cli" / part for part in ("engine", "evaluation", "delivery", "pages")]
    library += [ROOT / "trainer", ROOT / "models"]
    for path in sorted(p for folder in library for p in folder.rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if name in MAY_PRINT or path.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            called = ast.unparse(node.func)
            assert called != "print", f"{name}:{node.lineno} prints (log it, return it or take a callback)"
            assert called.split(".")[-1] != "Console", f"{name}:{node.lineno} makes a rich console (the commands do)"
            assert called not in ("sys.stdout.write", "sys.stderr.write"), f"{name}:{node.lineno} calls {called}"

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
