"""The region model: one color distribution per region of a page, read from the regions' tokens.

A pixel model (the default ``effunet``) predicts each pixel's chroma; where it is unsure its mean
color is pale, and the flat fill leaves such regions gray. The region model reads one token per
region (``models.paint.tokens``: the pixel model's prediction pooled inside the region, the page's
gray there, its place and kind) and, through a small transformer over all the page's regions (so a
region sees the figure and the page around it), gives each region a distribution over the
``models.color`` ab bins. A palette then decodes it (``models.paint.tokens.decode``): ``safe`` the
color nearest to the whole distribution (what minimizes the expected ab distance, gray where the
model is torn), ``vivid`` its most likely color.

It trains on tokens cached once per composed page (``trainer.region_data``, ``trainer.region_train``),
thousands of pages a minute on a CPU, and ships as a small ONNX file beside the pixel model
(``<model>.regions.onnx``) that colorize runs with onnxruntime.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .color import NUM_AB_BINS, ab_bins
from .paint.tokens import HEAD_FEATURES

FORMAT = "mangacolor-regionhead-1"


class _Block(nn.Module):
    """Pre-norm transformer block in plain ops (exports to any ONNX opset)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.drop = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        B, N, D = x.shape
        h = self.heads
        q, k, v = self.qkv(self.norm1(x)).reshape(B, N, 3, h, D // h).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(D // h))
        if bias is not None:
            att = att + bias
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, N, D)
        x = x + self.drop(self.proj(y))
        return x + self.drop(self.ff(self.norm2(x)))


class RegionHead(nn.Module):
    """Tokens with what is known of them ``[B, N, HEAD_FEATURES]`` (``models.paint.tokens.with_known``; and a
    padding mask ``[B, N]``, True = a real region) ->
    logits ``[B, N, NUM_AB_BINS]``. The token normalization (``mean``, ``std``) is fit on the
    training cache and kept in the weights."""

    def __init__(self, features: int = HEAD_FEATURES, dim: int = 96, layers: int = 3, heads: int = 4,
                 bins: int = NUM_AB_BINS, dropout: float = 0.0):
        super().__init__()
        self.options = {"features": features, "dim": dim, "layers": layers, "heads": heads, "bins": bins,
                        "dropout": dropout}
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("std", torch.ones(features))
        self.embed = nn.Sequential(nn.Linear(features, dim), nn.GELU(), nn.Linear(dim, dim))
        self.blocks = nn.ModuleList([_Block(dim, heads, dropout) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, bins)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embed((tokens - self.mean) / self.std)
        bias = None
        if mask is not None:
            bias = torch.zeros(mask.shape, dtype=x.dtype, device=x.device).masked_fill(~mask, -1e4)[:, None, None, :]
        for block in self.blocks:
            x = block(x, bias)
        return self.out(self.norm(x))


class _Probabilities(nn.Module):
    """What the ONNX file computes: tokens ``[1, N, F]`` -> probabilities ``[1, N, Q]``."""

    def __init__(self, head: RegionHead):
        super().__init__()
        self.head = head

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.head(tokens), dim=-1)


def save_head(head: RegionHead, path, **extra) -> None:
    torch.save({"format": FORMAT, "options": head.options, "weights": head.state_dict(), **extra}, path)


def load_head(path) -> RegionHead:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt.get("format") != FORMAT:
        raise ValueError(f"{path}: not a region model checkpoint ({FORMAT})")
    head = RegionHead(**ckpt["options"])
    head.load_state_dict(ckpt["weights"])
    return head.eval()


def export_head(head: RegionHead, path, opset: int = 17) -> None:
    """Write the ONNX file colorize reads (input ``tokens`` ``[1, N, F]``, output ``probs`` ``[1, N, Q]``,
    the bins' ab in the metadata ``mangacolor.bins``)."""
    import json
    import warnings

    import onnx

    module = _Probabilities(head.eval())
    dummy = torch.zeros(1, 7, head.options["features"])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (dummy,), str(path), input_names=["tokens"], output_names=["probs"],
                          dynamic_axes={"tokens": {1: "regions"}, "probs": {1: "regions"}},
                          opset_version=opset, dynamo=False)
    proto = onnx.load(str(path))
    for key, value in {"model": "regionhead", "options": json.dumps(head.options, sort_keys=True),
                       "bins": json.dumps(ab_bins().tolist())}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f"mangacolor.{key}", value
    onnx.save(proto, str(path))
