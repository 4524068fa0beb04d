"""The ``mangacolor`` command line: thin Typer commands that parse, call one library function, print."""

from __future__ import annotations

from .app import app
# Importing a command module registers its command on ``app``.
from . import cmd_colorize, cmd_train, cmd_export, cmd_eval  # noqa: E402,F401


def main() -> None:
    app()
