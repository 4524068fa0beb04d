"""The measurements of ``bench_colorize.py`` that run in fresh processes: ``e2e`` (a Colorizer and
``colorize`` on the chapter, peak memory its own) and ``whole`` (``mangacolor colorize`` as a user runs it,
start-up included, this code and a baseline commit's)."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from colorize_inputs import ROOT, draw_manga_page, model_from_history
from models.toolbox.errors import first_line

# The script that runs one e2e configuration in a child process (``--child``).
BENCH = Path(__file__).resolve().with_name("bench_colorize.py")


def e2e_child(spec: dict) -> dict:
    """One end-to-end run (in a fresh process): load, colorize the chapter, report time and peak RSS."""
    import torch

    from mangacolor_cli.engine.backends import load_session
    from mangacolor_cli.engine.colorizer import Colorizer
    from mangacolor_cli.engine.pipeline import colorize

    if spec.get("torch_threads"):
        torch.set_num_threads(spec["torch_threads"])
    start = time.perf_counter()
    colorizer = Colorizer(spec["model"], backend=spec["backend"], device=spec["device"], size=spec["size"],
                          batch_size=spec["batch"])
    if colorizer.backend == "onnx" and spec.get("ort"):
        colorizer.session, colorizer.provider = load_session(spec["model"], spec["device"], **spec["ort"])
    if spec.get("compose_threads") == "torch":
        compose = colorizer.compose
        colorizer.compose = lambda page, ab, threads=None, **kw: compose(page, ab, **kw)
    load_s = time.perf_counter() - start
    cpu_start = resource.getrusage(resource.RUSAGE_SELF)
    summary = colorize([spec["chapter"]], spec["output"], colorizer=colorizer, overwrite=True,
                       page_format=spec.get("format"), workers=spec.get("workers"), progress=False)
    if summary.failed:
        raise SystemExit(f"e2e run failed: {summary.errors[:3]}")
    return {"load_s": load_s, "seconds": summary.seconds, "pages": summary.done,
            "pages_per_s": summary.done / summary.seconds, "backend_used": colorizer.backend,
            "describe": colorizer.describe(), "peak_rss_mb": _peak_rss_mb(),
            "cpu_s_per_page": _cpu_seconds_since(cpu_start) / max(summary.done, 1)}


def _peak_rss_mb() -> float:
    # VmHWM is this process's own peak; ru_maxrss would carry the parent's peak across exec.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds_since(start) -> float:
    now = resource.getrusage(resource.RUSAGE_SELF)
    return (now.ru_utime - start.ru_utime) + (now.ru_stime - start.ru_stime)


def run_child(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, str(BENCH), "--child", json.dumps(spec)], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_e2e(args, files: dict, chapter: Path, folder: Path, specs: list[dict]) -> list[dict]:
    """Each spec ``repeats`` times, interleaved (A B A B) so load drift from other processes hits all alike."""
    runs: dict[int, list[dict]] = {i: [] for i in range(len(specs))}
    for r in range(args.repeats):
        for i, spec in enumerate(specs):
            full = {"chapter": str(chapter), "output": str(folder / f"out-{i}.cbz"), "size": args.size,
                    "format": args.format, **spec}
            result = run_child(full)
            runs[i].append(result)
            label = " ".join(f"{k}={v}" for k, v in spec.items() if k != "model")
            shown = f"{result['pages_per_s']:.3f} pages/s" if "pages_per_s" in result else result.get("error")
            print(f"  e2e [{r + 1}/{args.repeats}] {label}: {shown}", flush=True)
    rows = []
    for i, spec in enumerate(specs):
        ok = [x for x in runs[i] if "pages_per_s" in x]
        row = {k: v for k, v in spec.items()}
        if not ok:
            row["error"] = runs[i][0].get("error")
        else:
            rates = [x["pages_per_s"] for x in ok]
            row.update(pages_per_s=statistics.median(rates), best_pages_per_s=max(rates), runs=rates,
                       load_s=statistics.median(x["load_s"] for x in ok),
                       peak_rss_mb=max(x["peak_rss_mb"] for x in ok), backend_used=ok[0]["backend_used"],
                       cpu_s_per_page=statistics.median(x["cpu_s_per_page"] for x in ok),
                       describe=ok[0]["describe"])
        rows.append(row)
    return rows


# ``mangacolor`` as its console script runs it; the first model call prints when it starts (the start-up:
# interpreter, imports, options, model load, first decode), on stderr, for measure_whole.
_WHOLE_CODE = ("import functools, sys, time\n"
               "from mangacolor_cli.commands import main\n"
               "from mangacolor_cli.engine.colorizer import Colorizer\n"
               "_predict = Colorizer.predict\n"
               "@functools.wraps(_predict)  # its signature too: colorize asks it for as_numpy\n"
               "def _first(self, *a, **k):\n"
               "    if not getattr(Colorizer, '_bench_seen', False):\n"
               "        Colorizer._bench_seen = True\n"
               "        print(f'BENCH_FIRST_PAGE {time.time():.6f}', file=sys.stderr, flush=True)\n"
               "    return _predict(self, *a, **k)\n"
               "Colorizer.predict = _first\n"
               "sys.argv = ['mangacolor'] + sys.argv[1:]\n"
               "try:\n    main()\nexcept SystemExit as e:\n    sys.exit(e.code)")


def measure_whole(args, folder: Path) -> list[dict]:
    """``mangacolor colorize PAGES -o OUT --model M`` in fresh processes, wall seconds, start-up included."""
    codes = [("now", ROOT)]
    if args.baseline_commit:
        base = folder / f"code-{args.baseline_commit}"
        if not base.exists():
            base.mkdir(parents=True)
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline_commit],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        codes.insert(0, (args.baseline_commit, base))
    from mangacolor_cli.engine.runner import DEFAULT_MODEL
    model_files = {m: model_from_history(m, folder) if m != "default" else str(DEFAULT_MODEL)
                   for m in args.whole_models.split(",")}
    counts = [int(n) for n in args.whole_pages.split(",")]
    inputs = {}
    for n in counts:
        d = folder / f"whole-{n}"
        if not d.exists():
            d.mkdir()
            for i in range(n):
                draw_manga_page(i).save(d / f"{i + 1:03d}.jpg", quality=85)
        inputs[n] = d
    configs = [(code, path, m, n) for n in counts for code, path in codes for m in model_files]
    seconds: dict = {(code, m, n): [] for code, _, m, n in configs}
    startup: dict = {(code, m, n): [] for code, _, m, n in configs}
    errors: dict = {}
    for _ in range(max(1, args.repeats)):
        for code, path, m, n in configs:  # interleaved: every configuration once a round
            out = folder / "whole-out"
            subprocess.run(["rm", "-rf", str(out)], check=True)
            site = args.baseline_site if code != "now" and args.baseline_site else None
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(path), site]))}
            t, wall = time.perf_counter(), time.time()
            proc = subprocess.run([sys.executable, "-c", _WHOLE_CODE, "colorize", str(inputs[n]), "-o", str(out),
                                   "--model", model_files[m]], cwd=path, env=env, capture_output=True, text=True)
            seconds[(code, m, n)].append(time.perf_counter() - t)
            marks = [line.split()[1] for line in proc.stderr.splitlines() if line.startswith("BENCH_FIRST_PAGE ")]
            if marks:
                startup[(code, m, n)].append(float(marks[0]) - wall)
            if proc.returncode:
                errors[(code, m, n)] = first_line(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed")
    rows, first = [], {}
    for code, _, m, n in configs:
        med = statistics.median(seconds[(code, m, n)])
        first.setdefault(n, med)
        row = {"code": code, "model": m, "pages": n, "seconds": round(med, 2), "s_per_page": round(med / n, 3),
               "ratio": round(med / first[n], 3), "runs": [round(x, 2) for x in seconds[(code, m, n)]]}
        if startup[(code, m, n)]:
            # Process start to the first model call: interpreter, imports, options, model load, first decode.
            row["startup_s"] = round(statistics.median(startup[(code, m, n)]), 3)
        if (code, m, n) in errors:
            row["error"] = errors[(code, m, n)]
        rows.append(row)
    return rows
