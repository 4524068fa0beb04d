"""Where one ``mangacolor colorize`` run spends its time: a timeline of its stages, thread by thread.

Runs the command in this process with its stages wrapped (imports, model load, decode, segmentation,
model, compose, encode), times in milliseconds since the process started, so start-up and the
overlap of the pipeline's threads can be read off directly:

    python benchmarks/trace_colorize.py colorize pages/ -o out/
    python benchmarks/trace_colorize.py colorize chapter.cbz --batch-size 4

The process start is read from /proc (Linux); elsewhere times count from the script's first line.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _process_start() -> float:
    """Wall time the process started (Linux: /proc/self/stat's start tick over the boot time), else now."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.time()


T0 = _process_start()
EVENTS: list[tuple[str, str, float, float]] = []


def _now() -> float:
    return time.time() - T0


def _wrap(module: str, owner: str | None, name: str) -> None:
    mod = importlib.import_module(module)
    obj = getattr(mod, owner) if owner else mod
    fn = getattr(obj, name)

    @functools.wraps(fn)  # keeps the signature: colorize asks predict for its parameters
    def timed(*args, **kwargs):
        start = _now()
        try:
            return fn(*args, **kwargs)
        finally:
            EVENTS.append((f"{owner + '.' if owner else ''}{name}", threading.current_thread().name, start, _now()))
    setattr(obj, name, timed)


def main() -> None:
    start = _now()
    EVENTS.append(("python started", "MainThread", start, start))
    from mangacolor_cli.commands import main as cli
    EVENTS.append(("import the command line", "MainThread", start, _now()))
    t = _now()
    import mangacolor_cli.engine.pipeline  # noqa: F401  (what colorize imports on its first call)
    EVENTS.append(("import the pipeline", "MainThread", t, _now()))
    for module, owner, name in [
        ("mangacolor_cli.engine.backends", None, "load_session"),
        ("mangacolor_cli.engine.colorizer", "Colorizer", "__init__"),
        ("mangacolor_cli.engine.run", "_ColorizeRun", "_decode"),
        ("models.paint.regions", None, "segment_regions"),
        ("mangacolor_cli.engine.colorizer", "Colorizer", "predict"),
        ("mangacolor_cli.engine.colorizer", "Colorizer", "compose"),
        ("mangacolor_cli.engine.run", "_ColorizeRun", "_encode"),
        ("mangacolor_cli.engine.run", "_ColorizeRun", "_finish_job"),
    ]:
        _wrap(module, owner, name)
    sys.argv = ["mangacolor", *sys.argv[1:]]
    try:
        cli()
    except SystemExit:
        pass
    t = _now()
    EVENTS.append(("command done", "MainThread", t, t))
    print(f"\n{'start ms':>8} {'end ms':>7} {'took':>6}  thread        stage", file=sys.stderr)
    for name, thread, s, e in sorted(EVENTS, key=lambda x: x[2]):
        print(f"{s * 1e3:8.0f} {e * 1e3:7.0f} {1e3 * (e - s):6.0f}  {thread:13s} {name}", file=sys.stderr)


if __name__ == "__main__":
    main()
