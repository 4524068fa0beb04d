"""The project's own error types: every user-facing failure is one of these, one line naming the file."""

from __future__ import annotations

from pathlib import Path


class MangacolorError(Exception):
    """Base of every error mangacolor reports to a user; ``str(err)`` is one line naming the file."""


class UsageError(MangacolorError):
    """Bad options or arguments (exit code 2, as for the input, model and output kinds below)."""


class InputError(MangacolorError):
    """An input that cannot be read at all: missing file, broken archive, unsupported format."""


class PageError(MangacolorError):
    """One page that cannot be decoded, colored or encoded; the rest of the job goes on."""


class ModelError(MangacolorError):
    """A model that cannot be found, loaded or run."""


class OutputError(MangacolorError):
    """An output that cannot be written (would overwrite an input, unwritable folder)."""


class JobError(MangacolorError):
    """Work that failed once under way: a check that refused its result (export's comparison with PyTorch),
    a step that broke on this model (exit code 1, where the kinds above stop a command before any work: 2)."""


def require_folder(root: str | Path) -> Path:
    """``root`` as a Path if it is a folder, else the InputError every command gives for it: "no such folder",
    or "not a folder" for a file. Torch-free, so a command can check what was typed before its heavy imports."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: {'not a folder' if root.exists() else 'no such folder'}")
    return root
