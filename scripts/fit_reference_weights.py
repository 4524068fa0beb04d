#!/usr/bin/env python3
"""Learn the weights of the reference matcher's token distance (``models.paint.references``) from training pairs.

    python scripts/fit_reference_weights.py                 # prints FEATURE_WEIGHTS and TONE_WEIGHT
    python scripts/fit_reference_weights.py --drawings 60   # a quicker fit

Pairs: drawings of the *training* split of DiceBear (adventurer, open-peeps, micah) and OpenMoji, each
colored drawing against a deformed copy of its line art and of its gray page (the deformations of
``benchmarks/bench_references.py``). comicgen is left out entirely and the validation split too: the
benchmark's sets stay held out. Loss: neighbourhood components analysis over the reference tokens,
the probability mass a page token gives (softmax of minus its distances) to the reference tokens of
its own color (CIE76 under 10). The weights are then scaled so that a token's distance to its nearest
reference token of its own color has the same median as under the current weights: ``MAX_DISTANCE``
and ``MARGIN`` keep their meaning. Needs ``scripts/fetch_data.py`` first.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_references import deform, gray_of, place  # noqa: E402
from models.cie import luma8  # noqa: E402
from models.paint import references as refs  # noqa: E402
from models.paint.regions import segment_regions  # noqa: E402

SOURCES = ("dicebear-adventurer", "dicebear-open-peeps", "dicebear-micah", "openmoji")
SAME_COLOR = 10.0


def tokens_of(page: np.ndarray, color: np.ndarray | None = None):
    gray = page if page.ndim == 2 else luma8(page)
    regions = segment_regions(gray)
    f = regions.factor
    t = refs.describe(regions, gray[::f, ::f])
    raw = t.features / refs.FEATURE_WEIGHTS.astype(np.float32)
    lab = refs.region_lab(regions, page if color is None else color, t.ids)
    return raw, t.tone, lab


def build_pairs(drawings: int, seed: int = 0) -> list[tuple]:
    index = json.loads((ROOT / "data" / "drawings" / "index.json").read_text())["records"]
    recs = sorted((r for r in index if r.get("split") == "train" and r["source"] in SOURCES and r.get("line")),
                  key=lambda r: r["key"])
    rng = np.random.default_rng(seed)
    chosen = [recs[i] for i in rng.choice(len(recs), min(drawings, len(recs)), replace=False)]
    pairs = []
    for k, r in enumerate(chosen):
        color_rgba = Image.open(r["color"]).convert("RGBA")
        line_rgba = Image.open(r["line"]).convert("RGBA")
        reference = np.asarray(place(color_rgba, np.random.default_rng([seed, 1, k])))
        ref = tokens_of(reference)
        dc, dl = deform([color_rgba, line_rgba], np.random.default_rng([seed, 2, k]))
        color = np.asarray(place(dc, np.random.default_rng([seed, 3, k])))
        line = np.asarray(gray_of(place(dl, np.random.default_rng([seed, 3, k]))))
        for target in (line, np.asarray(gray_of(Image.fromarray(color)))):
            pairs.append((ref, tokens_of(target, color)))
    return pairs


def tone_cost_raw(t: np.ndarray, r: np.ndarray) -> np.ndarray:
    return refs.tone_cost(t, r) / refs.TONE_WEIGHT


def fit(pairs: list[tuple], steps: int = 300) -> tuple[np.ndarray, float]:
    data = []
    for (fr, tr, lr), (ft, tt, lt) in pairs:
        if not len(fr) or not len(ft):
            continue
        same = np.sqrt(((lt[:, None, :] - lr[None, :, :]) ** 2).sum(-1)) < SAME_COLOR
        useful = same.any(axis=1) & ~same.all(axis=1)
        if not useful.any():
            continue
        diff2 = torch.from_numpy(((ft[useful][:, None, :] - fr[None, :, :]) ** 2).astype(np.float32))
        tone2 = torch.from_numpy((tone_cost_raw(tt[useful], tr) ** 2).astype(np.float32))
        data.append((diff2, tone2, torch.from_numpy(same[useful])))
    log_w = torch.log(torch.from_numpy(refs.FEATURE_WEIGHTS.astype(np.float32))).requires_grad_(True)
    log_t = torch.tensor(float(np.log(refs.TONE_WEIGHT)), requires_grad=True)
    opt = torch.optim.Adam([log_w, log_t], lr=0.05)
    for step in range(steps):
        opt.zero_grad()
        loss = 0.0
        for diff2, tone2, same in data:
            d = torch.sqrt((diff2 * torch.exp(2 * log_w)).sum(-1) + tone2 * torch.exp(2 * log_t) + 1e-9)
            logp = torch.log_softmax(-4.0 * d, dim=1)
            loss = loss - torch.logsumexp(logp.masked_fill(~same, -1e9), dim=1).mean()
        loss = loss / len(data)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {loss.item():.4f}", flush=True)
    w = torch.exp(log_w).detach().numpy()
    t = float(torch.exp(log_t))
    # The scale: the median distance to the nearest same-color token as under the current weights.
    def median_nearest(weights, tone_w):
        out = []
        for diff2, tone2, same in data:
            d = torch.sqrt((diff2 * torch.from_numpy(weights ** 2)).sum(-1) + tone2 * tone_w ** 2)
            out.append(d.masked_fill(~same, float("inf")).min(dim=1).values)
        return float(torch.cat(out).median())
    scale = median_nearest(refs.FEATURE_WEIGHTS.astype(np.float32), refs.TONE_WEIGHT) / median_nearest(w, t)
    return w * scale, t * scale


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--drawings", type=int, default=160)
    p.add_argument("--steps", type=int, default=300)
    args = p.parse_args()
    torch.manual_seed(0)
    pairs = build_pairs(args.drawings)
    print(f"{len(pairs)} pairs")
    w, t = fit(pairs, args.steps)
    print("FEATURE_WEIGHTS = np.array([" + ", ".join(f"{x:.3f}" for x in w) + "])")
    print(f"TONE_WEIGHT = {t:.3f}")


if __name__ == "__main__":
    main()
