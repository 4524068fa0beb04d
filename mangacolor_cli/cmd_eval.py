"""`mangacolor eval`."""

from .app import app  # noqa: F401
