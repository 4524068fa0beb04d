"""Training pages: manga pages composed from drawings (layout, tones, balloons, scan artefacts),
synthesized line art for drawings without an inked twin, and the datasets that compose them on the fly."""

from .composer import Drawing, DrawingCache, page_rng, plan_page, render_page
from .dataset import ComposedPages, compose_pair, drawings_from_index, scan_artefacts
from .lineart import synthesize_line_art

__all__ = ["ComposedPages", "Drawing", "DrawingCache", "compose_pair", "drawings_from_index", "page_rng",
           "plan_page", "render_page", "scan_artefacts", "synthesize_line_art"]
