"""mangacolor: colorize black-and-white manga pages, chapters and libraries."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy, so `import mangacolor_cli` (and `mangacolor --help`) does not pay for importing torch.
    if name in ("colorize", "ColorizeSummary"):
        from . import pipeline
        return getattr(pipeline, name)
    if name == "Colorizer":
        from .inference import Colorizer
        return Colorizer
    raise AttributeError(f"module 'mangacolor_cli' has no attribute {name!r}")
