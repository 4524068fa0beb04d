"""The Typer application object, and how every command reports an error and exits.

Exit codes, one rule for every command (``exit_code``; README, "Scripts: JSON and exit codes"):
0 done; 1 the work started and failed, in whole or in part; 2 the command could not start (nothing was
done): an option that cannot work, or a file or folder it names that is missing or unusable.
"""

from __future__ import annotations

import enum
import re
from pathlib import Path
from typing import Annotated, Callable, NoReturn

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperOption

from ..version import __version__

DONE = 0
FAILED = 1  # the work started and failed: pages that failed, nothing scored, a refused check, a diverged run
USAGE = 2   # the command could not start: an option, or a path it names (input, model, data) missing or unusable

# The rule as every command's --help ends with it (README, "Scripts: JSON and exit codes").
EXIT_CODES = ("Exit codes, the same in every command: 0 done; 1 the work failed once under way (pages that failed, "
              "nothing scored, a refused check, a diverged run); 2 the command could not start and did nothing (a "
              "bad option, or an input, model, checkpoint, data folder or output that is missing or unusable).")


def _flag_type(display_type_rich):
    # A flag takes no value: "<bool>" beside it would invite `--overwrite true`.
    def display(self, ctx):
        return None if getattr(self, "is_flag", False) else display_type_rich(self, ctx)
    return display


if hasattr(TyperOption, "display_type_rich"):
    TyperOption.display_type_rich = _flag_type(TyperOption.display_type_rich)

app = typer.Typer(
    name="mangacolor",
    help="Colorize black-and-white manga: CBZ/ZIP archives, folders and images.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def choice(name: str, values: tuple[str, ...]) -> type[enum.Enum]:
    """A str enum for a Typer option, built from the library's own tuple of values (one list, not two)."""
    return enum.Enum(name, {v: v for v in values}, type=str)  # type: ignore[return-value]


def device_check(names: tuple[str, ...]) -> Callable[[str], str]:
    """The one ``--device`` check of every command, a Typer callback run at parse time: one of ``names``
    or ``cuda:N`` (a GPU's index), spaces trimmed, lower case. A string rather than an enum like ``--backend``:
    ``cuda:N`` is any index, which an enum cannot list; whether that GPU is there is ``resolve_device``'s
    question, once the command runs (exit 2 too)."""
    def check(value: str) -> str:
        value = value.strip().lower()
        if value not in names and not re.fullmatch(r"cuda:\d+", value):
            raise typer.BadParameter(f"one of {', '.join(names)} or cuda:N (a GPU's index), got {value!r}")
        return value
    return check


def exit_code(error: BaseException) -> int:
    """The exit code of an error that stops a command, the one rule of every command: ``USAGE`` (2) for what
    stops it before any work (a bad option; an input, model, checkpoint, data folder or output that is missing
    or unusable), ``FAILED`` (1) for the work failing once under way (Typer's own option errors are 2 too)."""
    from ..errors import InputError, MangacolorError, ModelError, OutputError, UsageError

    if isinstance(error, (UsageError, InputError, ModelError, OutputError)):
        return USAGE
    if isinstance(error, MangacolorError) or type(error).__module__.split(".")[0] not in ("trainer", "models"):
        return FAILED
    # The training layers' own kinds; loaded already, since they raised it.
    from models import CheckpointError
    from trainer.data import DataError
    from trainer.loop import ConfigError, TrainingDataError

    if isinstance(error, TrainingDataError):
        return FAILED
    return USAGE if isinstance(error, (ConfigError, DataError, CheckpointError)) else FAILED


def fail(error: BaseException | str, code: int | None = None) -> NoReturn:
    """Print ``error: <one line>`` on stderr (user text is never read as markup, control characters are
    shown escaped) and exit with ``code`` (default: ``exit_code(error)``, the one rule)."""
    print_error(str(error))
    if code is None:
        code = FAILED if isinstance(error, str) else exit_code(error)
    raise typer.Exit(code)


def refuse_missing(*paths: tuple[Path | None, str]) -> None:
    """Stop (exit 2) at the first ``(path, words)`` whose path was typed but does not exist, saying
    ``path: words``, the library's own words for it. Commands call it before their heavy imports (torch
    takes ~1.3 s to load), so a typo is answered at once; the library still checks for Python callers."""
    from ..errors import InputError

    for path, words in paths:
        if path is not None and not Path(path).exists():
            fail(InputError(f"{path}: {words}"))


def labeled(label: str, style: str, text: str) -> Text:
    """``label text`` with the label styled and ``text`` printed exactly as it is: never read as markup
    (rich's ``escape`` drops the backslash of a name like ``\\[.png``) and no emoji codes."""
    return Text.assemble((label, style), " " + text) if label else Text(text)


def print_error(message: str, console: Console | None = None) -> None:
    """``error: <message>`` on one line of stderr: markup escaped, no emoji codes (``:x:``) replaced, control
    characters shown as ``\\n``: a file's name is printed as it is."""
    from models.toolbox.errors import printable  # here: `import mangacolor_cli` and --help stay torch-free

    console = console or Console(stderr=True, soft_wrap=True, highlight=False)
    console.print(labeled("error:", "red", printable(message)), soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mangacolor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False) -> None:
    """Colorize black-and-white manga with a model that ships inside the package."""
