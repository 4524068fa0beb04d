"""U-Net colorizer (Ronneberger et al., "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI 2015), regressing ab from L.

Differs from the paper: padded convolutions (output size = input size), BatchNorm after every
convolution and Dropout in the bottleneck, bilinear-free transposed-conv upsampling, a tanh head
for ab in [-1, 1], and an L1 loss on ab (robust to the multimodal colors that make L2 go gray).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import ChromaRegressionModel
from .registry import register


def conv_block(cin: int, cout: int, norm: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for c_in in (cin, cout):
        layers += [nn.Conv2d(c_in, cout, 3, padding=1, bias=not norm)]
        if norm:
            layers += [nn.BatchNorm2d(cout)]
        layers += [nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class UNetBody(nn.Module):
    """Encoder-decoder with skip connections: ``in_ch`` -> ``out_ch`` at the same size."""

    def __init__(self, in_ch: int, out_ch: int, base: int, depth: int, dropout: float):
        super().__init__()
        chans = [base * 2 ** min(i, 4) for i in range(depth + 1)]
        self.down = nn.ModuleList()
        c = in_ch
        for ch in chans[:-1]:
            self.down.append(conv_block(c, ch))
            c = ch
        self.bottleneck = nn.Sequential(conv_block(c, chans[-1]), nn.Dropout2d(dropout))
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        c = chans[-1]
        for ch in reversed(chans[:-1]):
            self.up.append(nn.ConvTranspose2d(c, ch, 2, stride=2))
            self.dec.append(conv_block(ch * 2, ch))
            c = ch
        self.head = nn.Conv2d(c, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = dec(torch.cat([up(x), skip], dim=1))
        return self.head(x)


@register("unet")
class UNet(ChromaRegressionModel):
    input_norm = "lab"

    def __init__(self, base: int = 64, depth: int = 4, dropout: float = 0.5):
        super().__init__()
        self.stride = 2 ** depth
        self.net = UNetBody(1, 2, base, depth, dropout)

    @classmethod
    def presets(cls):
        return {"full": {"base": 64, "depth": 4, "dropout": 0.5},
                "small": {"base": 24, "depth": 4, "dropout": 0.1},
                "tiny": {"base": 8, "depth": 2, "dropout": 0.0}}

    def colorize(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(x))
