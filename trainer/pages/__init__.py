"""Training pages: manga pages composed from drawings (layout, tones, balloons, scan artefacts),
synthesized line art for drawings without an inked twin, and the datasets that compose them on the fly."""

from .dataset import ComposedPages, compose_pair, drawings_from_index, scan_artefacts
from .lineart import synthesize_line_art
from .plan import Drawing, page_rng, plan_page
from .render import DrawingCache, render_page

__all__ = ["ComposedPages", "Drawing", "DrawingCache", "compose_pair", "drawings_from_index", "page_rng",
           "plan_page", "render_page", "scan_artefacts", "synthesize_line_art"]
