"""The shared jobs both colorize and training use, each written once (docs/ARCHITECTURE.md, "Where each
shared job lives"): image loading and pixel conversion (``images``), folder listing and bw/color pairing
(``folders``), device resolution and ranks (``device``), the progress display (``progress``), atomic file
writes (``files``), an error's first line (``errors``) and the metric math (``metrics``).

Nothing is imported here: ``images``, ``folders``, ``device``, ``progress``, ``files`` and ``errors`` load
without torch (colorize's ONNX path); ``metrics`` needs torch.
"""
