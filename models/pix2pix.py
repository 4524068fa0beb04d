"""pix2pix colorizer (Isola et al., "Image-to-Image Translation with Conditional Adversarial
Networks", CVPR 2017): a U-Net generator and a 70x70 PatchGAN discriminator conditioned on the input.

As in the paper: an 8-down encoder for 256 px (C64-C128-C256-C512-C512-C512-C512-C512, 4x4 stride-2
convs, LeakyReLU 0.2, BatchNorm except the first and innermost layers), a mirrored decoder with skip
connections and dropout 0.5 in its first 3 blocks, tanh output; D sees (input, output) pairs; the
loss is GAN + lambda_L1 * L1 with lambda_L1 = 100; Adam betas (0.5, 0.999); D's loss halved.
Differs: the generator maps L (L/50-1) to ab (ab/110) rather than RGB to RGB, D sees (L, ab);
dropout is off at inference (eval mode) where the paper keeps it as noise; ``gan_mode`` picks the
paper's cross-entropy ('vanilla', default) or LSGAN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import ColorModel, StepContext
from .layers import GANLoss, PatchDiscriminator, init_weights, set_requires_grad
from .registry import register


class UNetGenerator(nn.Module):
    """pix2pix's U-Net: ``n_down`` stride-2 4x4 convs down, as many transposed convs up, skips between."""

    def __init__(self, in_ch: int, out_ch: int, ngf: int = 64, n_down: int = 8, n_dropout: int = 3,
                 dropout: float = 0.5):
        super().__init__()
        chans = [ngf * min(2 ** i, 8) for i in range(n_down)]
        self.down = nn.ModuleList()
        c = in_ch
        for i, ch in enumerate(chans):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, True)]
            # No norm on the first layer (as the paper) nor on the 1x1 innermost one (BatchNorm of one value).
            use_norm = 0 < i < n_down - 1
            layers.append(nn.Conv2d(c, ch, 4, 2, 1, bias=not use_norm))
            if use_norm:
                layers.append(nn.BatchNorm2d(ch))
            self.down.append(nn.Sequential(*layers))
            c = ch
        self.up = nn.ModuleList()
        for j, ch in enumerate(reversed(chans[:-1])):
            cin = c if j == 0 else c * 2
            layers = [nn.ReLU(True), nn.ConvTranspose2d(cin, ch, 4, 2, 1, bias=False), nn.BatchNorm2d(ch)]
            if j < n_dropout and dropout > 0:
                layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))
            c = ch
        self.head = nn.Sequential(nn.ReLU(True), nn.ConvTranspose2d(c * 2, out_ch, 4, 2, 1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in self.up:
            x = block(x)
            x = torch.cat([x, skips.pop()], dim=1)
        return self.head(x)


@register("pix2pix")
class Pix2Pix(ColorModel):
    input_norm = "lab"

    def __init__(self, ngf: int = 64, ndf: int = 64, n_down: int = 8, n_layers_d: int = 3,
                 dropout: float = 0.5, lambda_l1: float = 100.0, gan_mode: str = "vanilla"):
        super().__init__()
        self.stride = 2 ** n_down
        self.generator = UNetGenerator(1, 2, ngf, n_down, n_dropout=3, dropout=dropout)
        self.discriminator = PatchDiscriminator(3, ndf, n_layers_d, norm="batch")
        self.gan_loss = GANLoss(gan_mode)
        self.lambda_l1 = lambda_l1
        init_weights(self)

    @classmethod
    def presets(cls):
        return {"full": {"ngf": 64, "ndf": 64, "n_down": 8, "n_layers_d": 3, "dropout": 0.5},
                "tiny": {"ngf": 8, "ndf": 8, "n_down": 4, "n_layers_d": 2, "dropout": 0.5}}

    def colorize(self, x: torch.Tensor) -> torch.Tensor:
        return self.generator(x)

    def inference_module(self) -> nn.Module:
        return self.generator

    def optimizers(self, lr: float):
        return {"g": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=(0.5, 0.999)),
                "d": torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=(0.5, 0.999))}

    def train_step(self, batch, ctx: StepContext):
        L, ab = self.model_input(batch), batch["ab"]
        with ctx.autocast():
            fake = self.generator(L)
        # D: real (L, ab) vs fake (L, G(L)), the objective halved as in the paper.
        set_requires_grad([self.discriminator], True)
        with ctx.autocast():
            d_real = self.gan_loss(self.discriminator(torch.cat([L, ab], 1)), True)
            d_fake = self.gan_loss(self.discriminator(torch.cat([L, fake.detach()], 1)), False)
            loss_d = 0.5 * (d_real + d_fake)
        ctx.backward_step(loss_d, "d", list(self.discriminator.parameters()))
        # G: fool D and stay near the target in L1.
        set_requires_grad([self.discriminator], False)
        with ctx.autocast():
            g_gan = self.gan_loss(self.discriminator(torch.cat([L, fake], 1)), True)
            g_l1 = F.l1_loss(fake.float(), ab)
            loss_g = g_gan + self.lambda_l1 * g_l1
        ctx.backward_step(loss_g, "g", list(self.generator.parameters()))
        set_requires_grad([self.discriminator], True)
        return {"g_gan": g_gan.item(), "g_l1": g_l1.item(), "d_real": d_real.item(), "d_fake": d_fake.item()}
