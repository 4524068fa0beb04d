"""Validation during training: the metrics of a prediction on the validation pages, the gray baseline beside
them (``metrics.gray_baseline``, the row eval shows too) and the preview of what colorize would show.

A prediction is scored as the page it colors: the gray input's own lightness (colorize keeps the page's L)
under the predicted chroma (``scored_page``); no chroma gives back the gray input itself, the gray baseline.
So the training numbers and eval's measure the same thing, and neither sees the target's lightness.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader, Dataset

from models.color import denormalize_ab, gray_to_l, join_lab
from models.paint.compose import compose_batch
from models.toolbox import metrics as metric_fns
from models.toolbox.metrics import VALIDATION_METRICS as VAL_METRICS

from .metrics_log import MetricsLog
from .plots import preview_grid
from .sampling import worker_init

Batch = dict[str, torch.Tensor]
# A prediction: a batch -> its normalized ab ``[B,2,H,W]``; None is no color at all (the gray baseline).
Predict = Callable[[Batch], "torch.Tensor | None"]


def scored_page(gray: torch.Tensor, ab_norm: torch.Tensor | None) -> torch.Tensor:
    """The page a prediction is scored as: the gray input ``[B,1,H,W]``'s lightness under the normalized chroma
    ``ab_norm`` ``[B,2,H,W]`` as sRGB ``[B,3,H,W]``; without chroma, ``metrics.gray_baseline`` of the gray input."""
    if ab_norm is None:
        return metric_fns.gray_baseline(gray)
    return join_lab(gray_to_l(gray.float()), denormalize_ab(ab_norm))


class Validation:
    """The validation pages of a run (loaded once), scored through ``predict`` functions.

    ``to_batch`` turns a loader's batch into the model contract's batch on the run's device.
    """

    def __init__(self, dataset: Dataset | None, *, batch_size: int, workers: int, seed: int,
                 to_batch: Callable[[Batch], Batch], preview_count: int):
        self.dataset = dataset
        self.batch_size, self.workers, self.seed = batch_size, workers, seed
        self.to_batch = to_batch
        self.preview_count = preview_count
        self._cache: list[Batch] | None = None

    def batches(self) -> list[Batch]:
        if self._cache is None:
            loader = DataLoader(self.dataset, batch_size=self.batch_size, shuffle=False,
                                num_workers=min(self.workers, 2),
                                worker_init_fn=worker_init if self.workers else None,
                                generator=torch.Generator().manual_seed(self.seed))
            self._cache = list(loader)
        return self._cache

    @torch.no_grad()
    def evaluate(self, predict: Predict,
                 preview: bool = True) -> tuple[dict[str, float], tuple[torch.Tensor, ...] | None]:
        """Mean validation metrics of ``predict``; with ``preview``, also the first rows for a preview."""
        sums: dict[str, float] = {}
        count = 0
        shown = None
        for raw in self.batches():
            batch = self.to_batch(raw)
            ab = predict(batch)
            page = scored_page(batch["gray"], None if ab is None else ab.float())
            ab = torch.zeros_like(batch["ab"]) if ab is None else ab.float()
            per_image = {k: v.double() for k, v in metric_fns.compute_all(page, batch["rgb"]).items()}
            per_image["l1_ab"] = (ab - batch["ab"]).abs().flatten(1).mean(1).double()
            for k, v in per_image.items():
                sums[k] = sums.get(k, 0.0) + float(v.sum())
            count += ab.shape[0]
            if preview and shown is None:
                n = self.preview_count
                # What colorize would show: the compose (models.paint.compose), with its default fill.
                composed = compose_batch(gray_to_l(batch["gray"][:n].float()), denormalize_ab(ab[:n]))
                shown = (batch["gray"][:n].cpu(), composed.cpu(), batch["rgb"][:n].cpu())
        return {k: sums[k] / count for k in VAL_METRICS if k in sums}, shown

    def validate(self, net: torch.nn.Module, predict: Predict, *, step: int, epoch: int, log: MetricsLog,
                 out: Path) -> dict[str, float] | None:
        """Score ``net`` (in eval mode meanwhile) through ``predict``; log the record and draw the previews."""
        if self.dataset is None:
            return None
        net.eval()
        try:
            values, preview = self.evaluate(predict)
        finally:
            net.train()
        log.append({"kind": "val", "step": step, "epoch": epoch, **values})
        if preview is not None:
            caption = f"step {step}  epoch {epoch}  gray | prediction | target"
            preview_grid(*preview, out / "previews" / f"epoch{epoch:03d}_step{step:07d}.png", caption=caption)
            preview_grid(*preview, out / "preview.png", caption=caption)
        return values

    def baseline(self, log: MetricsLog) -> dict[str, float] | None:
        """The gray baseline's metrics: logged once per run (a resumed run reads them back)."""
        existing = log.of_kind("baseline")
        if existing:
            return {k: existing[-1][k] for k in VAL_METRICS if k in existing[-1]}
        if self.dataset is None:
            return None
        values, _ = self.evaluate(lambda batch: None, preview=False)
        log.append({"kind": "baseline", "step": 0, "what": "the gray input page (no color)", **values})
        return values


def best_from_log(log: MetricsLog, best_metric: str) -> dict[str, float] | None:
    """The best validation record of the run's log by ``best_metric`` (lower is better), or None."""
    vals = log.of_kind("val")
    if not vals:
        return None
    best = min(vals, key=lambda r: r.get(best_metric, r["l1_ab"]))
    return {k: best[k] for k in VAL_METRICS if k in best}
