"""`mangacolor train`."""

from .app import app  # noqa: F401
