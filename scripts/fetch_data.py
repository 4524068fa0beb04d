#!/usr/bin/env python3
"""Build the training corpus from package registries: drawings, then synthetic manga pages.

    python scripts/fetch_data.py                 # everything, defaults (~10 min on 2 cores)
    python scripts/fetch_data.py --limit 200     # a small corpus for a quick try
    python scripts/fetch_data.py --no-extras     # only openclipart + OpenMoji
    python scripts/fetch_data.py --sources comicgen,dicebear-micah   # only these; others kept in the index

Steps (each skipped when its output is already there, so a rerun is cheap):
  1. download: Debian `openclipart-svg` (apt-get download + dpkg-deb -x, no root install),
     npm `openmoji@17.0.0` and optional flat-color emoji sets (npm pack, no install); the exact
     line-art/color pair sources of scripts/pair_sources.py: npm `comicgen@1.9.9` (figures composed
     from emotion x pose SVGs) and DiceBear 9.4.3 styles (npm install; node renders each seed in
     color and with white colors as its line art)
  2. render SVG -> RGBA PNG with rsvg-convert (or cairosvg), in parallel, trimmed to content
  3. drop empty, grayscale-only and duplicate drawings; split train/val by source drawing
  4. synthesize manga line art for every drawing without an inked twin (trainer/pages/lineart.py)
  5. compose one validation set per source into data/pages/val_<set>/{bw,color} (training pages are
     composed on the fly by trainer.pages.ComposedPages); --v1-pages also writes corpus v1's fixed
     page folders data/pages/{train,val,paired_train,paired_val}
  6. write data/manifest.json with counts, sources, versions and licenses
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from scripts import pair_sources  # noqa: E402
from scripts.corpus_sources import (SOURCES, Candidate, fetch_debian, fetch_npm, list_candidates, log,  # noqa: E402
                                    package_version)
from scripts.render_drawings import render_all, render_candidate, svg_renderer  # noqa: E402
from trainer.pages import composer, corpus  # noqa: E402


# ---------------------------------------------------------------- 3. filter, dedupe, split

def dedupe(records: list[dict]) -> list[dict]:
    """Keep the first drawing of each look: same colors within a source, same line art for pairs.

    Sources marked "dedupe": "exact" (generated figures that share poses or face shapes) drop only
    pixel-identical figures.
    """
    seen: set[tuple[str, str]] = set()
    for rec in sorted(records, key=lambda r: (r["source"], r["key"])):
        if "dropped" in rec:
            continue
        if SOURCES.get(rec["source"], {}).get("dedupe") == "exact" and "pixel_hash" in rec:
            keys = [(rec["source"], "x:" + rec["pixel_hash"])]
        else:
            keys = [(rec["source"], "c:" + rec["stats"]["color_hash"])]
            if "line_hash" in rec:
                keys.append((rec["source"], "l:" + rec["line_hash"]))
        if any(k in seen for k in keys):
            rec["dropped"] = "duplicate"
            continue
        seen.update(keys)
    return records


def split_of(source: str, key: str, seed: int, val_fraction: float) -> str:
    """Deterministic train/val assignment of one source drawing from a hash of (seed, source, key)."""
    digest = hashlib.sha256(f"{seed}:{source}:{key}".encode()).digest()
    return "val" if int.from_bytes(digest[:8], "big") / 2**64 < val_fraction else "train"


def record_split(rec: dict, seed: int, val_fraction: float) -> str:
    """The split of a record: by its group when it has one (a character pose, a DiceBear seed), so
    all figures of one group land on the same side; else by its key (one source drawing)."""
    return split_of(rec["source"], rec.get("group") or rec["key"], seed, val_fraction)


def limit_candidates(cands: list[Candidate], limit: int | None, seed: int) -> list[Candidate]:
    """A deterministic, category-spread subset of at most `limit` candidates."""
    if limit is None or len(cands) <= limit:
        return cands
    # A salt of its own, so the subset is not correlated with the train/val split hash.
    order = sorted(cands, key=lambda c: hashlib.sha256(f"limit:{seed}:{c.source}:{c.key}".encode()).digest())
    return sorted(order[:limit], key=lambda c: c.key)


# ---------------------------------------------------------------- sample chapter

# Held-out figures of the sources a manga reader would recognize: inked characters, faces, objects.
SAMPLE_SOURCES = {"comicgen": 14, "dicebear-adventurer": 5, "dicebear-micah": 5, "dicebear-open-peeps": 4,
                  "openclipart": 14}
SAMPLE_LICENSE_NOTE = (
    "Synthetic black-and-white manga pages composed by mangacolor (trainer/pages) from validation-split "
    "drawings that no mangacolor model trains on: comicgen characters by Ramya Mylavarapu (Gramener, CC0 1.0); "
    "DiceBear avatar styles Adventurer by Lisa Wischofsky (CC BY 4.0), Micah by Micah Lanier (CC BY 4.0) and "
    "Open Peeps by Pablo Stanley (CC0 1.0), rendered with DiceBear 9.4.3; public-domain clip art from the "
    "Open Clip Art Library (Debian openclipart-svg), its line art synthesized from the color drawing. "
    "This chapter is shared under CC BY 4.0; balloon text in DejaVu Sans.")


def sample_drawings(records: list[dict], data: Path, size: int = 1024, seed: int = 7) -> list:
    """Validation drawings of SAMPLE_SOURCES re-rendered at a size fit for 1200x1700 pages, each with
    inked line art (its own twin, or synthesized from the high-resolution color render)."""

    renderer = svg_renderer()
    hi = data / "drawings_hi"
    out = []
    for source, count in SAMPLE_SOURCES.items():
        pool = sorted((r for r in records if r["source"] == source and r.get("split") == "val" and "dropped" not in r),
                      key=lambda r: hashlib.sha256(f"sample:{seed}:{r['key']}".encode()).hexdigest())
        taken = 0
        for r in pool:
            if taken == count:
                break
            safe = r["key"].replace("/", "_")
            color = hi / source / "color" / f"{safe}.png"
            line = hi / source / ("line" if r.get("line_svg") else "synth") / f"{safe}.png"
            if not color.exists():
                cand = Candidate(source, r["key"], r.get("category", ""), r["color_svg"], r.get("line_svg"),
                                 r.get("group"))
                if "dropped" in render_candidate((cand, str(hi), size, renderer)):
                    continue
            if not line.exists() and corpus.synthesize_file(color, line) is None:
                continue
            out.append(composer.Drawing(f"{source}/{r['key']}", str(color), str(line)))
            taken += 1
    return out


def build_sample(data: Path, out: Path) -> Path:
    """Rebuild the sample chapter (8 pages of 1200x1700, ComicInfo.xml) from held-out drawings."""
    index = data / "drawings" / "index.json"
    records = json.loads(index.read_text())["records"]
    drawings = sample_drawings(records, data)
    log(f"sample chapter: {len(drawings)} held-out drawings rendered at 1024 px")
    composer.build_sample_chapter(drawings, out, notes=SAMPLE_LICENSE_NOTE)
    log(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return out


# ---------------------------------------------------------------- main

def write_index(index_path: Path, records: list[dict], built: set[str], size: int,
                seed: int) -> list[dict]:
    """Write the drawing index: this run's records plus the records of sources it did not build.

    The index is read again under a lock right before writing, so two runs building different
    sources (`--sources`) keep each other's records. Returns the records kept from other sources
    (none when the old index was made at another render size).
    """
    import fcntl

    index_path.parent.mkdir(parents=True, exist_ok=True)
    with open(index_path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        others: list[dict] = []
        if index_path.exists():
            try:
                old = json.loads(index_path.read_text())
            except ValueError:
                old = {}
            if old.get("size") == size:
                others = [r for r in old.get("records", []) if r["source"] not in built]
            elif old:
                log(f"index: the old index was rendered at {old.get('size')} px, not {size}: "
                    "its records are not kept")
        tmp = index_path.with_suffix(f".json.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"size": size, "seed": seed, "records": others + records}))
        tmp.replace(index_path)
    return others


def disk_usage(path: Path) -> int:
    """Total bytes of the files under path."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> int:
    """Command line entry: fetch, render, split, compose, write the manifest."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=REPO / "data", help="output folder (git-ignored)")
    p.add_argument("--limit", type=int, default=None, help="at most this many drawings per source")
    p.add_argument("--no-extras", action="store_true", help="skip twemoji, fluent-emoji-flat and noto")
    p.add_argument("--size", type=int, default=384, help="drawing render size (long side, px)")
    p.add_argument("--jobs", type=int, default=2, help="parallel processes")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the page layouts")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of drawings held out for validation")
    p.add_argument("--train-pages", type=int, default=3000)
    p.add_argument("--val-pages", type=int, default=300)
    p.add_argument("--paired-pages", type=int, default=200)
    p.add_argument("--paired-train-pages", type=int, default=1000,
                   help="paired bw/color pages from training drawings (data/pages/paired_train)")
    p.add_argument("--page-size", type=str, default="512x724", help="WxH of composed pages")
    p.add_argument("--no-pages", action="store_true", help="stop after the drawings")
    p.add_argument("--val-set-pages", type=int, default=40, help="pages per validation set (one set per source)")
    p.add_argument("--sample-chapter", type=Path, default=None, metavar="CBZ",
                   help="only rebuild the sample chapter from the built corpus (e.g. examples/sample_chapter.cbz)")
    p.add_argument("--v1-pages", action="store_true",
                   help="also write corpus v1's fixed page folders (data/pages/train, val, paired_*)")
    p.add_argument("--sources", type=str, default=None,
                   help="comma-separated sources to build (default: all); the index keeps the records "
                        f"of the others. Known: {','.join(SOURCES)}")
    p.add_argument("--comicgen-per-character", type=int, default=pair_sources.COMICGEN_PER_CHARACTER,
                   help="comicgen emotion x pose figures per character")
    p.add_argument("--dicebear-per-style", type=int, default=pair_sources.DICEBEAR_PER_STYLE,
                   help="DiceBear seeds per style")
    args = p.parse_args(argv)

    start = time.time()
    data = args.data.resolve()
    if args.sample_chapter is not None:
        build_sample(data, args.sample_chapter)
        return 0
    cache, drawings_dir = data / "cache", data / "drawings"
    sources = [s for s in SOURCES if not (args.no_extras and SOURCES[s].get("extra"))]
    if args.sources:
        wanted = [s.strip() for s in args.sources.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in SOURCES]
        if unknown:
            p.error(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(SOURCES)}")
        sources = [s for s in SOURCES if s in wanted]

    fetched: dict[str, dict] = {}
    for source in sources:
        spec = SOURCES[source]
        try:
            if spec["registry"] == "debian":
                root = fetch_debian(spec["package"], cache / source)
            elif spec["registry"] == "npm-install":  # DiceBear: one install holds core and all styles
                root = pair_sources.fetch_dicebear(cache / "dicebear")
            else:
                root = fetch_npm(spec["package"], cache / source)
            fetched[source] = {"root": root, "version": package_version(source, root)}
        except (RuntimeError, OSError, StopIteration, KeyError, ValueError) as err:
            log(f"SKIPPING {source}: {err}")
    if not fetched:
        log(f"error: none of {', '.join(sources)} could be fetched; nothing to build")
        return 1

    renderer = svg_renderer()
    index_path = drawings_dir / "index.json"
    previous = {}
    if index_path.exists():
        old = json.loads(index_path.read_text())
        if old.get("size") == args.size:
            previous = {(r["source"], r["key"]): r for r in old["records"]}

    cands: list[Candidate] = []
    pair_counts = {"comicgen": args.comicgen_per_character, "dicebear": args.dicebear_per_style,
                   "seed": args.seed}
    for source, info in list(fetched.items()):
        try:
            found = list_candidates(source, info["root"], pair_counts)
        except (RuntimeError, OSError, ValueError, KeyError) as err:
            log(f"SKIPPING {source}: {err}")
            del fetched[source]
            continue
        chosen = limit_candidates(found, args.limit, args.seed)
        info["candidates"] = len(found)
        log(f"{source} {info['version']}: {len(found)} candidate drawings, using {len(chosen)}")
        cands += chosen
    records = dedupe(render_all(cands, drawings_dir, args.size, renderer, args.jobs, previous))
    for rec in records:
        if "dropped" not in rec:
            rec["split"] = record_split(rec, args.seed, args.val_fraction)
    drawings_dir.mkdir(parents=True, exist_ok=True)
    # With --sources, the index keeps the other sources' records; a full run replaces the index.
    others = write_index(index_path, records, set(fetched) if args.sources else set(SOURCES),
                         args.size, args.seed)
    if others:
        log(f"index: kept {len(others)} records of sources not built in this run")
    kept = [r for r in records + others if "dropped" not in r]

    counts: dict[str, dict] = {}
    for source in fetched:
        mine = [r for r in records if r["source"] == source]
        dropped: dict[str, int] = {}
        for r in mine:
            if "dropped" in r:
                reason = r["dropped"].split(":")[0]
                dropped[reason] = dropped.get(reason, 0) + 1
        counts[source] = {
            "candidates": fetched[source]["candidates"], "rendered": len(mine),
            "kept": sum("dropped" not in r for r in mine),
            "train": sum(r.get("split") == "train" for r in mine),
            "val": sum(r.get("split") == "val" for r in mine),
            "paired_line_art": sum("line" in r and "dropped" not in r for r in mine),
            "dropped": dropped,
        }
        log(f"{source}: kept {counts[source]['kept']} (train {counts[source]['train']}, "
            f"val {counts[source]['val']}), dropped {dropped}")

    page_counts = {}
    synthesized = corpus.add_synthesized_line_art(index_path, args.jobs, log=log)
    log(f"{synthesized} drawings have synthesized line art")
    if not args.no_pages:
        page_counts = corpus.build_validation_sets(index_path, data / "pages", args.val_set_pages, args.seed, log=log)
    if args.v1_pages:
        width, height = (int(v) for v in args.page_size.lower().split("x"))
        page_counts |= composer.build_corpus_pages(
            kept, data / "pages", size=(width, height), train_pages=args.train_pages,
            val_pages=args.val_pages, paired_pages=args.paired_pages, seed=args.seed, jobs=args.jobs,
            log=log, paired_train_pages=args.paired_train_pages)

    old_manifest = {}
    if (data / "manifest.json").exists() and args.sources:
        try:
            old_manifest = json.loads((data / "manifest.json").read_text())
        except ValueError:
            old_manifest = {}
    old_sources = {s: v for s, v in old_manifest.get("sources", {}).items() if s not in fetched}
    old_counts = {s: v for s, v in old_manifest.get("drawings", {}).items() if s not in fetched}
    manifest = {
        "built_by": "scripts/fetch_data.py",
        "arguments": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "renderer": renderer,
        "sources": {s: {"registry": SOURCES[s]["registry"], "package": SOURCES[s]["package"],
                        "version": fetched[s]["version"], "license": SOURCES[s]["license"],
                        "attribution": SOURCES[s]["attribution"], "paired": SOURCES[s]["paired"]}
                    for s in fetched} | old_sources,
        "skipped_sources": [s for s in sources if s not in fetched],
        "drawings": counts | old_counts,
        "drawings_total": {"kept": len(kept), "train": sum(r["split"] == "train" for r in kept),
                           "val": sum(r["split"] == "val" for r in kept)},
        "pages": page_counts,
        "split": f"by source drawing: sha256(seed:source:group-or-key) < {args.val_fraction} -> val "
                 "(group: comicgen character pose, DiceBear seed)",
        "seconds": round(time.time() - start, 1),
        "bytes": {"cache": disk_usage(cache), "drawings": disk_usage(drawings_dir),
                  "pages": disk_usage(data / "pages") if (data / "pages").exists() else 0},
    }
    (data / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log(f"done in {manifest['seconds']}s; manifest: {data / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
