"""Model files to hand out: ``export`` (checkpoint -> ONNX, checked against PyTorch) and ``quantize`` (an int8
twin behind a quality gate). Above ``engine`` and ``evaluation``: both run models through the Colorizer, and
quantize scores them as ``mangacolor eval`` does (docs/ARCHITECTURE.md, "Packages and what each may import")."""
