"""`mangacolor models`: the packaged models and the registered architectures with their presets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text
from rich.table import Table

from .app import EXIT_CODES, app

EPILOG = """\
Examples:

  mangacolor models

  mangacolor models --json | jq '.packaged[].name'

  mangacolor colorize chapter.cbz --model default     # a packaged model by name

""" + EXIT_CODES


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _options(options: dict) -> str:
    return " ".join(f"{k}={json.dumps(v)}" for k, v in options.items())


@app.command("models", epilog=EPILOG)
def models_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the lists as JSON (for scripts).")] = False,
) -> None:
    """List the models that ship in the package (colorize --model NAME) and the architectures train --model can build,
    with their presets."""
    from ..engine.catalog import architectures, packaged_models

    packaged, archs = packaged_models(), architectures()
    if as_json:
        print(json.dumps({"packaged": [m.to_dict() for m in packaged],
                          "architectures": [a.to_dict() for a in archs]}, indent=2))
        return
    console = Console(highlight=False, soft_wrap=False)
    table = Table(title="Packaged models (colorize --model NAME)", title_justify="left")
    for column in ("name", "architecture", "size", "working size", "card"):
        table.add_column(column, overflow="fold")
    for m in packaged:
        name = m.name + (" (the default)" if m.default and m.name != "default" else "")
        card = Path(m.card).name if m.card else "-"
        if m.summary:
            card = f"{card}: {m.summary}" if m.card else m.summary
        table.add_row(Text(name), Text(f"{m.architecture} {_options(m.options)}".strip()), _megabytes(m.bytes),
                      str(m.working_size or "-"), Text(card))
    console.print(table)
    table = Table(title="Architectures (train --model NAME --preset PRESET)", title_justify="left")
    for column in ("name", "presets", "what it is"):
        table.add_column(column, overflow="fold")
    for a in archs:
        presets = "\n".join(f"{p}: {_options(o)}" for p, o in a.presets.items())
        table.add_row(a.name, Text(presets), Text(a.description))
    console.print(table)
