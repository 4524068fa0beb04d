"""Corpus steps that need only the rendered drawings (``data/drawings/index.json``).

    python -m trainer.pages lineart           # synthesize line art for drawings without a twin
    python -m trainer.pages valsets           # data/pages/val_<set>/{bw,color}, one set per source
    python -m trainer.pages sheet OUT.png     # 16 random training pairs (gray input | color target)
    python -m trainer.pages pages             # the fixed page folders of corpus v1 (data/pages/train...)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .composer import build_corpus_pages
from .corpus import add_synthesized_line_art, build_validation_sets, contact_sheet
from .dataset import drawings_from_index


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer.pages", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["lineart", "valsets", "sheet", "pages"])
    p.add_argument("out", nargs="?", type=Path, default=None, help="sheet: the PNG to write")
    p.add_argument("--data", type=Path, default=Path("data"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-pages", type=int, default=40, help="pages per validation set")
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args(argv)
    index = args.data / "drawings" / "index.json"
    if not index.exists():
        print(f"error: {index} not found: run python scripts/fetch_data.py first", file=sys.stderr)
        return 1
    if args.what == "lineart":
        print(f"{add_synthesized_line_art(index, args.jobs, log=print)} drawings have synthesized line art")
    elif args.what == "valsets":
        print(json.dumps(build_validation_sets(index, args.data / "pages", args.val_pages, args.seed, log=print)))
    elif args.what == "sheet":
        print(contact_sheet(drawings_from_index(index, "train"), args.out or Path("train_pairs.png")))
    else:
        records = [r for r in json.loads(index.read_text())["records"] if "dropped" not in r]
        print(json.dumps(build_corpus_pages(records, args.data / "pages", jobs=args.jobs), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
