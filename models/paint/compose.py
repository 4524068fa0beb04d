"""The compose in torch (docs/ARCHITECTURE.md, "Color"): a model's working-size chroma joined to a page's
full-resolution lightness, on the prediction's device (a GPU).

``models.paint.page.compose_page`` runs it for a prediction on a GPU (``colorize``, ``eval``) and the
numpy twin (``models.paint.compose_cpu``, the same picture within 1 level) on the CPU; the trainer's
previews call :func:`compose_batch`. So what a user sees, what eval scores and what training shows
are one picture. The fills (``flat``, ``soft``) are ``models.paint.fills``'.

Both fills keep the page's L exactly where it is darker than the fill color needs (ink, tones); white
paper under a color darkens just enough to hold it (``fill_paper``, ``color.fill_lightness``).
``saturation`` scales the model's chroma (0 = gray, 1 = as predicted, up to 2); ``hints`` (an RGBA
image of the page's size) give every region they touch exactly their color, in either fill.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .. import color
from ..cie import gray_to_l
from . import compose_cpu, fills, luma
from . import regions as rg
from .fills import DEFAULT_FILL

def _table_fill_lightness(colors: np.ndarray, device: torch.device) -> torch.Tensor:
    """Per-label fill lightness ``[n + 1]`` for a per-label color table ``[n + 1, 2]``."""
    ab = torch.from_numpy(np.ascontiguousarray(colors.T)).reshape(1, 2, -1, 1)
    return color.fill_lightness(ab)[0, 0, :, 0].to(device)


def _paint_full(regions: rg.Regions, table: torch.Tensor) -> torch.Tensor:
    """A per-label table ``[n + 1, C]`` -> ``[1, C, H, W]`` at full resolution (each label pixel a block)."""
    labels = torch.from_numpy(regions.labels).to(table.device).long()
    small = table[labels].permute(2, 0, 1)[None]
    f = regions.factor
    if f > 1:
        small = small.repeat_interleave(f, dim=2).repeat_interleave(f, dim=3)
    H, W = regions.shape
    return small[..., :H, :W]


def compose(L: torch.Tensor, ab: torch.Tensor, *, gray: np.ndarray | None = None, fill: str = DEFAULT_FILL,
            saturation: float = 1.0, hints: np.ndarray | None = None, confidence: torch.Tensor | None = None,
            fill_paper: bool = True, regions: rg.Regions | None = None,
            palette: str = rg.DEFAULT_PALETTE, model_colors: np.ndarray | None = None) -> torch.Tensor:
    """One page: L ``[1,1,H,W]`` (CIE L, full resolution) + ab ``[1,2,h,w]`` (Lab units, working size
    covering the page) -> ``HxWx3`` uint8 sRGB on L's device.

    ``gray``: the page's ``HxW`` 8-bit gray pixels when it has them (the segmentation reads them;
    else it reads L). ``confidence``: ``[1,1,h,w]`` in [0, 1] from models that give one.
    ``regions``: a segmentation already made for this page.
    """
    fills.check_fill(fill)
    H, W = L.shape[-2:]
    device = L.device
    need_regions = fill == "flat" or hints is not None
    # Without the page's gray, its L on the CPU is what the segmentation and the hints' spread read (once).
    needs_l = gray is None and ((need_regions and regions is None) or hints is not None)
    L_page = L[0, 0].float().cpu().numpy() if needs_l else None
    if need_regions and regions is None:
        regions = fills.segment(gray, L_page)
    regions, model_colors = fills.regions_for_hints(regions, hints, model_colors)
    known, ids, hint_lab, smooth = fills.known_and_gray(regions, hints, gray, fill_paper, L_page)
    if smooth is not gray:  # hints' screentone descreened: the page's L follows its new gray there
        changed = torch.from_numpy(smooth != gray).to(device)
        L = torch.where(changed, torch.from_numpy(gray_to_l(smooth / np.float32(255.0))).to(device, L.dtype), L)
        gray = smooth
    if fill == "flat":
        conf = None if confidence is None else confidence.float().cpu().numpy()
        colors, ids, hint_lab = fills.flat_colors(regions, ab.float().cpu().numpy(), conf, hints=known,
                                                  saturation=saturation, palette=palette, model_colors=model_colors)
        table = torch.from_numpy(colors).to(device)
        if fill_paper:
            fill_l = _table_fill_lightness(colors, device)
            paper = torch.zeros_like(fill_l)
            own = ~np.isnan(hint_lab[:, 0]) if ids is not None else None
            if own is not None and own.any():
                # A hinted region's paper takes the hint's own lightness: exactly the hint's color (a hint
                # map's colors have none and take the page's lightness, as the model's do).
                index = torch.from_numpy(ids[own]).to(device)
                fill_l[index] = torch.from_numpy(hint_lab[own, 0]).to(device)
                paper[index] = torch.from_numpy(_known_paper_fy(regions, gray, L, ids[own])).to(device)
            table = torch.cat([table, fill_l[:, None], paper[:, None]], dim=1)
        if gray is not None and fill_paper:  # --keep-lightness keeps every pixel's L
            L = _luma_lightness(L, regions, gray, colors, (paper > 0).cpu().numpy())
        painted = _paint_full(regions, table)
        ab_full = painted[:, :2]
        if fill_paper:
            L, ab_full = _lay(L, ab_full, painted[:, 2:3], painted[:, 3:4])
        return color.lab_to_srgb8_keeping_l(L, ab_full)

    if rg.check_palette(palette) == "vivid":
        ab = torch.from_numpy(rg.vivid(ab.float().cpu().numpy(), axis=1)).to(ab.device)
    ab = rg.saturate(ab.float(), saturation)
    ab_full = F.interpolate(ab, size=(H, W), mode="bilinear", align_corners=False)
    fill_l = None
    if fill_paper:
        # Paper under a fill color darkens just enough to hold it; ink and every L below stay.
        fill_l = F.interpolate(color.fill_lightness(ab), size=(H, W), mode="bilinear", align_corners=False)
    if ids is not None:
        if len(ids):
            table = np.zeros((regions.count + 1, 4), dtype=np.float32)
            table[ids, :2] = hint_lab[:, 1:]
            no_l = np.isnan(hint_lab[:, 0])
            table[ids, 2] = np.where(no_l, compose_cpu.fill_lightness_exact(hint_lab[:, 1:].T.copy()), hint_lab[:, 0])
            # > 0: hinted with its own lightness; -1: a hint map's color, under the page's lightness
            table[ids, 3] = np.where(no_l, -1.0, _known_paper_fy(regions, gray, L, ids))
            painted = _paint_full(regions, torch.from_numpy(table).to(device))
            hinted = painted[:, 3:] != 0
            ab_full = torch.where(hinted, painted[:, :2], ab_full)
            if fill_l is not None:
                fill_l = torch.where(hinted, painted[:, 2:3], fill_l)
                L, ab_full = _lay(L, ab_full, fill_l, painted[:, 3:])
                return color.lab_to_srgb8_keeping_l(L, ab_full)
    if fill_l is not None:
        L = torch.minimum(L, fill_l)
    return color.lab_to_srgb8_keeping_l(L, ab_full)


def _luma_lightness(L: torch.Tensor, regions: rg.Regions, gray: np.ndarray, colors: np.ndarray,
                    own: np.ndarray) -> torch.Tensor:
    """The page's L with each shaded region's pixels at the lightness that gives its color the pixel's gray
    as its luma (``luma.luma_rows``, the numpy compose's table): ``[1,1,H,W]``."""
    lit = luma.luma_rows(colors, own, regions, gray)
    if lit is None:
        return L
    device = L.device
    row = torch.from_numpy(lit[0].astype(np.int64)).to(device)
    row = row[torch.from_numpy(regions.full_labels().astype(np.int64)).to(device)]
    lightness = torch.from_numpy(np.float32(116.0) * lit[1] - np.float32(16.0)).to(device)
    levels = torch.from_numpy(np.asarray(gray, np.int64)).to(device)
    new = lightness[row.clamp(min=0), levels]
    return torch.where(row >= 0, new, L[0, 0].to(new.dtype))[None, None].to(L.dtype)


def _known_paper_fy(regions: rg.Regions, gray: np.ndarray | None, L: torch.Tensor, ids: np.ndarray) -> np.ndarray:
    """fy of the paper of each hinted region (``compose_cpu``'s, from the gray pixels or from L)."""
    page_l = None if gray is not None else L[0, 0].float().cpu().numpy()
    return compose_cpu._paper_fy(regions, gray, page_l, ids)


def _lay(L: torch.Tensor, ab: torch.Tensor, fill_l: torch.Tensor, paper_fy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The page's L under the fills: ``min(L, fill_l)``, and where a color is known (``paper_fy > 0``) that
    color laid as colorists lay flats (``compose_cpu._lay_known``): fy and ab scaled by fy_page / fy_paper."""
    lowered = torch.minimum(L, fill_l)
    known = paper_fy > 0
    if not bool(known.any()):
        return lowered, ab
    fy_page = (L + 16.0) / 116.0
    scale = torch.clamp(fy_page / torch.where(known, paper_fy, torch.ones_like(paper_fy)), max=1.0)
    fy = (fill_l + 16.0) / 116.0 * scale
    return torch.where(known, 116.0 * fy - 16.0, lowered), torch.where(known, ab * scale, ab)


def compose_batch(L: torch.Tensor, ab: torch.Tensor, *, fill: str = DEFAULT_FILL, saturation: float = 1.0,
                  confidence: torch.Tensor | None = None, fill_paper: bool = True) -> torch.Tensor:
    """:func:`compose` over a batch (the trainer's previews): L ``[B,1,H,W]``, ab ``[B,2,h,w]`` ->
    sRGB float ``[B,3,H,W]`` in [0, 1]."""
    out = []
    for i in range(L.shape[0]):
        conf = None if confidence is None else confidence[i:i + 1]
        rgb = compose(L[i:i + 1].float(), ab[i:i + 1].float(), fill=fill, saturation=saturation,
                      confidence=conf, fill_paper=fill_paper)
        out.append(rgb.permute(2, 0, 1).float().div(255.0))
    return torch.stack(out)
