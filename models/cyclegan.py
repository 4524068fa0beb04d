"""CycleGAN colorizer (Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks", ICCV 2017), trained on unrelated gray and color pages.

As in the paper: two ResNet generators (c7s1-64, d128, d256, 9 residual blocks, u128, u64, c7s1;
InstanceNorm), G: gray -> color and F: color -> gray; two 70x70 PatchGANs, D_color and D_gray;
LSGAN; cycle loss with lambda 10 both ways; identity loss 0.5 * lambda; a pool of 50 past fakes for
each discriminator; Adam betas (0.5, 0.999); D's loss halved.
Channels: the gray domain is L (L/50-1, 1 channel), the color domain is sRGB in [-1, 1] (3 channels).
Identity needs a generator to take an image of its own output domain. F can: a gray page is a
valid color image with neutral chroma, so F(gray replicated to RGB) must give back its L. G cannot
(a color image has no single-channel form that is still a color image), so G has no identity term.
``colorize`` runs G alone and returns the chroma of its RGB through ``rgb_to_ab_norm``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import ColorModel, StepContext
from .layers import GANLoss, ImagePool, PatchDiscriminator, ResnetGenerator, RGBChroma, init_weights, set_requires_grad
from .registry import register


@register("cyclegan")
class CycleGAN(ColorModel):
    input_norm = "lab"

    def __init__(self, ngf: int = 64, ndf: int = 64, n_blocks: int = 9, n_layers_d: int = 3,
                 lambda_cycle: float = 10.0, lambda_identity: float = 0.5, pool_size: int = 50):
        super().__init__()
        self.stride = 4
        self.g_color = ResnetGenerator(1, 3, ngf, 2, n_blocks)
        self.g_gray = ResnetGenerator(3, 1, ngf, 2, n_blocks)
        self.d_color = PatchDiscriminator(3, ndf, n_layers_d, norm="instance")
        self.d_gray = PatchDiscriminator(1, ndf, n_layers_d, norm="instance")
        self.gan_loss = GANLoss("lsgan")
        self.lambda_cycle = lambda_cycle
        self.lambda_identity = lambda_identity
        self.pool_color = ImagePool(pool_size)
        self.pool_gray = ImagePool(pool_size)
        init_weights(self)

    @classmethod
    def presets(cls):
        return {"full": {"ngf": 64, "ndf": 64, "n_blocks": 9, "n_layers_d": 3},
                "tiny": {"ngf": 8, "ndf": 8, "n_blocks": 2, "n_layers_d": 2}}

    def colorize(self, x: torch.Tensor) -> torch.Tensor:
        return RGBChroma(self.g_color)(x)

    def inference_module(self) -> nn.Module:
        return RGBChroma(self.g_color).train(self.training)

    def _generators(self) -> list[nn.Parameter]:
        return list(self.g_color.parameters()) + list(self.g_gray.parameters())

    def _discriminators(self) -> list[nn.Parameter]:
        return list(self.d_color.parameters()) + list(self.d_gray.parameters())

    def optimizers(self, lr: float):
        return {"g": torch.optim.Adam(self._generators(), lr=lr, betas=(0.5, 0.999)),
                "d": torch.optim.Adam(self._discriminators(), lr=lr, betas=(0.5, 0.999))}

    def train_step(self, batch, ctx: StepContext):
        gray = self.model_input(batch)          # L/50-1 of gray pages
        color = batch["rgb"] * 2 - 1            # unrelated color pages, [-1, 1]
        dis = [self.d_color, self.d_gray]
        set_requires_grad(dis, False)
        with ctx.autocast():
            fake_color = self.g_color(gray)
            fake_gray = self.g_gray(color)
            g_adv = (self.gan_loss(self.d_color(fake_color), True) + self.gan_loss(self.d_gray(fake_gray), True))
            cycle = (F.l1_loss(self.g_gray(fake_color).float(), gray)
                     + F.l1_loss(self.g_color(fake_gray).float(), color))
            loss_g = g_adv + self.lambda_cycle * cycle
            identity = torch.zeros((), device=gray.device)
            if self.lambda_identity > 0:
                # A gray page as RGB is a (neutral) color image: F must keep its lightness.
                gray_rgb = (batch["gray"] * 2 - 1).expand(-1, 3, -1, -1)
                identity = F.l1_loss(self.g_gray(gray_rgb).float(), gray)
                loss_g = loss_g + self.lambda_cycle * self.lambda_identity * identity
        ctx.backward_step(loss_g, "g", self._generators())
        set_requires_grad(dis, True)
        with ctx.autocast():
            old_color = self.pool_color.query(fake_color)
            old_gray = self.pool_gray.query(fake_gray)
            d_color = 0.5 * (self.gan_loss(self.d_color(color), True) + self.gan_loss(self.d_color(old_color), False))
            d_gray = 0.5 * (self.gan_loss(self.d_gray(gray), True) + self.gan_loss(self.d_gray(old_gray), False))
            loss_d = d_color + d_gray
        ctx.backward_step(loss_d, "d", self._discriminators())
        return {"g_adv": g_adv.item(), "cycle": cycle.item(), "identity": identity.item(),
                "d_color": d_color.item(), "d_gray": d_gray.item()}
