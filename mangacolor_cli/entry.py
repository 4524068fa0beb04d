"""The ``mangacolor`` console script: Ctrl-C while the command is still loading (its modules, Typer building
its options) ends the run quietly with exit 130, never with a traceback from inside an import; the
commands handle Ctrl-C in their own work themselves (finished outputs kept, unfinished ones not written)."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from .commands import main as run
        run()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
