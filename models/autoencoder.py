"""Convolutional autoencoder colorizer: the plain encoder-decoder baseline that colorization papers
compare against (e.g. Masci et al., "Stacked Convolutional Auto-Encoders", ICANN 2011, used as a
colorizer), regressing ab from L.

Strided 4x4 convolutions encode, ConvTranspose2d layers decode, and there are no skip connections,
so every detail must pass the bottleneck: this is the model skips improve on. Differs from the
generic autoencoder: the target is the chroma ab (tanh, ab/110), not the input itself, with BatchNorm
after each layer and an L1 loss on ab.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import ChromaRegressionModel
from .registry import register


@register("autoencoder")
class Autoencoder(ChromaRegressionModel):
    input_norm = "lab"

    def __init__(self, base: int = 64, depth: int = 4):
        super().__init__()
        self.stride = 2 ** depth
        chans = [base * 2 ** min(i, 3) for i in range(depth)]
        enc: list[nn.Module] = []
        c = 1
        for ch in chans:
            enc += [nn.Conv2d(c, ch, 4, 2, 1, bias=False), nn.BatchNorm2d(ch), nn.LeakyReLU(0.2, True)]
            c = ch
        dec: list[nn.Module] = []
        for ch in list(reversed(chans[:-1])) + [base]:
            dec += [nn.ConvTranspose2d(c, ch, 4, 2, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True)]
            c = ch
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)
        self.head = nn.Conv2d(c, 2, 3, padding=1)

    @classmethod
    def presets(cls):
        return {"full": {"base": 64, "depth": 4}, "tiny": {"base": 8, "depth": 2}}

    def colorize(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.head(self.decoder(self.encoder(x))))
