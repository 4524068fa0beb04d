"""The Colorizer: load a model (checkpoint, ONNX file or the packaged default) and color decoded pages.
Its model's part (the file, loading, batching, ``predict``) is ``engine.runner.ModelRunner``; here, the options
checked once (``check_options``), the compose with the page's hints and references, and ``colorize``.

docs/ARCHITECTURE.md, "Color": the model predicts ab at a working size (long side = ``size``, padded to a multiple of its
stride), ab is upsampled bilinearly to the page's full size and joined to the page's ORIGINAL
full-resolution L, so line art stays exactly as crisp as in the input and the output's L equals the
input's L to within rounding (out-of-gamut colors lose chroma, never lightness).
"""

from __future__ import annotations

import functools
import logging
import os
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
from PIL import Image

from models.paint import fills
from models.paint import regions as rg
from models.paint.page import compose_page, gray_or_lightness, page_gray8
from models.toolbox.images import DecodedPage, to_rgb8

from ..errors import UsageError
from .choices import BACKENDS, DEVICES
# The page work around the model; as_page, looks_colored, load_hints, page_regions and
# PageBatcher are also imported from here by callers of the Colorizer.
from .pagework import (PageBatcher, PageLike, as_page, load_hints, looks_colored, needs_color,  # noqa: F401
                       page_regions)
from .region_model import RegionModel, load_region_model
from .runner import MAX_BATCH_SIZE, MAX_WORKING_SIZE, ModelRunner, inference_mode

if TYPE_CHECKING:
    import models
    import torch

logger = logging.getLogger("mangacolor")


def check_options(*, device: str = "auto", backend: str = "auto", size: int | None = None,
                  batch_size: int | None = None, fill: str = fills.DEFAULT_FILL, saturation: float = 1.0,
                  palette: str = rg.DEFAULT_PALETTE) -> None:
    """Raise ``UsageError`` (one line) for an option ``Colorizer`` cannot take; cheap, before any model loads."""
    if device not in DEVICES and not str(device).startswith("cuda:"):
        raise UsageError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    if backend not in BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if size is not None and not 16 <= size <= MAX_WORKING_SIZE:
        raise UsageError(f"--size must be between 16 and {MAX_WORKING_SIZE} (the long side the model sees; "
                         f"the output keeps the page's own size), got {size}")
    if batch_size is not None and not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise UsageError(f"--batch-size must be between 1 and {MAX_BATCH_SIZE} (pages per model call), got {batch_size}")
    if fill not in fills.FILLS:
        raise UsageError(f"--fill must be one of {', '.join(fills.FILLS)}, got {fill!r}")
    if not 0.0 <= saturation <= 2.0:
        raise UsageError(f"--saturation must be between 0 and 2, got {saturation}")
    if palette not in rg.PALETTES:
        raise UsageError(f"--palette must be one of {', '.join(rg.PALETTES)}, got {palette!r}")


class Colorizer(ModelRunner):
    """A loaded model plus how to run it and paint its pages (``ModelRunner``, ``engine.runner``, runs it);
    ``colorize(pages)`` returns full-resolution RGB pages.

    ``model``: a ``.pt`` checkpoint, an ``.onnx`` file, a packaged model name, a ``ColorModel``, or
    None for the packaged default. ``device``: auto|cpu|cuda. ``backend``: auto|torch|onnx (auto =
    onnx for an ``.onnx`` file; for a torch model, onnx on the CPU when it costs at least
    ``ONNX_AUTO_MIN_MACS`` a page and exports, torch otherwise; see docs/PERFORMANCE.md). ``size``: working long side (None = the model's own
    working size, else 768). ``batch_size``: pages per model call (None: chosen by the device and the
    page shapes, :meth:`pages_per_call`). ``half``: float16 on CUDA (None = on CUDA only).
    ``fill_paper``: white paper under a predicted fill color darkens just enough to hold it
    (``models.color.fill_lightness``); ink and every darker tone keep their exact L. False keeps the
    page's L everywhere, which leaves pure black-and-white pages without color.
    ``fill``: ``flat`` (one color per region enclosed by ink; paper outside the art and balloons
    stay white; see ``models.paint.fills``) or ``soft`` (every pixel its own predicted chroma).
    ``saturation``: scales the model's chroma, 0 (gray) to 2; 1 = as predicted. ``palette``: ``safe``
    (a region takes the model's color only where it is sure) or ``vivid`` (every region that is not
    paper, a balloon or solid black takes its likeliest color; without a region model, the pixel model's
    made more saturated; ``models.paint.regions.PALETTES``).
    ``region_model``: ``auto`` (the region model beside the model's file, ``<name>.regions.onnx``, when
    there is one: the packaged default has one), ``none``, or a path to one (``engine.region_model``).
    With the flat fill it chooses each region's color from the regions' tokens, decoded by ``palette``
    (``safe``: the color nearest the whole distribution, gray where the model is torn; ``vivid``: its
    most likely color).
    """

    def __init__(self, model: str | os.PathLike | models.ColorModel | None = None, *, device: str = "auto",
                 backend: str = "auto", size: int | None = None, batch_size: int | None = None, half: bool | None = None,
                 recolor: bool = False, fill_paper: bool = True, fill: str = fills.DEFAULT_FILL,
                 saturation: float = 1.0, palette: str = rg.DEFAULT_PALETTE, references: Any = None,
                 region_model: str | os.PathLike | None = "auto"):
        check_options(device=device, backend=backend, size=size, batch_size=batch_size, fill=fill,
                      saturation=saturation, palette=palette)
        self.fill = fill
        self.palette = palette
        self.saturation = float(saturation)
        self.recolor = recolor
        self.fill_paper = fill_paper
        # Prepared reference pages (``set_references``): their region colors come before the model's.
        self.references: list = []
        if references is not None:
            self.set_references(references)
        super().__init__(model, device=device, backend=backend, size=size, batch_size=batch_size, half=half)
        self.region_model: RegionModel | None = load_region_model(region_model, self.model_path)

    # ------------------------------------------------------------------ the work
    def needs_color(self, page: PageLike) -> bool:
        """Whether this page goes through the model (False for color pages unless ``recolor``)."""
        return needs_color(page, self.recolor)

    @inference_mode
    def compose(self, page: PageLike, ab: torch.Tensor | np.ndarray, *, threads: int | None = None,
                confidence: torch.Tensor | None = None, hints: Any = None,
                regions: rg.Regions | None = None) -> np.ndarray:
        """Join a working-size ab prediction to the page's full-resolution L -> ``HxWx3`` uint8 sRGB.

        The one compose of colorize and eval (``models.paint.page.compose_page``), with this
        Colorizer's ``fill``, ``saturation``, ``palette`` and ``fill_paper``, the page's hints and the
        colors its references carry. ``confidence``: the model's, from ``predict``. ``hints``: see
        ``colorize``. ``threads``: unused (the CPU compose is numpy, one thread; kept for callers).
        ``regions``: the page's segmentation when it was made ahead (:func:`page_regions`, beside the model).

        On the CPU (``ab`` a numpy array or a CPU tensor) the compose is ``models.paint.compose_cpu``:
        the same picture within 1 level, in numpy, ~5x cheaper; on a GPU ``models.paint.compose`` in torch.
        """
        page = as_page(page)
        regions, hints = self.page_hints(page, hints, regions)
        model_colors = None
        if self.active_region_model is not None:
            if regions is None:
                regions = fills.segment(*gray_or_lightness(page.pixels))
            regions, _ = fills.regions_for_hints(regions, hints)  # a hint map's colors split the regions first
            if hints is not None and not isinstance(hints, rg.Known):  # read once, for the region model and the compose
                hints = rg.Known(*rg.hint_colors(regions, hints))
            model_colors = self.region_colors(page, ab, confidence, regions, hints)
        return compose_page(page.pixels, ab, confidence=confidence, hints=hints, regions=regions, fill=self.fill,
                            saturation=self.saturation, fill_paper=self.fill_paper, palette=self.palette,
                            model_colors=model_colors)

    @property
    def active_region_model(self) -> RegionModel | None:
        """The region model that colors this Colorizer's pages: its ``region_model`` with the flat fill, else None."""
        return self.region_model if self.fill == "flat" else None

    def region_colors(self, page: DecodedPage, ab: Any, confidence: Any, regions: rg.Regions,
                      hints: Any = None) -> np.ndarray:
        """The region model's color for each of the page's ``regions``, decoded by this Colorizer's palette:
        ``[n + 1, 2]`` ab (Lab units). ``hints``: the page's known colors as ``compose`` takes them (an RGBA
        image, a hint map or an ``rg.Known``): the model reads them for the regions they do not touch."""
        gray = page_gray8(page.pixels)
        ab = ab if isinstance(ab, np.ndarray) else ab.float().cpu().numpy()
        if confidence is not None and not isinstance(confidence, np.ndarray):
            confidence = confidence.float().cpu().numpy()
        known = None
        if hints is not None:
            ids, lab = rg.hint_colors(regions, hints)
            known = (ids, lab[:, 1:])
        f = regions.factor
        return self.region_model.colors(regions, gray[::f, ::f], ab, confidence, self.palette, known)

    def set_references(self, references: Any, warn: Callable[[str], None] | None = None) -> list:
        """Colored pages whose region colors carry to the pages this Colorizer colors (``--reference``):
        paths (images, folders, archives), PIL images or arrays, one or a list. Hints win over them,
        they win over the model. A page that cannot serve is left out with a warning (``warn``, else
        the ``mangacolor`` logger). Returns the prepared references."""
        from . import references as reference_pages
        if references is None:
            self.references = []
            return self.references
        if isinstance(references, (str, os.PathLike, Image.Image, np.ndarray)):
            references = [references]
        self.references = reference_pages.load_references(references, warn or logger.warning)
        return self.references

    def page_hints(self, page: DecodedPage, hints: Any, regions: rg.Regions | None = None,
                   references: list | None = None, label: str = "the page") -> tuple[rg.Regions | None, Any]:
        """What is known of the page's colors before the model's, as ``compose`` takes it: its hint image
        (path, image or array; read and checked here, ``label`` naming the page in an error) and, with
        references (this Colorizer's, or ``references``, prepared ones), their matches under it.
        Returns ``(regions, hints)``: with references, the page's regions (segmented here if not given) and
        an ``rg.Known``; without, ``regions`` as given and the RGBA hints (or None). A ``Known`` passes as is."""
        if isinstance(hints, rg.Known):
            return regions, hints
        hints = load_hints(hints, page, label)
        references = self.references if references is None else references
        if references:
            return self.known_colors(page, regions, hints, references)
        return regions, hints

    def known_colors(self, page: DecodedPage, regions: rg.Regions | None, hints: np.ndarray | None,
                     references: list | None = None) -> tuple[rg.Regions, rg.Known]:
        """The page's regions (segmented here if not given) and the colors known for them: the matches
        of this Colorizer's references (or of ``references``, prepared ones), under the page's hint image
        (``hints``, RGBA, or None)."""
        from . import references as reference_pages
        gray = page_gray8(page.pixels)
        if regions is None:
            regions = rg.segment_regions(gray)
        f = regions.factor
        return regions, reference_pages.page_known(regions, gray[::f, ::f],
                                                   self.references if references is None else references, hints)

    def colorize(self, pages: PageLike | Sequence[PageLike], hints: Any = None,
                 references: Any = None) -> np.ndarray | Image.Image | list[np.ndarray | Image.Image]:
        """Color one page, or a list of pages (any mix of sizes and forms); color pages come back unchanged
        unless ``recolor``. One page in, one out; a list in, a list out.

        A page is an image file's path (str or ``pathlib.Path``), a PIL image, an ``HxW``/``HxWx3``/``HxWx4``
        array or a ``DecodedPage``. A PIL image comes back as an RGB PIL image; every other form as an
        ``HxWx3`` uint8 array. A path that cannot be read is a one-line ``PageError`` naming it.

        ``hints``: one per page (or None): an RGBA image of the page's size (array, PIL image or
        PNG path), transparent except colored scribbles; every region a scribble touches takes
        exactly its color, whatever the model says. For one page, its hint alone.

        ``references``: colored pages of the same characters (paths, folders, archives, PIL images or
        arrays; see ``set_references``): each region of a page takes the color of its match in them
        where the match is confident. Kept for later calls; ``None`` keeps the Colorizer's own.
        """
        if references is not None:
            self.set_references(references)
        if isinstance(pages, (DecodedPage, np.ndarray, Image.Image, str, os.PathLike)):
            return self.colorize([pages], None if hints is None else [hints])[0]
        given = list(pages)
        pages = [as_page(p) for p in given]
        if hints is not None and len(hints) != len(pages):
            raise UsageError(f"hints: {len(hints)} given for {len(pages)} pages (one per page, None for none)")
        results: list[np.ndarray | None] = [None] * len(pages)
        batcher = self.batcher(run=functools.partial(self.predict, as_numpy=True))

        def compose_all(predicted) -> None:
            for j, colored, (ab, conf) in predicted:
                results[j] = self.compose(colored, ab, confidence=conf, hints=None if hints is None else hints[j])

        for i, page in enumerate(pages):
            if self.needs_color(page):
                compose_all(batcher.add(i, page))
            else:
                results[i] = to_rgb8(page.pixels)
        compose_all(batcher.flush())
        # A notebook's PIL page comes back as a PIL page (DeOldify's habit); arrays and paths as arrays.
        return [Image.fromarray(rgb, "RGB") if isinstance(page, Image.Image) else rgb
                for page, rgb in zip(given, results)]

    def describe(self) -> str:
        """``ModelRunner.describe`` and, where one runs, the region model."""
        line = super().describe()
        active = self.active_region_model
        return line + (f", region model {active.path.name}" if active is not None else "")
