"""Output planning: where each input's output goes (``-o``, beside it, a mirrored folder), one ``Job`` each.

Never over an input, never two inputs onto one output; temp files of killed runs are cleared from
every target folder before anything is written (docs/ARCHITECTURE.md, "Inference I/O").
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from models.toolbox.files import clean_stale_temps, fit_name, is_temp_name
from models.toolbox.images import format_of_name, natural_path_key

from ..errors import InputError, OutputError, UsageError
from .compare import is_comparison
from .images import EXTENSION_BY_FORMAT, WRITABLE_FORMATS, is_other_image_name, is_page_name
from .sources import ARCHIVE_EXTENSIONS, NOT_ZIP_EXTENSIONS, ArchiveJob, CopyJob, ImageJob, Job, ReportedJob


def output_name(name: str, fmt: str | None) -> str:
    """A page's output name: its own, or with the extension of ``fmt`` when a format is forced."""
    if not fmt:
        return name
    stem, dot, ext = name.rpartition(".")
    new_ext = EXTENSION_BY_FORMAT[fmt]
    if dot and format_of_name(name) == ("jpeg" if fmt in ("jpg", "jpeg") else fmt):
        return name
    return (stem if dot else name) + new_ext



def is_archive_name(name: str) -> bool:
    return Path(name).suffix.lower() in ARCHIVE_EXTENSIONS


def is_color_output_name(name: str) -> bool:
    """``page.color.png``, ``chapter.color.cbz``: what an earlier run wrote beside its input, never an input."""
    return Path(name).stem.lower().endswith(".color")


def default_output(source: Path, fmt: str | None = None) -> Path:
    """Where an input's output goes when ``-o`` is not given: beside it, marked as colored."""
    if source.is_dir():
        return source.with_name(source.name + "_color")
    suffix = source.suffix.lower()
    if suffix in ARCHIVE_EXTENSIONS:
        return source.with_name(source.stem + ".color" + (".cbz" if suffix in NOT_ZIP_EXTENSIONS else suffix))
    return source.with_name(output_name(source.stem + ".color" + source.suffix, fmt))


def _archive_target_name(name: str) -> str:
    path = Path(name)
    return path.stem + ".cbz" if path.suffix.lower() in NOT_ZIP_EXTENSIONS else name


def plan_jobs(inputs: list[str | os.PathLike], output: str | os.PathLike | None = None,
              fmt: str | None = None, *, skip: tuple[str | os.PathLike, ...] = ()) -> list[Job]:
    """Turn input paths into jobs with their targets; raises ``InputError``/``OutputError``/``UsageError``.

    ``skip``: files and folders inside an input folder that are never read as its pages (``--hints``)."""
    if not inputs:
        raise UsageError("no input given: pass image files, folders or CBZ/ZIP/CBR archives")
    sources = [Path(p).expanduser() for p in inputs]
    for src in sources:
        if not src.exists():
            raise InputError(f"{src}: no such file or folder")
        if not (src.is_file() or src.is_dir()):
            raise InputError(f"{src}: not a regular file or folder")
        if src.is_file() and not (is_page_name(src.name) or is_archive_name(src.name)):
            raise InputError(f"{src}: not a supported page image or archive "
                             "(PNG, JPEG, WebP, BMP, TIFF, CBZ, ZIP, CBR)")
    out = Path(output).expanduser() if output is not None else None
    # One folder mirrors into ``out`` itself (``-o DIR`` and ``-o DIR/`` alike), existing or not, so a rerun
    # finds (and skips) what the first wrote; never into ``out/<folder name>``.
    single_folder = len(sources) == 1 and sources[0].is_dir()
    into_folder = out is not None and not single_folder and (len(sources) > 1 or names_a_folder(output))
    if out is not None and (single_folder or into_folder) and (out.is_file() or out.is_symlink()) \
            and not out.is_dir():
        raise OutputError(f"{out}: is an existing file; -o here is a folder (several inputs, a folder input, "
                          "or a name without an extension)")
    target_format = None
    if out is not None and not (single_folder or into_folder):
        target_format = _target_format(sources[0], out, fmt)
    jobs: list[Job] = []
    for src in sources:
        if out is None:
            target = default_output(src, fmt)
        elif into_folder:
            name = src.name if src.is_dir() else (_archive_target_name(src.name) if is_archive_name(src.name)
                                                   else output_name(src.name, fmt))
            target = out / name
        else:
            target = out
        if out is None or into_folder:
            target = target.with_name(fit_name(target.name))
        if src.is_dir():
            jobs.extend(_folder_jobs(src, target, fmt, skip))
        elif is_archive_name(src.name):
            jobs.append(ArchiveJob(src, target))
        else:
            jobs.append(ImageJob(src, target, fmt=target_format))
    _refuse_overwriting_inputs(jobs, sources, [Path(h).expanduser() for h in skip])
    # Temp files of killed runs (their pid dead) would otherwise pile up beside finished outputs.
    for folder in {job.target.parent for job in jobs}:
        clean_stale_temps(folder)
    return jobs


def names_a_folder(output: str | os.PathLike) -> bool:
    """``-o`` for one file input names a folder (its output goes inside, under the input's own name) when it
    ends in a separator, is an existing folder, or has no extension (an output file always has one)."""
    text = os.fspath(output)
    path = Path(text).expanduser()
    return text.endswith(("/", os.sep)) or path.is_dir() or not path.suffix


def _target_format(src: Path, out: Path, fmt: str | None) -> str | None:
    """``-o FILE`` for one file input: its extension says what is written in it (never PNG bytes in
    ``out.jpg``, never a ZIP in ``ch.png``, never an archive run "finished" by an unrelated ``notes.txt``).
    For a page, the format its extension names (None: the page's own, or ``--format``'s)."""
    if is_archive_name(src.name):
        if out.suffix.lower() not in (".cbz", ".zip"):
            raise UsageError(f"-o {out}: the output of an archive is a CBZ/ZIP archive; name it .cbz or .zip")
        return None
    named = format_of_name(out.name)
    if named not in WRITABLE_FORMATS:
        raise UsageError(f"-o {out}: not an image format mangacolor writes; name it "
                         f"{', '.join(sorted(set(EXTENSION_BY_FORMAT.values())))} (or end it with / for a folder)")
    forced = fmt and ("jpeg" if fmt in ("jpg", "jpeg") else fmt)
    if forced and named != forced:
        raise UsageError(f"-o {out}: --format {fmt} writes {forced.upper()}; name the output "
                         f"{EXTENSION_BY_FORMAT[forced]}, or leave --format out to write {named.upper()}")
    # The output's own extension chooses the format: page.jpg -o page.png writes a PNG.
    return None if named == format_of_name(src.name) else named


def _folder_jobs(folder: Path, target_root: Path, fmt: str | None,
                 skip: tuple[str | os.PathLike, ...] = ()) -> list[Job]:
    root = folder.resolve()
    skip_dirs = {target_root.resolve(), *(Path(p).expanduser().resolve() for p in skip)}
    found: list[str] = []
    others: list[str] = []
    unreadable: list[ReportedJob] = []

    def report(path: Path, why: str) -> None:
        unreadable.append(ReportedJob(path, target_root, f"{path}: {why}"))

    def walk_error(e: OSError) -> None:  # a folder too deep to open (a path over PATH_MAX), no permission
        report(Path(e.filename or folder), f"cannot read folder, its pages are not colored ({e.strerror or e})")

    for dirpath, dirnames, filenames in os.walk(root, onerror=walk_error):
        here = Path(dirpath)
        # Never read our own output (or the hint folder) back in when it lives inside the input folder.
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and (here / d).resolve() not in skip_dirs]
        for fname in filenames:
            if fname.startswith(".") or is_temp_name(fname) or is_color_output_name(fname):
                continue
            if is_comparison(here / fname):  # a --compare picture written into the input folder is not a page
                continue
            if skip and (here / fname).resolve() in skip_dirs:  # a --hints file is a hint, not a page
                continue
            if not (is_page_name(fname) or is_archive_name(fname) or is_other_image_name(fname)):
                others.append((here / fname).relative_to(root).as_posix())  # ComicInfo.xml and the like: copied
                continue
            if is_page_name(fname) or is_archive_name(fname):
                kind = _file_kind(here / fname)
                if kind == "file":
                    found.append((here / fname).relative_to(root).as_posix())
                elif kind != "special":  # FIFOs and devices are skipped on purpose; anything else is said
                    report(here / fname, f"cannot read, not colored ({kind})")
            elif is_other_image_name(fname):
                report(here / fname, "an image format mangacolor cannot color; not colored")
    if not found and not unreadable:
        # Nothing to color is said in one line (exit 1), never a silent "0 colored"; nothing is copied.
        return [ReportedJob(folder, target_root, f"{folder}: no pages to color in this folder (no image "
                                                 "file, no CBZ/ZIP/CBR archive)")]
    found.sort(key=natural_path_key)
    jobs: list[Job] = list(unreadable)
    for rel in found:
        src = folder / rel
        target = target_root / (_archive_target_name(rel) if is_archive_name(rel) else output_name(rel, fmt))
        target = target.with_name(fit_name(target.name))
        if is_archive_name(rel):
            jobs.append(ArchiveJob(src, target, label=str(src)))
        else:
            jobs.append(ImageJob(src, target, label=str(src), keep_original=True))
    for rel in sorted(others, key=natural_path_key):
        if _file_kind(folder / rel) == "file":
            jobs.append(CopyJob(folder / rel, target_root / rel, label=str(folder / rel)))
    return jobs


def _file_kind(path: Path) -> str:
    """``"file"``, ``"special"`` (a FIFO or device named page.png would hang the run: skipped), or why it
    cannot be read (a path over PATH_MAX, a dangling link). Links to regular files are fine."""
    try:
        mode = path.stat().st_mode
    except OSError as e:
        return e.strerror or str(e)
    return "file" if stat.S_ISREG(mode) else ("other" if stat.S_ISDIR(mode) else "special")


def _refuse_overwriting_inputs(jobs: list[Job], sources: list[Path], hints: list[Path]) -> None:
    jobs = [j for j in jobs if not isinstance(j, ReportedJob)]  # they write nothing
    inputs = {j.source.resolve() for j in jobs} | {s.resolve() for s in sources if s.is_file()}
    hint_folders = [h.resolve() for h in hints if h.is_dir()]
    inputs |= {h.resolve() for h in hints if h.is_file()}
    for job in jobs:
        target = job.target.resolve()
        # A hint file is an input too: ``-o hint.png --hints hint.png`` (or -o into the hint folder) never replaces one.
        if target in inputs or (target.is_file() and any(target.is_relative_to(f) for f in hint_folders)):
            raise OutputError(f"{job.target}: output would overwrite an input; choose another -o")
    targets = [j.target.resolve() for j in jobs]
    if len(set(targets)) != len(targets):
        dup = next(t for t in targets if targets.count(t) > 1)
        raise OutputError(f"{dup}: two inputs would write the same output; choose another -o")
