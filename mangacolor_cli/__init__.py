"""mangacolor: colorize black-and-white manga pages, chapters and libraries."""

__version__ = "0.1.0"
