"""The ``mangacolor`` command line: thin Typer commands that parse, call one library function, print.

Each command lives in its own module and registers itself on ``app`` when imported.
"""

from __future__ import annotations

import os
import sys

from . import catalog, colorize, eval, export, quantize, train  # noqa: E402,F401  (registers the commands)
from .app import app


def main() -> None:
    _reopen_closed_std_streams()
    app()


def _reopen_closed_std_streams() -> None:
    """``mangacolor colorize p.png 2>&-``: a closed stdin, stdout or stderr is opened on the null device,
    so the run works as with ``2>/dev/null`` (Python leaves ``sys.stderr`` None), and the next file the
    run opens (an output) never takes descriptor 2, where a library's messages would land in it."""
    import io

    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        null = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
        if null != fd:  # lower ones are open by now, so it is ``fd``; never leave it elsewhere
            os.dup2(null, fd)
            os.close(null)
        if getattr(sys, name) is None:
            setattr(sys, name, io.TextIOWrapper(io.FileIO(fd, "r" if fd == 0 else "w", closefd=False),
                                                line_buffering=fd != 0))


__all__ = ["app", "main"]
