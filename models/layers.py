"""Building blocks the GAN colorizers share: PatchGAN discriminator, GAN losses, image pool,
ResNet generator (after junyanz/pytorch-CycleGAN-and-pix2pix, re-written to our contract).
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from .color import rgb_to_ab_norm


def norm_layer(kind: str, ch: int) -> nn.Module:
    """'batch' (pix2pix), 'instance' (CycleGAN, pix2pixHD) or 'none'."""
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "instance":
        return nn.InstanceNorm2d(ch, affine=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; use 'batch', 'instance' or 'none'")


def init_weights(net: nn.Module, gain: float = 0.02) -> None:
    """N(0, 0.02) convolutions and N(1, 0.02) norm scales, as pix2pix/CycleGAN initialise."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)


class PatchDiscriminator(nn.Module):
    """PatchGAN: a grid of real/fake logits, each seeing one patch (70x70 with ``n_layers=3``).

    ``forward`` returns the logits; ``features`` returns every layer's output (for feature matching).
    """

    def __init__(self, in_ch: int, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        layers: list[nn.Sequential] = [nn.Sequential(nn.Conv2d(in_ch, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True))]
        ch = ndf
        for i in range(1, n_layers + 1):
            out = ndf * min(2 ** i, 8)
            stride = 2 if i < n_layers else 1
            layers.append(nn.Sequential(nn.Conv2d(ch, out, 4, stride, 1, bias=norm != "batch"),
                                        norm_layer(norm, out), nn.LeakyReLU(0.2, True)))
            ch = out
        layers.append(nn.Sequential(nn.Conv2d(ch, 1, 4, 1, 1)))
        self.layers = nn.ModuleList(layers)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[-1]


class GANLoss(nn.Module):
    """'lsgan' (least squares, Mao et al.) or 'vanilla' (the original cross-entropy) on logits."""

    def __init__(self, mode: str = "lsgan"):
        super().__init__()
        if mode not in ("lsgan", "vanilla"):
            raise ValueError(f"unknown gan_mode {mode!r}; use 'lsgan' or 'vanilla'")
        self.mode = mode

    def forward(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        logits = logits.float()
        target = torch.full_like(logits, 1.0 if real else 0.0)
        if self.mode == "lsgan":
            return F.mse_loss(logits, target)
        return F.binary_cross_entropy_with_logits(logits, target)


class ImagePool:
    """Shrivastava et al.'s history of generated images: the discriminator sees old fakes too.

    With probability 0.5 a new fake swaps in for a random stored one (which is returned instead).
    """

    def __init__(self, size: int = 50):
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for img in images.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(img)
                out.append(img)
            elif float(torch.rand(())) < 0.5:  # torch's generator: torch.manual_seed makes a run repeatable
                i = int(torch.randint(self.size, ()))
                out.append(self.images[i].clone())
                self.images[i] = img
            else:
                out.append(img)
        return torch.cat(out, 0)


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    """Freeze discriminators during the generator step so its backward leaves them untouched."""
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


class ResnetBlock(nn.Module):
    """Two reflection-padded 3x3 convs with a skip (He et al.), as CycleGAN and pix2pixHD use."""

    def __init__(self, ch: int, norm: str = "instance", dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), norm_layer(norm, ch), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), norm_layer(norm, ch)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def resnet_front(in_ch: int, ngf: int, norm: str) -> list[nn.Module]:
    """c7s1-ngf: reflection pad 3, 7x7 conv, norm, ReLU."""
    return [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, ngf, 7), norm_layer(norm, ngf), nn.ReLU(True)]


def down_block(cin: int, cout: int, norm: str) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, 2, 1), norm_layer(norm, cout), nn.ReLU(True)]


def up_block(cin: int, cout: int, norm: str) -> list[nn.Module]:
    return [nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1), norm_layer(norm, cout), nn.ReLU(True)]


def resnet_head(ngf: int, out_ch: int) -> list[nn.Module]:
    """c7s1-out with tanh."""
    return [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7), nn.Tanh()]


def resnet_body(in_ch: int, ngf: int, n_down: int, n_blocks: int, norm: str) -> list[nn.Module]:
    """c7s1-ngf, ``n_down`` downsamplings, ``n_blocks`` residual blocks, as many upsamplings (ends at ``ngf``)."""
    layers = resnet_front(in_ch, ngf, norm)
    ch = ngf
    for _ in range(n_down):
        layers += down_block(ch, ch * 2, norm)
        ch *= 2
    layers += [ResnetBlock(ch, norm) for _ in range(n_blocks)]
    for _ in range(n_down):
        layers += up_block(ch, ch // 2, norm)
        ch //= 2
    return layers


class ResnetGenerator(nn.Module):
    """Johnson et al.'s transformer net as CycleGAN uses it: c7s1-64, d128, d256, n x R256, u128, u64, c7s1."""

    def __init__(self, in_ch: int, out_ch: int, ngf: int = 64, n_down: int = 2, n_blocks: int = 9,
                 norm: str = "instance"):
        super().__init__()
        self.net = nn.Sequential(*resnet_body(in_ch, ngf, n_down, n_blocks, norm), *resnet_head(ngf, out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class RGBChroma(nn.Module):
    """A generator of sRGB in [-1, 1], followed by its chroma ab/110: how RGB models colorize."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rgb_to_ab_norm((self.generator(x) + 1) / 2)
