"""mangacolor: colorize black-and-white manga pages, chapters and libraries.

    >>> from mangacolor_cli import colorize, Colorizer
    >>> colorize(["chapter.cbz"])                 # the job behind ``mangacolor colorize``
    >>> Colorizer().colorize([page])              # pages in memory -> colored pages

The packages and what each may import: docs/ARCHITECTURE.md.
"""

import os

from .version import __version__

# onnxruntime (1.31) writes a device id and a telemetry event queue (OS, CPU, Python path) under
# ~/.cache/Microsoft/DeveloperTools/ as soon as it is imported; its documented switch, read at that import,
# turns it off (docs/RELIABILITY.md, "Nothing written to your home"). A user's own setting wins.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


__all__ = ["colorize", "ColorizeSummary", "Colorizer", "__version__"]


def __dir__() -> list[str]:
    # The lazy names too, so tab completion in a notebook offers them before their first use.
    return sorted(set(globals()) | set(__all__))


def __getattr__(name: str):
    # Lazy, so `import mangacolor_cli` (and `mangacolor --help`) does not pay for importing torch.
    if name in ("colorize", "ColorizeSummary"):
        from .engine import pipeline
        return getattr(pipeline, name)
    if name == "Colorizer":
        from .engine.colorizer import Colorizer
        return Colorizer
    raise AttributeError(f"module 'mangacolor_cli' has no attribute {name!r}")
