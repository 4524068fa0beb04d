"""The paint wing: how a page is painted once the model has spoken (docs/ARCHITECTURE.md, "Color").

``segmentation`` (with ``trapped_ball`` and ``raster``) cuts a page into regions enclosed by ink;
``regions`` gives each region one color (the model's, a hint's); ``references`` carries colors from
colored pages; ``fills`` names the fills and owns the flat fill's colors; ``compose_cpu`` (numpy) and
``compose`` (torch) join the chroma to the page's lightness; ``page.compose_page`` picks between them.
Everything but ``compose`` is numpy only; nothing is imported here, so importing a module of the
wing loads only what it needs.
"""
