"""Training the region model (``models.regionhead``) on cached region tokens (``trainer.region_data``).

Each step takes a batch of cached pages, every region of a page one token (the ``MAX_REGIONS``
largest where a page has more), and minimizes the cross-entropy between each colorable region's
predicted distribution and its true ab, soft-encoded over the ab bins as the pixel models' targets
are (``models.color.soft_encode_ab``), weighted by the square root of the region's area (the page's
metrics weigh pixels; the root keeps small regions, eyes and mouths, from vanishing). Paper,
balloons and solid blacks are context only: the compose keeps them neutral.

Validation, every ``val_every`` steps on held-out cached pages: the area-weighted mean ab error of
each palette's decoded colors (``models.paint.tokens.decode``) against the regions' true colors, next
to the gray page's (every region neutral), and each palette's chroma against the truth's. ``best.pt``
is the step with the lowest safe error. A time budget (``minutes``) ends the run; ``resume`` continues
from ``last.pt``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from models.color import ab_bins, soft_encode_ab
from models.paint.tokens import AB_SCALE, FEATURE_NAMES, KNOWN_NAMES, decode
from models.regionhead import RegionHead, export_head, load_head, save_head

from .region_data import load_cache

logger = logging.getLogger("mangacolor.trainer.region_train")

MAX_REGIONS = 320
# Training reveals some regions' true colors as known (hints, references) on this share of pages, a share
# of their colorable regions drawn from REVEAL_RATIOS (the Hint-AUC protocol's ratios), larger regions
# likelier; the loss then counts only the others, so the model learns to carry known colors to them.
REVEAL_PAGES = 0.5
REVEAL_RATIOS = (0.01, 0.03, 0.05, 0.10, 0.25, 0.50)
COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


@dataclass
class RegionTrainConfig:
    cache: Path
    out: Path
    val_cache: Path | None = None
    minutes: float = 20.0
    max_steps: int | None = None  # stop here too (tests; a run is budgeted by minutes)
    batch: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.05
    dim: int = 96
    layers: int = 3
    heads: int = 4
    dropout: float = 0.0
    seed: int = 0
    val_every: int = 250
    val_fraction: float = 0.05
    resume: bool = False
    # Start from these weights (a region model checkpoint: ``models.regionhead.save_head``'s) instead of a fresh
    # model: the shipped one, retrained on tokens of a newer segmentation. Its shape options win over dim/layers.
    init: Path | None = None


def colorable(tokens: np.ndarray) -> np.ndarray:
    """Per token, True where the compose may color the region (a region with a core, not paper, balloon, solid)."""
    return (tokens[..., COL["is_region"]] > 0.5) & (tokens[..., COL["has_core"]] > 0.5)


class PageTokens:
    """Cached pages as padded batches: ``(tokens [B, N, F], targets [B, N, 2], weight [B, N], mask [B, N])``."""

    def __init__(self, tokens: np.ndarray, targets: np.ndarray, offsets: np.ndarray, pages: np.ndarray):
        self.tokens, self.targets, self.offsets, self.pages = tokens, targets, offsets, pages

    def __len__(self) -> int:
        return len(self.pages)

    def sampler(self, batch: int, rng: np.random.Generator):
        """Batches of pages with similar region counts (little padding): a random window of the pages
        sorted by count, a new window each time."""
        counts = np.minimum(np.diff(self.offsets)[self.pages], MAX_REGIONS)
        by_count = self.pages[np.argsort(counts, kind="stable")]
        while True:
            start = int(rng.integers(0, max(1, len(by_count) - batch + 1)))
            yield by_count[start:start + batch]

    def batch(self, pages: np.ndarray, reveal: np.random.Generator | None = None,
              ratio: float | None = None) -> tuple[torch.Tensor, ...]:
        """``reveal``: draw known regions as training does (``REVEAL_PAGES``, ``REVEAL_RATIOS``); ``ratio``:
        with ``reveal``, every page gets this share known instead."""
        rows = []
        for p in pages:
            lo, hi = int(self.offsets[p]) + 1, int(self.offsets[p + 1])  # row 0 of a page is the ink
            idx = np.arange(lo, hi)
            if len(idx) > MAX_REGIONS:
                idx = np.sort(idx[np.argsort(-self.tokens[idx, COL["log_area"]], kind="stable")[:MAX_REGIONS]])
            rows.append(idx)
        n = max(1, max(len(r) for r in rows))
        F_ = self.tokens.shape[1]
        tok = np.zeros((len(rows), n, F_ + len(KNOWN_NAMES)), np.float32)
        tgt = np.zeros((len(rows), n, 2), np.float32)
        mask = np.zeros((len(rows), n), bool)
        for i, r in enumerate(rows):
            tok[i, :len(r), :F_] = self.tokens[r]
            tgt[i, :len(r)] = self.targets[r]
            mask[i, :len(r)] = True
        weight = np.where(mask & colorable(tok), np.sqrt(np.exp(tok[..., COL["log_area"]])), 0.0).astype(np.float32)
        if reveal is not None:
            for i in range(len(rows)):
                share = ratio if ratio is not None else (
                    float(reveal.choice(REVEAL_RATIOS)) if reveal.uniform() < REVEAL_PAGES else 0.0)
                candidates = np.flatnonzero(weight[i] > 0)
                if share <= 0 or len(candidates) < 2:
                    continue
                k = min(len(candidates) - 1, max(1, int(round(share * len(candidates)))))
                p = weight[i, candidates] ** 2
                known = reveal.choice(candidates, k, replace=False, p=p / p.sum())
                tok[i, known, F_] = 1.0
                tok[i, known, F_ + 1:] = tgt[i, known] / AB_SCALE
                weight[i, known] = 0.0
        return torch.from_numpy(tok), torch.from_numpy(tgt), torch.from_numpy(weight), torch.from_numpy(mask)


def split_pages(offsets: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    pages = np.arange(len(offsets) - 1)
    k = max(1, int(round(len(pages) * fraction)))
    return pages[:-k], pages[-k:]


def fit_normalization(head: RegionHead, tokens: np.ndarray) -> None:
    """The token normalization from the cache's tokens (the known columns stay as they are: 0/1 and ab / 50)."""
    sample = tokens[:: max(1, len(tokens) // 200000)]
    k = sample.shape[1]
    head.mean[:k] = torch.from_numpy(sample.mean(0))
    head.std[:k] = torch.from_numpy(np.maximum(sample.std(0), 1e-3))


def region_ce(logits: torch.Tensor, targets: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Each region's cross-entropy ``[B * N]`` between its logits ``[B, N, Q]`` and its true ab ``[B, N, 2]``
    soft-encoded over the bins as the pixel models' targets are (``models.color.soft_encode_ab``)."""
    target = soft_encode_ab(targets.reshape(1, -1, 2).permute(0, 2, 1)[..., None], bins)[0, :, :, 0].t()
    return -(target * torch.log_softmax(logits.reshape(-1, logits.shape[-1]), -1)).sum(-1)


@torch.no_grad()
def validate(head: RegionHead, data: PageTokens, bins: torch.Tensor, batch: int = 64,
             known: float = 0.0) -> dict[str, float]:
    """Area-weighted ab errors of each palette against the truth, the gray page's, and the chroma ratios;
    ``known``: the share of each page's regions given as known (seeded: the same ones every time),
    scored on the others."""
    reveal = np.random.default_rng(1234) if known > 0 else None
    head.eval()
    sums = {"gray": 0.0, "safe": 0.0, "vivid": 0.0, "chroma_true": 0.0, "chroma_safe": 0.0, "chroma_vivid": 0.0,
            "weight": 0.0, "ce": 0.0}
    np_bins = bins.numpy()
    for start in range(0, len(data), batch):
        tok, tgt, weight, mask = data.batch(data.pages[start:start + batch], reveal, known if known > 0 else None)
        logits = head(tok, mask)
        w = (weight / weight.sum(1, keepdim=True).clamp_min(1e-9))  # each page counts once, its regions by area
        ce = region_ce(logits, tgt, bins)
        sums["ce"] += float((ce * w.reshape(-1)).sum())
        probs = torch.softmax(logits, -1).reshape(-1, logits.shape[-1]).numpy()
        sel = w.reshape(-1).numpy() > 0
        wt = w.reshape(-1).numpy()[sel]
        truth = tgt.reshape(-1, 2).numpy()[sel]
        sums["weight"] += float(wt.sum())
        sums["gray"] += float((wt * np.hypot(*truth.T)).sum())
        sums["chroma_true"] += float((wt * np.hypot(*truth.T)).sum())
        for palette in ("safe", "vivid"):
            ab, _ = decode(probs[sel], np_bins, palette, vivid_scale=1.0)  # vivid: the model's mode, unscaled
            sums[palette] += float((wt * np.hypot(*(ab - truth).T)).sum())
            sums[f"chroma_{palette}"] += float((wt * np.hypot(*ab.T)).sum())
    head.train()
    W = max(sums["weight"], 1e-9)
    out = {k: sums[k] / W for k in ("gray", "safe", "vivid", "ce")}
    out["safe_vs_gray"] = out["safe"] / max(out["gray"], 1e-9)
    out["vivid_vs_gray"] = out["vivid"] / max(out["gray"], 1e-9)
    out["chroma_safe"] = sums["chroma_safe"] / max(sums["chroma_true"], 1e-9)
    out["chroma_vivid"] = sums["chroma_vivid"] / max(sums["chroma_true"], 1e-9)
    return out


def train_region_head(cfg: RegionTrainConfig) -> dict:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    tokens, targets, offsets = load_cache(cfg.cache)
    if cfg.val_cache is not None:
        train_pages = np.arange(len(offsets) - 1)
        vt, vy, vo = load_cache(cfg.val_cache)
        val = PageTokens(vt, vy, vo, np.arange(len(vo) - 1))
    else:
        train_pages, val_pages = split_pages(offsets, cfg.val_fraction, cfg.seed)
        val = PageTokens(tokens, targets, offsets, val_pages)
    train = PageTokens(tokens, targets, offsets, train_pages)
    logger.info("%d training pages (%d regions), %d validation pages", len(train), len(tokens), len(val))
    bins = ab_bins()
    if cfg.init is not None:
        head = load_head(cfg.init).train()
        if cfg.dropout:
            for module in head.modules():
                if isinstance(module, torch.nn.Dropout):
                    module.p = cfg.dropout
        logger.info("from %s (%s)", cfg.init, head.options)
    else:
        head = RegionHead(dim=cfg.dim, layers=cfg.layers, heads=cfg.heads, dropout=cfg.dropout)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, best, history, spent = 0, math.inf, [], 0.0
    if cfg.resume and (out / "last.pt").exists():
        state = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
        head.load_state_dict(state["weights"])
        opt.load_state_dict(state["optimizer"])
        step, best, spent = int(state["step"]), float(state["best"]), float(state["seconds"])
        history = json.loads((out / "history.json").read_text()) if (out / "history.json").exists() else []
        logger.info("resumed at step %d", step)
    elif cfg.init is None:
        fit_normalization(head, tokens[np.concatenate([np.arange(offsets[p] + 1, offsets[p + 1]) for p in train_pages[:2000]])])
    budget = cfg.minutes * 60.0
    # The learning rate: linear warm-up over 200 steps, cosine to 5% over the time budget.
    start = time.perf_counter() - spent
    head.train()
    losses = []
    batches = train.sampler(cfg.batch, rng)
    while True:
        elapsed = time.perf_counter() - start
        if elapsed >= budget or (cfg.max_steps is not None and step >= cfg.max_steps):
            break
        frac = elapsed / budget
        lr = cfg.lr * min(1.0, (step + 1) / 200) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        tok, tgt, weight, mask = train.batch(next(batches), reveal=rng)
        logits = head(tok, mask)
        ce = region_ce(logits, tgt, bins)
        w = weight.reshape(-1)
        loss = (ce * w).sum() / w.sum().clamp_min(1e-9)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        opt.step()
        step += 1
        losses.append(loss.item())
        if step % cfg.val_every == 0:
            scores = validate(head, val, bins)
            hinted = validate(head, val, bins, known=0.10)
            scores.update(hinted_safe=hinted["safe"], hinted_gray=hinted["gray"], hinted_safe_vs_gray=hinted["safe_vs_gray"])
            scores.update(step=step, loss=float(np.mean(losses)), seconds=round(time.perf_counter() - start, 1), lr=lr)
            losses = []
            history.append(scores)
            logger.info("step %d loss %.3f | val ce %.3f, ab error safe %.2f vivid %.2f gray %.2f (safe %.3fx), "
                        "chroma safe %.2f vivid %.2f | 10%% known: safe %.3fx", step, scores["loss"], scores["ce"], scores["safe"],
                        scores["vivid"], scores["gray"], scores["safe_vs_gray"], scores["chroma_safe"],
                        scores["chroma_vivid"], scores["hinted_safe_vs_gray"])
            if scores["safe"] < best:
                best = scores["safe"]
                save_head(head, out / "best.pt", step=step, scores=json.dumps(scores))
            torch.save({"weights": head.state_dict(), "optimizer": opt.state_dict(), "step": step, "best": best,
                        "seconds": time.perf_counter() - start, "config": json.dumps(asdict(cfg), default=str)},
                       out / "last.pt")
            (out / "history.json").write_text(json.dumps(history, indent=1))
    if not (out / "best.pt").exists():
        save_head(head, out / "best.pt", step=step)
    export_head(load_head(out / "best.pt"), out / "best.regions.onnx")
    logger.info("done at step %d; best safe ab error %.3f; %s", step, best, out / "best.regions.onnx")
    return {"step": step, "best": best, "history": history}
