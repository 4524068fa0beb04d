"""`mangacolor colorize`."""

from .app import app  # noqa: F401
