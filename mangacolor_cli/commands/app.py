"""The Typer application object; each command lives in its own module of this package."""

from __future__ import annotations

import typer

from .. import __version__

app = typer.Typer(
    name="mangacolor",
    help="Colorize black-and-white manga: CBZ/ZIP archives, folders and images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mangacolor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Colorize black-and-white manga with a model that ships inside the package."""
