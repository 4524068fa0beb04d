"""Every registered model trained for the same CPU time on the same data, then scored side by side.

    python benchmarks/compare_models.py                      # ~12 min of training per model, then eval
    python benchmarks/compare_models.py --minutes 0.2 --out /tmp/cmp --pages 4   # a smoke run

Each model trains with ``mangacolor train --max-minutes`` (the budget counts training steps and the data
they waited for; validation and checkpoints are not counted) on pages composed on the fly from
data/drawings (corpus v2, ``scripts/fetch_data.py``), at one crop size and batch, with each model's
CPU-sized preset. Its best.pt (lowest validation CIEDE2000 on VAL pages from each validation set) is
then exported to ONNX (``mangacolor export``, checked against PyTorch), scored by ``mangacolor eval`` on
every ``data/pages/val_*`` set with the flat and the soft fill, timed by ``mangacolor colorize`` and
drawn on the same four held-out pages. Everything runs as a user runs it: the installed ``mangacolor``
in a fresh process each time, one at a time (nothing else should run on the machine).

Resumable: a stage whose result file exists in OUT/<model>/ is skipped; delete the file to redo it.
Prints the tables (markdown) and writes OUT/results.json and OUT/grid.jpg.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = ("autoencoder", "unet", "pix2pix", "pix2pixhd", "cyclegan", "eccv16", "effunet")
# The CPU-sized preset of each model: "tiny" everywhere but effunet, whose frozen pretrained encoder is what
# makes it trainable on a CPU (and what the shipped default is).
CPU_PRESETS = {"effunet": "full"}
SETS = ("val_clipart", "val_comicgen", "val_dicebear", "val_gray", "val_openmoji")
# The four held-out pages of the picture grid (one per set, never in the validation pages below).
GRID_PAGES = (("val_comicgen", "00020"), ("val_dicebear", "00020"), ("val_openmoji", "00020"), ("val_gray", "00020"))


def run(cmd: list[str], log: Path) -> subprocess.CompletedProcess:
    """One command in a fresh process, its output appended to ``log``; exits on failure with the log's tail."""
    print("$ " + " ".join(cmd), flush=True)
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=f, text=True, cwd=ROOT)
        f.write(done.stdout)
    if done.returncode != 0:
        tail = "".join(open(log).readlines()[-15:])
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{tail}")
    return done


def val_folder(out: Path, pages: int) -> Path:
    """The validation pages that pick each best.pt: the first ``pages`` of each set (symlinks)."""
    val = out / "val"
    for kind in ("bw", "color"):
        (val / kind).mkdir(parents=True, exist_ok=True)
    for s in SETS:
        for i in range(pages):
            for kind in ("bw", "color"):
                link = val / kind / f"{s}_{i:05d}.png"
                if not link.exists():
                    link.symlink_to(ROOT / "data" / "pages" / s / kind / f"{i:05d}.png")
    return val


def train_images_per_s(metrics: Path) -> tuple[float, int]:
    """Training images per second over the whole run (from metrics.jsonl's windows) and the last step."""
    images = seconds = 0.0
    step = 0
    for line in metrics.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("kind") == "train" and rec.get("images_per_s"):
            step = max(step, rec["step"])
            images += 1
            seconds += 1 / rec["images_per_s"]
    return (images / seconds if seconds else 0.0), step


def one_model(name: str, args, val: Path) -> dict:
    folder = args.out / name
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "log.txt"
    preset = CPU_PRESETS.get(name, "tiny")
    best = folder / "run" / "best.pt"
    # This tree's own code (``python -m`` puts the working folder first), whatever else is installed.
    mc, mc_args = sys.executable, ["-m", "mangacolor_cli"]
    if not (folder / "trained.json").exists():
        t0 = time.monotonic()
        run([mc, *mc_args, "train", "--model", name, "--preset", preset, "--data", str(args.data), "--val-data", str(val),
             "--out", str(folder / "run"), "--overwrite", "--size", str(args.size), "--batch-size", str(args.batch),
             "--steps", "10000000", "--max-minutes", str(args.minutes), "--lr", "2e-4", "--workers", "1",
             "--val-every", "10000000", "--checkpoint-minutes", str(max(0.1, args.minutes / 2)),
             "--best-metric", "ciede2000", "--log-every", "5", "--seed", "0"], log)
        ips, steps = train_images_per_s(folder / "run" / "metrics.jsonl")
        (folder / "trained.json").write_text(json.dumps(
            {"preset": preset, "images_per_s": ips, "steps": steps, "wall_s": time.monotonic() - t0}))
    if not (folder / "export.json").exists():
        onnx = folder / "model.onnx"
        done = run([mc, *mc_args, "export", str(best), "-o", str(onnx)], log)
        (folder / "export.json").write_text(json.dumps({"onnx_mb": onnx.stat().st_size / 1e6,
                                                         "report": done.stdout.strip()}))
    if not (folder / "eval.json").exists():
        cmd = [mc, *mc_args, "eval", "-m", str(best), "--fill", "flat", "--fill", "soft", "--json-out", str(folder / "eval.json")]
        for s in SETS:
            cmd += ["--data", str(ROOT / "data" / "pages" / s)]
        run(cmd, log)
    if not (folder / "colorize.json").exists():
        pages = folder / "speed_pages"
        pages.mkdir(exist_ok=True)
        for s, key in GRID_PAGES:
            for i in range(4):
                src = ROOT / "data" / "pages" / s / "bw" / f"{int(key) + i:05d}.png"
                dst = pages / f"{s}_{int(key) + i:05d}.png"
                if not dst.exists():
                    shutil.copy(src, dst)
        outs = folder / "colored"
        done = run([mc, *mc_args, "colorize", str(pages), "-m", str(best), "-o", str(outs), "--overwrite", "--json"], log)
        rec = json.loads(done.stdout)
        (folder / "colorize.json").write_text(json.dumps(
            {"pages_per_second": rec["pages_per_second"], "pages": len(rec["pages"]), "colorize_setup": rec["model"]}))
    from models.checkpoint import load_model  # the parameters, read from the checkpoint
    model = load_model(best, map_location="cpu")
    params = sum(p.numel() for p in model.parameters())
    result = {"model": name, "params_m": params / 1e6}
    for part in ("trained", "export", "colorize"):
        result.update({k: v for k, v in json.loads((folder / f"{part}.json").read_text()).items() if k != "report"})
    result["eval"] = json.loads((folder / "eval.json").read_text())
    return result


def rows_of(result: dict) -> dict[tuple[str, str], dict]:
    """(set, fill) -> the model's metrics, and its gray page's, from an eval summary."""
    out = {}
    for set_name, group in result["eval"]["sets"].items():
        gray = group["systems"][group["gray_baseline"]]
        for name, metrics in group["systems"].items():
            if name != group["gray_baseline"]:
                out[(set_name, "soft" if "(soft)" in name else "flat")] = {"m": metrics, "gray": gray}
    return out


def grid(results: list[dict], args) -> Path:
    from PIL import Image, ImageDraw
    cell, label = 256, 110
    rows = [("input", [ROOT / "data/pages" / s / "bw" / f"{k}.png" for s, k in GRID_PAGES])]
    for r in results:
        rows.append((r["model"], [args.out / r["model"] / "colored" / f"{s}_{k}.png" for s, k in GRID_PAGES]))
    rows.append(("target", [ROOT / "data/pages" / s / "color" / f"{k}.png" for s, k in GRID_PAGES]))
    sheet = Image.new("RGB", (label + cell * len(GRID_PAGES), cell * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for y, (name, paths) in enumerate(rows):
        draw.text((6, y * cell + cell // 2 - 6), name, fill="black")
        for x, p in enumerate(paths):
            im = Image.open(p).convert("RGB")
            im.thumbnail((cell, cell))
            sheet.paste(im, (label + x * cell + (cell - im.width) // 2, y * cell + (cell - im.height) // 2))
    path = args.out / "grid.jpg"
    sheet.save(path, quality=88)
    return path


def tables(results: list[dict]) -> str:
    lines = ["| model | preset | parameters | training images/s | steps | colorize pages/s | ONNX MB | "
             + " | ".join(s.removeprefix("val_") for s in SETS) + " |",
             "|---|---|---|---|---|---|---|" + "---|" * len(SETS)]
    for r in results:
        rows = rows_of(r)
        gains = []
        for s in SETS:
            row = rows.get((s, "flat"))
            g = 1 - row["m"]["ciede2000"] / row["gray"]["ciede2000"] if row else float("nan")
            gains.append(f"{100 * g:+.1f}%")
        lines.append(f"| {r['model']} | {r['preset']} | {r['params_m']:.2f} M | {r['images_per_s']:.1f} | {r['steps']} | "
                     f"{r['pages_per_second']:.2f} | {r['onnx_mb']:.1f} | " + " | ".join(gains) + " |")
    lines += ["", "| set | model | fill | CIEDE2000 (gray) | gain | colorfulness / target | PSNR | SSIM |",
              "|---|---|---|---|---|---|---|---|"]
    for s in SETS:
        for r in results:
            for fill in ("flat", "soft"):
                row = rows_of(r).get((s, fill))
                if not row:
                    continue
                m, g = row["m"], row["gray"]
                cf = m["colorfulness"] / m["colorfulness_target"] if m.get("colorfulness_target") else float("nan")
                lines.append(f"| {s} | {r['model']} | {fill} | {m['ciede2000']:.2f} ({g['ciede2000']:.2f}) | "
                             f"{100 * (1 - m['ciede2000'] / g['ciede2000']):+.1f}% | {100 * cf:.0f}% | "
                             f"{m['psnr']:.2f} | {m['ssim']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "compare")
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "drawings")
    ap.add_argument("--minutes", type=float, default=12.0, help="training minutes per model")
    ap.add_argument("--size", type=int, default=128, help="training crop size")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--pages", type=int, default=4, help="validation pages per set (they pick best.pt)")
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    ap.add_argument("--json-out", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    val = val_folder(args.out, args.pages)
    env_note = f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, {os.cpu_count()} CPUs"
    results = []
    for name in args.models:
        print(f"== {name}", flush=True)
        results.append(one_model(name, args, val))
    picture = grid(results, args)
    report = {"minutes": args.minutes, "size": args.size, "batch": args.batch, "val_pages_per_set": args.pages,
              "machine": env_note, "results": results, "grid": str(picture)}
    for path in filter(None, (args.out / "results.json", args.json_out)):
        path.write_text(json.dumps(report, indent=1))
    print(tables(results))
    print(f"\ngrid: {picture}")


if __name__ == "__main__":
    main()
