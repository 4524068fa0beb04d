"""Colorize throughput: the I/O bound, the compute bound and end to end, side by side in one run.

Builds a realistic chapter (N gray 1200x1700 JPEG pages of line art with screentones, as a CBZ),
then measures, for each backend/device/precision/batch size asked for:

1. ``io``     decode + encode alone, no model, in the pipeline's thread pools (pages/s);
2. ``model``  the model alone on batched tensors at the working size (pages/s);
3. ``e2e``    ``mangacolor colorize`` on the chapter (pages/s, model load time, peak RSS), each
              configuration in its own process so its peak memory is its own;
plus ``stages`` (one page, stage by stage: where the time goes), ``knobs`` (thread counts,
onnxruntime spinning and graph optimization), ``compose`` (the torch compose against the numpy one
that colorize runs on the CPU, interleaved) and ``whole`` (``mangacolor colorize`` as a user runs it,
start-up included: 16 pages and 1 page, each model and each code version in fresh processes,
interleaved rounds, ratios to the first, and the time from the process start to the first model
call). Prints tables and writes everything to JSON (in the work folder unless ``--out``).
``benchmarks/trace_colorize.py`` shows where one run's time goes, stage by stage and thread by thread.

The working size defaults to the model's own (its ONNX metadata or checkpoint). ``--model v1`` is
the first shipped default model (U-Net base 16, depth 5, working size 320), read from git history,
so a heavier new default does not hide what the pipeline gained:

    python benchmarks/bench_colorize.py --sections whole --whole-models v1,default --baseline-commit 3792695

    python benchmarks/bench_colorize.py --quick
    python benchmarks/bench_colorize.py --pages 12 --batch-sizes 1,2,4,8 --out benchmarks/results/cpu.json
    python benchmarks/bench_colorize.py --model mangacolor_cli/weights/default.onnx --sections e2e

Speed does not depend on the weights, so without ``--model`` (and without a shipped default model)
a U-Net with random weights stands in for the default model (``--base``/``--depth``).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Beside this script (its folder is on the path): the chapter and models it runs on, the fresh-process runs.
from colorize_inputs import (PAGE_H, PAGE_W, build_chapter, chapter_pages, model_from_history,  # noqa: E402
                             model_working_size, prepare_model)
from colorize_processes import e2e_child, measure_e2e, measure_whole  # noqa: E402
from models.toolbox.errors import first_line  # noqa: E402


# ---------------------------------------------------------------------------- measurements
def _timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up: allocator, thread pools, onnxruntime's first-run planning
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _summary(seconds: list[float], items: int) -> dict:
    med = statistics.median(seconds)
    return {"pages_per_s": items / med, "best_pages_per_s": items / min(seconds), "seconds": seconds}


def measure_io(data: list[bytes], workers: int, repeats: int, fmt: str) -> dict:
    """Decode and encode every page in thread pools, as the pipeline does around the model."""
    from mangacolor_cli.pages.images import decode_page as decode_image
    from mangacolor_cli.pages.images import encode_image

    def one(blob: bytes) -> int:
        page = decode_image(blob, "page.jpg")
        rgb = np.repeat(page.pixels[..., None], 3, axis=2)
        return len(encode_image(rgb, fmt, quality=90))

    def run():
        with cf.ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, data))

    return _summary(_timed(run, repeats), len(data))


def measure_stages(args, files: dict, data: list[bytes]) -> list[dict]:
    """One page through each stage in turn: where a page's time goes."""
    import torch

    from mangacolor_cli.engine.colorizer import Colorizer
    from mangacolor_cli.pages.images import decode_page as decode_image
    from mangacolor_cli.pages.images import encode_image

    rows = []
    blob = data[0]
    page = decode_image(blob, "page.jpg")
    rows.append({"stage": "decode (JPEG, gray)", "seconds": min(_timed(lambda: decode_image(blob, "p.jpg"), 5))})
    draft = _draft_decode_seconds(blob)
    rows.append({"stage": "decode, RGB JPEG of a gray page", "seconds": draft["rgb"]})
    rows.append({"stage": "decode, same with draft('L') (Y plane only)", "seconds": draft["draft"]})
    for backend in ("torch", "onnx"):
        if files[backend] is None:
            continue
        c = Colorizer(files[backend], backend=backend, device="cpu", size=args.size, batch_size=1)
        ab = c.predict_ab([page])[0]
        rows.append({"stage": f"predict_ab, {backend} (resize + model)",
                     "seconds": min(_timed(lambda: c.predict_ab([page]), args.repeats))})
    rows.append({"stage": f"compose, {torch.get_num_threads()} torch threads",
                 "seconds": min(_timed(lambda: c.compose(page, ab), 3))})
    rows.append({"stage": "compose, 1 torch thread", "seconds": min(_timed(lambda: c.compose(page, ab, threads=1), 3))})
    rows.append({"stage": "compose, before this work (kornia Lab->sRGB, float64 k)",
                 "seconds": min(_timed(lambda: _previous_compose(page, ab), 2))})
    rgb = c.compose(page, ab)
    for fmt in ("jpg", "png", "webp"):
        rows.append({"stage": f"encode {fmt}", "seconds": min(_timed(lambda: encode_image(rgb, fmt, quality=90), 3))})
    return rows


def _draft_decode_seconds(blob: bytes) -> dict:
    gray = Image.open(io.BytesIO(blob)).convert("RGB")
    buf = io.BytesIO()
    gray.save(buf, "JPEG", quality=85)
    rgb_blob = buf.getvalue()

    def plain():
        img = Image.open(io.BytesIO(rgb_blob))
        arr = np.asarray(img)
        return np.array_equal(arr[..., 0], arr[..., 1])

    def draft():
        img = Image.open(io.BytesIO(rgb_blob))
        img.draft("L", img.size)
        return np.asarray(img)

    return {"rgb": min(_timed(plain, 5)), "draft": min(_timed(draft, 5))}


def _previous_compose(page, ab):
    """The compose this work replaced (kept here only to measure against)."""
    import math

    import torch
    import torch.nn.functional as F
    from kornia.color import linear_rgb_to_rgb, rgb_to_linear_rgb

    from models import color
    from models.paint.page import page_lightness

    luma = (0.212671, 0.715160, 0.072169)  # linear-sRGB luminance weights (kornia's rgb_to_xyz Y row)

    L = page_lightness(page.pixels)
    ab = F.interpolate(ab, size=L.shape[-2:], mode="bilinear", align_corners=False)
    rgb = color.lab_to_rgb(torch.cat([L, ab], dim=1), clip=False)
    lin = rgb_to_linear_rgb(rgb)
    Y = (lin * torch.tensor(luma).view(1, 3, 1, 1)).sum(dim=1, keepdim=True).clamp(0.0, 1.0)
    d = lin - Y
    inf = torch.full_like(d, math.inf)
    up = torch.where(d > 1e-9, (1.0 - Y) / d.clamp_min(1e-9), inf)
    down = torch.where(d < -1e-9, Y / (-d).clamp_min(1e-9), inf)
    k = torch.minimum(up, down).amin(dim=1, keepdim=True).clamp(0.0, 1.0)
    out = linear_rgb_to_rgb((Y + k * d).clamp(0.0, 1.0)).clamp(0.0, 1.0)
    return out[0].mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def measure_model(args, files: dict, device: str) -> list[dict]:
    """The model alone on ``[B, 1, h, w]`` batches at the working shape of a 1200x1700 page."""
    import torch

    import models
    from mangacolor_cli.engine.backends import load_session, read_onnx_meta

    # Pad to the model's stride as the Colorizer does (a depth-5 U-Net needs multiples of 32).
    stride = int(read_onnx_meta(files["onnx"]).get("stride", 16)) if files.get("onnx") else 32
    h = -(-args.size // stride) * stride
    w = -(-round(PAGE_W * args.size / PAGE_H) // stride) * stride
    rows = []
    for backend in args.backends:
        if files.get(backend) is None:
            continue
        for precision in args.precisions:
            if backend == "onnx" and precision not in ("fp32", "int8"):
                continue  # the session is the float32 export; a float16 one is `export_onnx(..., half=True)`
            if precision == "int8" and (backend != "onnx" or device != "cpu" or not files.get("int8")):
                continue  # int8: the onnx model's ungated twin (files["int8"]), on the CPU
            if backend == "torch" and precision == "fp16" and device == "cpu":
                continue  # no float16 convolutions worth timing on a CPU
            if backend == "torch" and device == "cpu" and precision == "fp32":
                rows += _colorizer_torch_rows(args, files, h, w)
            if backend == "torch":
                net = models.load_model(files["torch"]).eval().to(device)
                if device == "cuda":
                    net = net.to(memory_format=torch.channels_last)
                dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]

                def call(x, net=net, dtype=dtype):
                    with torch.inference_mode(), torch.autocast(device, dtype=dtype, enabled=precision != "fp32"):
                        net.colorize(x)
                    if device == "cuda":
                        torch.cuda.synchronize()
            else:
                session, _ = load_session(files["int8" if precision == "int8" else "onnx"], device)

                def call(x, session=session):
                    session.run(None, {"input": x.cpu().numpy()})
            for batch in args.batch_sizes:
                x = torch.rand(batch, 1, h, w, device=device if backend == "torch" else "cpu") * 2 - 1
                if backend == "torch" and device == "cuda":
                    x = x.contiguous(memory_format=torch.channels_last)
                try:
                    seconds = _timed(lambda: call(x), args.repeats)
                except Exception as e:  # out of memory at a large batch: record and go on
                    rows.append({"backend": backend, "device": device, "precision": precision, "batch": batch,
                                 "error": first_line(e)[:120]})
                    continue
                rows.append({"backend": backend, "device": device, "precision": precision, "batch": batch,
                             "shape": [batch, 1, h, w], **_summary(seconds, batch)})
                print(f"  model {backend} {device} {precision} batch {batch}: {rows[-1]['pages_per_s']:.3f} pages/s",
                      flush=True)
    return rows


def int8_twin(files: dict, folder: Path, data: list[bytes]) -> str:
    """The onnx model quantized to int8 (static QDQ, per-channel, calibrated on the chapter's pages), with
    no quality gate: for timing only (``mangacolor quantize`` gates the files users get)."""
    from mangacolor_cli.engine.colorizer import Colorizer
    from mangacolor_cli.delivery.quantize import quantize_file
    from models.toolbox.images import DecodedPage

    out = folder / (Path(files["onnx"]).stem + "-int8.onnx")
    if not out.exists():
        run = Colorizer(files["onnx"], device="cpu")
        pages = [DecodedPage(np.asarray(Image.open(io.BytesIO(blob)).convert("L"))) for blob in data[:8]]
        quantize_file(Path(files["onnx"]), out, [run.model_input(p)[None, None] for p in pages], folder)
    return str(out)


def _colorizer_torch_rows(args, files: dict, h: int, w: int) -> list[dict]:
    """The torch model as the Colorizer calls it on the CPU: a batch spread one page per thread."""
    import torch

    from mangacolor_cli.engine.colorizer import Colorizer

    colorizer = Colorizer(files["torch"], backend="torch", device="cpu", size=args.size)
    rows = []
    for batch in args.batch_sizes:
        x = torch.rand(batch, 1, h, w) * 2 - 1
        seconds = _timed(lambda: colorizer._run_model(x), args.repeats)
        rows.append({"backend": "torch (Colorizer: 1 thread per page)", "device": "cpu", "precision": "fp32",
                     "batch": batch, "shape": [batch, 1, h, w], **_summary(seconds, batch)})
        print(f"  model torch, one thread per page, batch {batch}: {rows[-1]['pages_per_s']:.3f} pages/s", flush=True)
    return rows


# ---------------------------------------------------------------------------- report
def _table(title: str, rows: list[dict], columns: list[tuple[str, str]]) -> str:
    lines = [f"\n{title}", "| " + " | ".join(c for _, c in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for key, _ in columns:
            v = row.get(key, "")
            cells.append(f"{v:.3f}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def hardware() -> dict:
    import onnxruntime
    import torch

    cpu = platform.processor() or ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "load_average_start": os.getloadavg()}


def measure_compose(args, data: list[bytes]) -> list[dict]:
    """The torch compose (models.paint.compose, one thread) against the numpy one (models.paint.compose_cpu), CPU time."""
    import torch

    from models import color
    from models.paint import compose as torch_compose
    from models.paint import compose_cpu
    from models.paint import regions as rg
    torch.set_num_threads(1)
    rows = []
    rng = np.random.default_rng(0)
    for fill in ("soft", "flat"):
        t_torch, t_numpy, worst = [], [], 0
        for blob in data[: min(len(data), 6)]:
            gray = np.asarray(Image.open(io.BytesIO(blob)).convert("L"))
            H, W = gray.shape
            h, w = round(H * args.size / max(H, W)), round(W * args.size / max(H, W))
            coarse = rng.normal(0, 40, (2, h // 8 + 2, w // 8 + 2)).astype(np.float32)
            ab = np.clip(compose_cpu.resize_bilinear(coarse, (h, w)), -110, 110)
            regions = rg.segment_regions(gray)  # both get it: the segmentation is the same code
            L = color.gray_level_lightness(256)[torch.from_numpy(gray.astype(np.int64))][None, None]
            abt = torch.from_numpy(ab)[None]
            for _ in range(args.repeats + 1):
                t = time.process_time()
                want = torch_compose.compose(L, abt, gray=gray, fill=fill, regions=regions).numpy()
                t_torch.append(time.process_time() - t)
                t = time.process_time()
                got = compose_cpu.compose(ab, gray=gray, fill=fill, regions=regions)
                t_numpy.append(time.process_time() - t)
            worst = max(worst, int(np.abs(got.astype(int) - want.astype(int)).max()))
        a, b = statistics.median(t_torch), statistics.median(t_numpy)
        rows.append({"fill": fill, "torch_s": round(a, 4), "numpy_s": round(b, 4),
                     "numpy_over_torch": round(b / a, 3), "max_level_difference": worst})
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="a .pt checkpoint or .onnx file (default: the shipped default model, "
                                   "else a random-weight U-Net)")
    p.add_argument("--base", type=int, default=16, help="random U-Net width (the default model is trained at 16; "
                                                        "the 'small' preset is 24)")
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--size", type=int, default=None,
                   help="working size (long side); default: the model's own, else 768")
    p.add_argument("--pages", type=int, default=12)
    p.add_argument("--batch-sizes", default="1,2,4,8,16,32")
    p.add_argument("--e2e-batch-sizes", default="1,4,8", help="batch sizes end to end (each is a full chapter run)")
    p.add_argument("--backends", default="torch,onnx")
    p.add_argument("--devices", default=None, help="cpu,cuda (default: cpu, and cuda when torch sees a GPU)")
    p.add_argument("--precisions", default="fp32,fp16,bf16",
                   help="fp32, fp16, bf16 (torch), int8 (onnx on the CPU: the model's ungated int8 twin)")
    p.add_argument("--format", default=None, help="output format end to end (default: each page's own, JPEG)")
    p.add_argument("--sections", default="stages,io,model,e2e,knobs")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="4 pages, batch 1 and 4, one repeat, no knobs")
    p.add_argument("--workdir", default=None, help="where the chapter and models go (default: a temp folder)")
    p.add_argument("--whole-models", default="v1,default",
                   help="models of the whole section (v1 = the first shipped default from git history)")
    p.add_argument("--whole-pages", default="16,1", help="chapter lengths of the whole section")
    p.add_argument("--baseline-commit", default=None,
                   help="whole section: also run the code of this commit (git archive), for before/after ratios")
    p.add_argument("--baseline-site", default=None,
                   help="whole section: a folder put on the baseline code's PYTHONPATH before site-packages "
                        "(the packages it ran with, e.g. pip install --target DIR typer==0.29.2)")
    p.add_argument("--out", default=None, help="the JSON report (default: results.json in the work folder, "
                                               "outside the repository)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(e2e_child(json.loads(args.child))))
        return
    import torch

    if args.quick:
        args.pages, args.batch_sizes, args.e2e_batch_sizes, args.repeats = 4, "1,4", "1,4", 1
        args.sections = ",".join(s for s in args.sections.split(",") if s != "knobs")
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    args.e2e_batch_sizes = [int(b) for b in args.e2e_batch_sizes.split(",")]
    args.backends = args.backends.split(",")
    args.precisions = args.precisions.split(",")
    devices = args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    sections = set(args.sections.split(","))
    folder = Path(args.workdir or tempfile.mkdtemp(prefix="mangacolor-bench-"))
    folder.mkdir(parents=True, exist_ok=True)

    report: dict = {"hardware": hardware(), "args": {k: v for k, v in vars(args).items() if k != "child"}}
    print(f"hardware: {report['hardware']}", flush=True)
    chapter = build_chapter(folder, args.pages)
    data = chapter_pages(chapter)
    if args.size is None:
        picked = model_from_history(args.model, folder) if args.model else None
        if picked is None:
            from mangacolor_cli.engine.runner import DEFAULT_MODEL
            picked = str(DEFAULT_MODEL)
        args.size = model_working_size(picked) or 768
        report["args"]["size"] = args.size
    files = prepare_model(args, folder)
    if "int8" in args.precisions and files.get("onnx") and "model" in sections:
        files["int8"] = int8_twin(files, folder, data)
    report["model"] = files["source"]
    text = [f"model: {files['source']}, working size {args.size}, {args.pages} pages of {PAGE_W}x{PAGE_H} JPEG"]
    workers = max(1, min(4, os.cpu_count() or 1))

    if "stages" in sections:
        report["stages"] = measure_stages(args, files, data)
        text.append(_table("One page, stage by stage (best of runs)", report["stages"],
                           [("stage", "stage"), ("seconds", "seconds")]))
    if "io" in sections:
        report["io"] = [{"what": f"decode + encode {fmt}, {workers} threads", **measure_io(data, workers, args.repeats, fmt)}
                        for fmt in ("jpg", "png")]
        text.append(_table("I/O bound (no model)", report["io"], [("what", "what"), ("pages_per_s", "pages/s")]))
    if "model" in sections:
        report["model_alone"] = [row for device in devices for row in measure_model(args, files, device)]
        text.append(_table("Model alone (compute bound)", report["model_alone"],
                           [("backend", "backend"), ("device", "device"), ("precision", "precision"),
                            ("batch", "batch"), ("pages_per_s", "pages/s"), ("error", "error")]))
    specs = []
    if "e2e" in sections:
        for device in devices:
            for batch in args.e2e_batch_sizes:
                for backend in args.backends:
                    if files.get(backend):
                        specs.append({"backend": backend, "device": device, "batch": batch, "model": files[backend]})
            if files["torch"]:
                specs.append({"backend": "auto", "device": device, "batch": 4, "model": files["torch"]})
        report["e2e"] = measure_e2e(args, files, chapter, folder, specs)
        text.append(_table("End to end: colorize the chapter (median of runs; load time excluded from pages/s)",
                           report["e2e"], [("backend", "backend"), ("device", "device"), ("batch", "batch"),
                                           ("backend_used", "ran as"), ("pages_per_s", "pages/s"),
                                           ("best_pages_per_s", "best"), ("cpu_s_per_page", "CPU s/page"),
                                           ("load_s", "load s"),
                                           ("peak_rss_mb", "peak RSS MB"), ("error", "error")]))
        ratios = []
        for batch in args.e2e_batch_sizes:
            pair = {r["backend"]: r for r in report["e2e"] if r.get("batch") == batch and r.get("device") == "cpu"}
            if "pages_per_s" in pair.get("onnx", {}) and "pages_per_s" in pair.get("torch", {}):
                ratios.append({"batch": batch, "onnx_over_torch": pair["onnx"]["pages_per_s"] / pair["torch"]["pages_per_s"]})
        report["e2e_ratios"] = ratios
        text.append(_table("onnx / torch end to end, CPU, same run", ratios,
                           [("batch", "batch"), ("onnx_over_torch", "onnx/torch")]))
    if "knobs" in sections and files.get("onnx"):
        knob_specs = [
            {"backend": "onnx", "device": "cpu", "batch": 1, "model": files["onnx"], "ort": {"spinning": True}},
            {"backend": "onnx", "device": "cpu", "batch": 1, "model": files["onnx"], "ort": {"spinning": False}},
            {"backend": "onnx", "device": "cpu", "batch": 1, "model": files["onnx"], "ort": {"threads": 1, "spinning": False}},
            {"backend": "onnx", "device": "cpu", "batch": 1, "model": files["onnx"], "ort": {"optimization": "basic"}},
            {"backend": "onnx", "device": "cpu", "batch": 1, "model": files["onnx"], "compose_threads": "torch"},
            {"backend": "onnx", "device": "cpu", "batch": 1, "model": files["onnx"], "workers": 1},
        ]
        if files.get("torch"):
            knob_specs += [
                {"backend": "torch", "device": "cpu", "batch": 1, "model": files["torch"], "torch_threads": 1},
                {"backend": "torch", "device": "cpu", "batch": 1, "model": files["torch"], "torch_threads": 2},
            ]
        report["knobs"] = measure_e2e(args, files, chapter, folder, knob_specs)
        for row in report["knobs"]:
            row["knob"] = " ".join(f"{k}={v}" for k, v in row.items()
                                   if k in ("ort", "compose_threads", "workers", "torch_threads"))
        text.append(_table("Knobs, end to end, batch 1", report["knobs"],
                           [("backend", "backend"), ("knob", "knob"), ("pages_per_s", "pages/s"),
                            ("best_pages_per_s", "best"), ("cpu_s_per_page", "CPU s/page"), ("error", "error")]))
    if "compose" in sections:
        report["compose"] = measure_compose(args, data)
        text.append(_table("Compose of one 1200x1700 page, CPU seconds (median; torch on 1 thread, as colorize "
                           "ran it before; interleaved)", report["compose"],
                           [("fill", "fill"), ("torch_s", "torch"), ("numpy_s", "numpy"),
                            ("numpy_over_torch", "numpy/torch"), ("max_level_difference", "max diff")]))
    if "whole" in sections:
        report["whole"] = measure_whole(args, folder)
        text.append(_table("Whole process: mangacolor colorize (median seconds of interleaved rounds; "
                           "ratio to the first row of the same page count)", report["whole"],
                           [("code", "code"), ("model", "model"), ("pages", "pages"), ("seconds", "s"),
                            ("s_per_page", "s/page"), ("ratio", "ratio"), ("startup_s", "to first page s"),
                            ("error", "error")]))
    report["hardware"]["load_average_end"] = os.getloadavg()
    report["text"] = "\n".join(text)
    print(report["text"])
    out = Path(args.out or folder / "results.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
