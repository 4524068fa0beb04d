"""pix2pixHD colorizer (Wang et al., "High-Resolution Image Synthesis and Semantic Manipulation with
Conditional GANs", CVPR 2018): a coarse-to-fine generator and multi-scale discriminators.

As in the paper: the global generator G1 (c7s1-64, 4 stride-2 downsamplings, 9 residual blocks,
4 transposed-conv upsamplings) runs on the input downsampled 2x; the local enhancer G2 (c7s1-32, one
downsampling, 3 residual blocks, one upsampling) adds G1's last features to its own front-end and
works at full size; 3 PatchGAN discriminators (InstanceNorm) see the (input, output) pair at 1, 1/2
and 1/4 size; the loss is LSGAN + 10 x discriminator feature matching; Adam betas (0.5, 0.999).
Differs: input is L (L/50-1), no instance/label maps and no encoder of instance features; no VGG
perceptual loss (it needs pretrained VGG weights, which cannot be downloaded here); G1 and G2 train
jointly from the start (``local_enhancer=False`` trains G1 alone, the paper's first stage).
``output='ab'`` (default) predicts ab/110 with tanh, because inference joins the page's own L: a
predicted RGB brings its own lightness, which is thrown away, and its chroma is then joined to a
different L. ``output='rgb'`` predicts sRGB (tanh, [-1, 1]) as the paper does and colorize returns
its ab via ``rgb_to_ab_norm``; D then sees (L, RGB).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import ColorModel, StepContext
from .layers import (GANLoss, PatchDiscriminator, ResnetBlock, RGBChroma, down_block, init_weights,
                     resnet_body, resnet_front, resnet_head, set_requires_grad, up_block)
from .registry import register


def downsample2(x: torch.Tensor) -> torch.Tensor:
    """The paper's 3x3 average pool, stride 2, ignoring the padding."""
    return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)


class GlobalGenerator(nn.Module):
    """G1: front-end, ``n_down`` downsamplings, ``n_blocks`` residual blocks, as many upsamplings.

    ``features`` stops before the output head (what the local enhancer adds to its own features).
    """

    def __init__(self, in_ch: int, out_ch: int, ngf: int, n_down: int, n_blocks: int, norm: str = "instance",
                 with_head: bool = True):
        super().__init__()
        self.body = nn.Sequential(*resnet_body(in_ch, ngf, n_down, n_blocks, norm))
        # Inside the local enhancer G1's head is dropped (as the paper): no parameters left without gradients.
        self.head = nn.Sequential(*resnet_head(ngf, out_ch)) if with_head else nn.Identity()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class LocalEnhancer(nn.Module):
    """G2 around G1: G1 sees the input at half size, G2 adds G1's features to its own at full size."""

    def __init__(self, in_ch: int, out_ch: int, ngf: int, n_down_global: int, n_blocks_global: int,
                 n_blocks_local: int, norm: str = "instance"):
        super().__init__()
        ngf_global = ngf * 2
        self.global_net = GlobalGenerator(in_ch, out_ch, ngf_global, n_down_global, n_blocks_global, norm,
                                          with_head=False)
        self.front = nn.Sequential(*resnet_front(in_ch, ngf, norm), *down_block(ngf, ngf_global, norm))
        self.back = nn.Sequential(*[ResnetBlock(ngf_global, norm) for _ in range(n_blocks_local)],
                                  *up_block(ngf_global, ngf, norm), *resnet_head(ngf, out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.back(self.front(x) + self.global_net.features(downsample2(x)))


class MultiscaleDiscriminator(nn.Module):
    """``num_d`` PatchGANs, the k-th on the input downsampled 2^k times."""

    def __init__(self, in_ch: int, ndf: int, n_layers: int, num_d: int):
        super().__init__()
        self.nets = nn.ModuleList(PatchDiscriminator(in_ch, ndf, n_layers, norm="instance") for _ in range(num_d))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i, net in enumerate(self.nets):
            if i:
                x = downsample2(x)
            out.append(net.features(x))
        return out


@register("pix2pixhd")
class Pix2PixHD(ColorModel):
    input_norm = "lab"

    def __init__(self, ngf: int = 32, n_down_global: int = 4, n_blocks_global: int = 9, n_blocks_local: int = 3,
                 local_enhancer: bool = True, ndf: int = 64, n_layers_d: int = 3, num_d: int = 3,
                 lambda_feat: float = 10.0, output: str = "ab"):
        super().__init__()
        if output not in ("ab", "rgb"):
            raise ValueError(f"pix2pixhd output must be 'ab' or 'rgb', not {output!r}")
        self.output = output
        out_ch = 2 if output == "ab" else 3
        if local_enhancer:
            self.generator: nn.Module = LocalEnhancer(1, out_ch, ngf, n_down_global, n_blocks_global, n_blocks_local)
            self.stride = 2 ** (n_down_global + 1)
        else:
            # G1 alone at full size keeps the paper's G1 width (twice the enhancer's).
            self.generator = GlobalGenerator(1, out_ch, ngf * 2, n_down_global, n_blocks_global)
            self.stride = 2 ** n_down_global
        self.discriminator = MultiscaleDiscriminator(1 + out_ch, ndf, n_layers_d, num_d)
        self.gan_loss = GANLoss("lsgan")
        self.lambda_feat = lambda_feat
        self.n_layers_d = n_layers_d
        init_weights(self)

    @classmethod
    def presets(cls):
        return {"full": {"ngf": 32, "n_down_global": 4, "n_blocks_global": 9, "n_blocks_local": 3,
                         "local_enhancer": True, "ndf": 64, "n_layers_d": 3, "num_d": 3},
                "global": {"ngf": 32, "n_down_global": 4, "n_blocks_global": 9, "local_enhancer": False,
                           "ndf": 64, "n_layers_d": 3, "num_d": 2},
                "tiny": {"ngf": 4, "n_down_global": 2, "n_blocks_global": 1, "n_blocks_local": 1,
                         "local_enhancer": True, "ndf": 8, "n_layers_d": 2, "num_d": 2}}

    def colorize(self, x: torch.Tensor) -> torch.Tensor:
        return self.inference_module()(x)

    def inference_module(self) -> nn.Module:
        return self.generator if self.output == "ab" else RGBChroma(self.generator).train(self.training)

    def optimizers(self, lr: float):
        return {"g": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=(0.5, 0.999)),
                "d": torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=(0.5, 0.999))}

    def _target(self, batch) -> torch.Tensor:
        return batch["ab"] if self.output == "ab" else batch["rgb"] * 2 - 1

    def train_step(self, batch, ctx: StepContext):
        L, real = self.model_input(batch), self._target(batch)
        with ctx.autocast():
            fake = self.generator(L)
        set_requires_grad([self.discriminator], True)
        with ctx.autocast():
            d_real = sum(self.gan_loss(f[-1], True) for f in self.discriminator(torch.cat([L, real], 1)))
            d_fake = sum(self.gan_loss(f[-1], False) for f in self.discriminator(torch.cat([L, fake.detach()], 1)))
            loss_d = 0.5 * (d_real + d_fake)
        ctx.backward_step(loss_d, "d", list(self.discriminator.parameters()))
        set_requires_grad([self.discriminator], False)
        with ctx.autocast():
            feats_fake = self.discriminator(torch.cat([L, fake], 1))
            with torch.no_grad():
                feats_real = self.discriminator(torch.cat([L, real], 1))
            g_gan = sum(self.gan_loss(f[-1], True) for f in feats_fake)
            # Feature matching: L1 between D's hidden layers on real and fake, weighted as the official code.
            weight = 4.0 / (self.n_layers_d + 1) / len(feats_fake)
            g_feat = sum(weight * F.l1_loss(ff.float(), fr.float())
                         for fakes, reals in zip(feats_fake, feats_real) for ff, fr in zip(fakes[:-1], reals[:-1]))
            loss_g = g_gan + self.lambda_feat * g_feat
        ctx.backward_step(loss_g, "g", list(self.generator.parameters()))
        set_requires_grad([self.discriminator], True)
        # L1 to the target is not optimised (the paper has no L1 term); it is logged to show progress.
        l1 = F.l1_loss(fake.detach().float(), real).item()
        return {"l1": l1, "g_gan": g_gan.item(), "g_feat": g_feat.item(), "d_real": d_real.item(), "d_fake": d_fake.item()}
