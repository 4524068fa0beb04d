"""Train the region model (``models.regionhead``) over a pixel model, in two steps.

    python scripts/train_region_head.py cache --pages 6000 --out /work/runs/regions/cache
    python scripts/train_region_head.py train --cache /work/runs/regions/cache --out /work/runs/regions/run

``cache``: composes training-split pages (``data/drawings/index.json``), runs the pixel model on each
(the packaged default unless ``--model``) and stores every region's token and true color
(``trainer.region_data``), two processes, resumable shard by shard. ``train``: trains the region model
on the cached tokens (``trainer.region_train``) and writes ``last.pt``, ``best.pt`` and the ONNX file
colorize reads beside its model (``<model>.regions.onnx``). docs/MODELS.md has the figures.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def onnx_predict(model: str | None):
    """The pixel model's predict for one 8-bit gray page, as colorize runs it (ONNX on one CPU thread)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from mangacolor_cli.engine import backends
    from mangacolor_cli.engine.runner import ModelRunner
    from models.toolbox.images import DecodedPage  # noqa: F401  (as_page builds one)

    runner = ModelRunner(model, device="cpu", backend="onnx", batch_size=1)
    runner.session, runner.provider = backends.load_session(runner.model_path, "cpu", threads=1)

    def predict(gray):
        (ab, conf), = runner.predict([gray], as_numpy=True)
        return ab[0], None if conf is None else conf[0, 0]
    return predict


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="step", required=True)
    c = sub.add_parser("cache", help="compose pages and cache their region tokens")
    c.add_argument("--pages", type=int, default=6000)
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--model", default=None, help="the pixel model (default: the packaged one)")
    c.add_argument("--index", type=Path, default=ROOT / "data/drawings/index.json")
    c.add_argument("--split", default="train")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--workers", type=int, default=2)
    c.add_argument("--gray-rate", type=float, default=0.25)
    t = sub.add_parser("train", help="train the region model on a cache")
    t.add_argument("--cache", type=Path, required=True)
    t.add_argument("--val-cache", type=Path, default=None, help="held-out tokens (default: the cache's last 5%%)")
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--minutes", type=float, default=20.0)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--dim", type=int, default=96)
    t.add_argument("--layers", type=int, default=3)
    t.add_argument("--dropout", type=float, default=0.0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--init", type=Path, default=None,
                   help="start from this region model checkpoint (e.g. checkpoints/regionhead.pt), not a fresh model")
    u = sub.add_parser("tune", help="score safe's price of chroma (tokens.SAFE_CAUTION) on paired pages")
    u.add_argument("--data", type=Path, required=True, help="DIR/bw + DIR/color pages (not a held-out set)")
    u.add_argument("--region-model", type=Path, required=True)
    u.add_argument("--caution", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2, 0.3])
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.step == "cache":
        from trainer.pages.dataset import drawings_from_index
        from trainer.region_data import build_cache
        drawings = drawings_from_index(args.index, args.split)
        logging.info("%d %s drawings", len(drawings), args.split)
        build_cache(drawings, args.out, args.pages, functools.partial(onnx_predict, args.model), seed=args.seed,
                    gray_rate=args.gray_rate, workers=args.workers)
        return 0
    if args.step == "tune":
        import models.paint.tokens as tokens
        from mangacolor_cli.evaluation.scoring import evaluate_models
        for caution in args.caution:
            tokens.SAFE_CAUTION = caution
            result = evaluate_models(["default"], args.data, region_models=[str(args.region_model)],
                                     palettes=["safe"], samples=0)
            row, gray = result.summary[result.models[0]], result.summary["gray baseline"]
            print(f"caution {caution:.3f}: CIEDE2000 {row['ciede2000']:.3f} (gray {gray['ciede2000']:.3f}, "
                  f"{row['ciede2000'] / gray['ciede2000'] - 1:+.1%}), colorfulness {row['colorfulness']:.2f}", flush=True)
        return 0
    from trainer.region_train import RegionTrainConfig, train_region_head
    cfg = RegionTrainConfig(cache=args.cache, val_cache=args.val_cache, out=args.out, minutes=args.minutes,
                            batch=args.batch, lr=args.lr, dim=args.dim, layers=args.layers, dropout=args.dropout, seed=args.seed,
                            resume=args.resume, init=args.init)
    train_region_head(cfg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
