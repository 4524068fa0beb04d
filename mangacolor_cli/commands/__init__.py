"""The ``mangacolor`` command line: thin Typer commands that parse, call one library function, print.

Each command lives in its own module and registers itself on ``app`` when imported.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from . import catalog, colorize, eval, export, quantize, train  # noqa: E402,F401  (registers the commands)
from .app import app


def main() -> None:
    _reopen_closed_std_streams()
    _escape_what_the_streams_cannot_encode()
    try:
        app()
    except OSError as e:
        # Every file a command writes reports its own error; what reaches here is the standard output failing
        # (``--json > /dev/full``: a write bigger than its buffer raises at once).
        _stdout_lost(e)
    finally:
        # What is still buffered is written at exit, where a failure would be a traceback.
        if _stdout_fails():
            _stdout_lost(OSError("the last lines could not be written"))


def _escape_what_the_streams_cannot_encode() -> None:
    """A name the terminal's encoding cannot hold (an emoji under ``PYTHONIOENCODING=latin-1``, a file name that
    is not UTF-8) is printed as its escape (``\\U0001f600``), never a UnicodeEncodeError."""
    import io

    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (OSError, ValueError):  # a stream already closed: nothing is printed there anyway
                pass


def _stdout_fails() -> bool:
    """Whether standard output cannot take what is buffered for it (a full disk, a closed device)."""
    try:
        sys.stdout.flush()
    except OSError:
        return True
    return False


def _stdout_lost(error: OSError) -> NoReturn:
    """One line on stderr and exit 1 when the output itself cannot be written; what is still buffered goes to
    the null device, so the exit adds no second report."""
    from models.toolbox.errors import first_line

    from .app import FAILED, print_error

    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError):
        pass
    where = f"{error.filename}: " if error.filename else "standard output: "
    print_error(f"{where}cannot write ({first_line(error)})")
    raise SystemExit(FAILED)


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
