"""Zhang et al.'s classifier colorizer ("Colorful Image Colorization", ECCV 2016).

As in the paper: 8 VGG-style conv blocks (conv1-2: 2 convs, conv3-7: 3 convs, 3x3, ReLU, BatchNorm
after each block), downsampling by stride-2 convs in blocks 1-3, dilation 2 in blocks 5-6, block 8
upsamples once with a 4x4 transposed conv; a 1x1 conv gives logits over the in-gamut ab bins at 1/4
resolution. Training: multinomial cross-entropy against soft-encoded targets (the 5 nearest bins,
Gaussian sigma 5), each pixel weighted by the class-rebalancing weight of its closest bin (lambda
0.5, from the training batches' smoothed bin distribution, kept as the ``rebalance`` buffer so it
travels in the checkpoint; uniform until ``prepare_data_stats`` runs). Inference: annealed mean,
T = 0.38, upsampled 4x.
Differs: input is L/50-1 (the paper: L-50); Adam betas (0.9, 0.99) with weight decay 1e-3 as the
paper, at the trainer's lr; the bins are ``models.color.ab_bins()`` (computed from the sRGB gamut:
NUM_AB_BINS, 309, where Zhang's table has 313); bilinear 4x upsampling of the annealed ab.
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .base import ColorModel, StepContext
from .color import (ANNEAL_T, NUM_AB_BINS, REBALANCE_LAMBDA, ab_bin_counts, ab_bin_targets, ab_bins, annealed_mean,
                    normalize_ab, rebalance_weights, rebalanced_cross_entropy)
from .registry import register

# (convs, stride of the last conv, dilation, width multiple of `base`) per block, as the paper.
_BLOCKS = [(2, 2, 1, 1), (2, 2, 1, 2), (3, 2, 1, 4), (3, 1, 1, 8), (3, 1, 2, 8), (3, 1, 2, 8), (3, 1, 1, 8)]


def _vgg_block(cin: int, cout: int, convs: int, stride: int, dilation: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(convs):
        s = stride if i == convs - 1 else 1
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, s, dilation, dilation=dilation), nn.ReLU(True)]
    layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers)


@register("eccv16")
class ECCV16(ColorModel):
    input_norm = "lab"

    def __init__(self, base: int = 64, anneal_t: float = ANNEAL_T, rebalance_lambda: float = REBALANCE_LAMBDA):
        super().__init__()
        self.stride = 8
        self.anneal_t = anneal_t
        self.rebalance_lambda = rebalance_lambda
        blocks = []
        c = 1
        for convs, stride, dil, mult in _BLOCKS:
            blocks.append(_vgg_block(c, base * mult, convs, stride, dil))
            c = base * mult
        half = base * 4
        blocks.append(nn.Sequential(nn.ConvTranspose2d(c, half, 4, 2, 1), nn.ReLU(True),
                                    nn.Conv2d(half, half, 3, 1, 1), nn.ReLU(True),
                                    nn.Conv2d(half, half, 3, 1, 1), nn.ReLU(True),
                                    nn.Conv2d(half, NUM_AB_BINS, 1)))
        self.body = nn.Sequential(*blocks)
        self.register_buffer("bins", ab_bins(), persistent=False)
        self.register_buffer("rebalance", torch.ones(NUM_AB_BINS))

    @classmethod
    def presets(cls):
        return {"full": {"base": 64}, "tiny": {"base": 8}}

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Bin logits ``[B, Q, H/4, W/4]``."""
        return self.body(x)

    def colorize(self, x: torch.Tensor) -> torch.Tensor:
        ab = annealed_mean(self.logits(x), self.bins, self.anneal_t)
        return normalize_ab(F.interpolate(ab, scale_factor=4.0, mode="bilinear", align_corners=False))

    def optimizers(self, lr: float):
        return {"g": torch.optim.Adam(self.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=1e-3)}

    def train_step(self, batch, ctx: StepContext):
        # Logits come out at 1/4 of the input's size.
        target, weight = ab_bin_targets(batch["ab"], self.bins, self.rebalance, pool=4)
        with ctx.autocast():
            logits = self.logits(self.model_input(batch))
        loss = rebalanced_cross_entropy(logits, target, weight)
        ctx.backward_step(loss, "g")
        return {"ce": loss.item()}

    @torch.no_grad()
    def prepare_data_stats(self, batches: Iterable[dict[str, torch.Tensor]]) -> None:
        """Count the training ab per nearest bin and store Zhang's rebalancing weights."""
        counts = ab_bin_counts((batch["ab"] for batch in batches), self.bins)
        if counts.sum() > 0:
            weights = rebalance_weights(counts, self.rebalance_lambda, bins=self.bins.cpu())
            self.rebalance.copy_(weights.to(self.rebalance))
