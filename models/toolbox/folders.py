"""Folders of pages: the one walk (recursive, natural page order, hidden entries skipped) and the one
pairing of two folders by relative path, extension-insensitive (``DATA/bw`` beside ``DATA/color``).
Training's data, eval's sets and colorize's reference folders all list and pair through here; torch-free."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

from .images import is_image_name, natural_path_key


class SamePageError(ValueError):
    """Two files of one folder are the same page to the pairing (``01.png`` and ``01.jpg``)."""


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def image_paths(root: str | os.PathLike, *, accept: Callable[[str], bool] = is_image_name,
                exclude: Sequence[str | os.PathLike] = (), hidden: bool = False) -> list[Path]:
    """The files under ``root`` (recursive) whose name ``accept`` takes (default: an image the loader
    reads), in natural order of their path below ``root`` (2 before 10, a folder's pages together).
    Entries at or below ``exclude`` are left out, and so are hidden ones (a name starting with ".")
    unless ``hidden``. ``root`` must be a folder (the caller says what else it is, in its own words)."""
    root = Path(root)
    excluded = [Path(e).resolve() for e in exclude]
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if (not hidden and _hidden(rel)) or not accept(path.name) or not path.is_file():
            continue
        if excluded and any(path.resolve().is_relative_to(e) for e in excluded):
            continue
        found.append(path)
    return sorted(found, key=lambda p: natural_path_key(p.relative_to(root)))


def page_key(path: Path, root: Path) -> str:
    """A page's pairing key: its path below ``root`` without the extension (posix)."""
    return path.relative_to(root).with_suffix("").as_posix()


def keyed_images(root: str | os.PathLike, *, hidden: bool = False, strict: bool = True) -> dict[str, Path]:
    """The images under ``root`` by :func:`page_key`, in natural order. Two files with one key are a
    ``SamePageError`` naming both (``strict``), else the later in page order stands."""
    root = Path(root)
    found: dict[str, Path] = {}
    for path in image_paths(root, hidden=hidden):
        key = page_key(path, root)
        if strict and key in found:
            raise SamePageError(f"{path}: same page as {found[key]} (pairing ignores the extension)")
        found[key] = path
    return found


def pair_keyed(left: dict[str, Path], right: dict[str, Path]) -> tuple[list[tuple[str, Path, Path]], list[str], list[str]]:
    """Two folders' keyed pages paired: ``(pairs, only_left, only_right)``, pairs as ``(key, left, right)``
    in natural order, and the keys found on one side only (natural order)."""
    keys = sorted(left.keys() & right.keys(), key=natural_path_key)
    only_left = sorted(left.keys() - right.keys(), key=natural_path_key)
    only_right = sorted(right.keys() - left.keys(), key=natural_path_key)
    return [(k, left[k], right[k]) for k in keys], only_left, only_right


def pair_folders(left_root: str | os.PathLike, right_root: str | os.PathLike, *, hidden: bool = False,
                 strict: bool = True) -> tuple[list[tuple[str, Path, Path]], list[str], list[str]]:
    """The images of two folders paired by relative path, extension-insensitive (:func:`pair_keyed`)."""
    return pair_keyed(keyed_images(left_root, hidden=hidden, strict=strict),
                      keyed_images(right_root, hidden=hidden, strict=strict))
