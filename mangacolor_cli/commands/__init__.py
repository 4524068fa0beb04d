"""The ``mangacolor`` command line: thin Typer commands that parse, call one library function, print.

Each command lives in its own module and registers itself on ``app`` when imported.
"""

from __future__ import annotations

from . import catalog, colorize, eval, export, quantize, train  # noqa: E402,F401  (registers the commands)
from .app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
