"""The color math in numpy: the one torch-free twin of ``models.color`` (docs/ARCHITECTURE.md, "Color").

Everything the CPU side needs without torch: sRGB <-> linear, CIE's f and its inverse, sRGB -> Lab,
Lab -> linear RGB, gray <-> L, the page's luma and a model's input normalization; and the constants
the torch conversions (``models.color``) share with it. The formulas and constants are kornia's
(``kornia.color``), term for term, so the two agree to float noise (``tests/test_color_numpy.py``).

Two grays, each defined once here:

* the **lightness gray** of a color: the gray level with its CIE L (``l_to_gray8`` of its L; what
  ``models.color.rgb_to_gray`` gives and what a color page's compose segments on);
* the **luma** (Rec. 601 weights on the sRGB values, PIL's ``convert("L")``): :func:`luma`, what a
  color page given as RGB (a reference page, an eval target) is segmented and toned on.
"""

from __future__ import annotations

import functools
import math

import numpy as np

# Normalization used by every model (docs/ARCHITECTURE.md, "Color"): L/50 - 1 in [-1, 1], ab/110 in [-1, 1].
L_SCALE = 50.0
AB_SCALE = 110.0

# kornia's rgb_to_xyz and xyz_to_rgb matrices and D65 white, so the conversions are kornia's term for term.
LINEAR_RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423),
                     (0.212671, 0.715160, 0.072169),
                     (0.019334, 0.119193, 0.950227))
XYZ_TO_LINEAR_RGB = ((3.2404813432005266, -1.5371515162713185, -0.4985363261688878),
                     (-0.9692549499965682, 1.8759900014898907, 0.0415559265582928),
                     (0.0556466391351772, -0.2040413383665112, 1.0573110696453443))
WHITE_X, WHITE_Z = 0.95047, 1.08883
# Entries of the linear -> sRGB uint8 table: sRGB's steepest slope (12.92) keeps a step under 0.06 of a level.
SRGB_TABLE_SIZE = 65536
# Chroma below this (Lab units) never darkens a page: a faint tint on paper is noise, not a fill.
FILL_CHROMA_START = 6.0
# Chroma at which a fill gets the full lightness it needs.
FILL_CHROMA_FULL = 16.0
# The luma's weights (Rec. 601, as PIL's convert("L")).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
# f's knee as kornia.color.lab_to_rgb writes it: f^-1 is the cube above it, linear below.
F_KNEE = 0.2068966


# ---------------------------------------------------------------- the curves
def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB values in [0, 1] -> linear light (the sRGB decoding curve), in the input's float type."""
    return np.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Linear light in [0, 1] -> sRGB values (the sRGB encoding curve)."""
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(np.clip(x, 0, None), 1 / 2.4) - 0.055)


def lab_f(t: np.ndarray) -> np.ndarray:
    """CIE's f (a relative X, Y or Z -> its Lab coordinate before scaling), as kornia writes it."""
    return np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 4.0 / 29.0)


def f_inverse(f: np.ndarray) -> np.ndarray:
    """CIE's f^-1 exactly as kornia.color.lab_to_rgb writes it (cube above the knee, linear below)."""
    return np.where(f > F_KNEE, f * f * f, (f - np.float32(4.0 / 29.0)) / np.float32(7.787))


# ---------------------------------------------------------------- conversions
def srgb8_to_lab(rgb: np.ndarray, dtype=np.float32) -> np.ndarray:
    """sRGB ``[..., 3]`` in 8-bit levels (uint8, or float in [0, 255]) -> CIE Lab (D65) ``[..., 3]``, float32
    (computed in float64; ``dtype=np.float64`` keeps it, as the metrics need)."""
    lin = srgb_to_linear(np.asarray(rgb, dtype=np.float64) / 255.0)
    xyz = lin @ np.array(LINEAR_RGB_TO_XYZ).T / np.array([WHITE_X, 1.0, WHITE_Z])
    fxyz = lab_f(xyz)
    L = 116.0 * fxyz[..., 1] - 16.0
    a = 500.0 * (fxyz[..., 0] - fxyz[..., 1])
    b = 200.0 * (fxyz[..., 1] - fxyz[..., 2])
    return np.stack([L, a, b], axis=-1).astype(dtype)


def ciede2000(lab1, lab2, xp=np):
    """CIEDE2000 between Lab colors ``[..., 3]`` -> ``[...]``: a line-by-line port of skimage's
    ``deltaE_ciede2000`` (kL = kC = kH = 1), including its handling of achromatic pairs (C1*C2 = 0) and of the
    hue wrap-around. One implementation for both sides: ``xp`` is the array module (numpy, float64 here for
    eval's CPU scores and the paint-bucket measures; ``models.toolbox.metrics.ciede2000_map`` passes torch
    tensors and ``xp=torch``), so this module never imports torch."""
    if xp is np:
        lab1, lab2 = np.asarray(lab1, np.float64), np.asarray(lab2, np.float64)
    L1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    L2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    cbar = 0.5 * (xp.hypot(a1, b1) + xp.hypot(a2, b2))
    c7 = cbar ** 7
    g = 0.5 * (1 - xp.sqrt(c7 / (c7 + 25.0 ** 7)))

    def polar(x, y):
        t = xp.arctan2(y, x)
        return xp.hypot(x, y), xp.where(t < 0, t + 2 * math.pi, t)

    C1, h1 = polar(a1 * (1 + g), b1)
    C2, h2 = polar(a2 * (1 + g), b2)

    lbar = 0.5 * (L1 + L2)
    tmp = (lbar - 50) ** 2
    sl = 1 + 0.015 * tmp / xp.sqrt(20 + tmp)
    l_term = (L2 - L1) / sl

    cbar = 0.5 * (C1 + C2)
    sc = 1 + 0.045 * cbar
    c_term = (C2 - C1) / sc

    h_diff = h2 - h1
    h_sum = h1 + h2
    cc = C1 * C2
    achromatic = cc == 0
    dh = xp.where(h_diff > math.pi, h_diff - 2 * math.pi, h_diff)
    dh = xp.where(h_diff < -math.pi, dh + 2 * math.pi, dh)
    dh = xp.where(achromatic, 0.0, dh)
    dh_term = 2 * xp.sqrt(cc) * xp.sin(dh / 2)

    wrapped = (~achromatic) & (xp.abs(h_diff) > math.pi)
    hbar = xp.where(wrapped & (h_sum < 2 * math.pi), h_sum + 2 * math.pi, h_sum)
    hbar = xp.where(wrapped & (h_sum >= 2 * math.pi), h_sum - 2 * math.pi, hbar)
    hbar = xp.where(achromatic, hbar * 2, hbar) * 0.5

    t = (1 - 0.17 * xp.cos(hbar - math.radians(30)) + 0.24 * xp.cos(2 * hbar)
         + 0.32 * xp.cos(3 * hbar + math.radians(6)) - 0.20 * xp.cos(4 * hbar - math.radians(63)))
    sh = 1 + 0.015 * cbar * t
    h_term = dh_term / sh

    c7 = cbar ** 7
    rc = 2 * xp.sqrt(c7 / (c7 + 25.0 ** 7))
    dtheta = math.radians(30) * xp.exp(-(((xp.rad2deg(hbar) - 275) / 25) ** 2))
    r_term = -xp.sin(2 * dtheta) * rc * c_term * h_term

    de2 = l_term ** 2 + c_term ** 2 + h_term ** 2 + r_term
    return xp.sqrt(de2.clip(min=0))


def srgb8_to_ab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 ``[..., 3]`` -> the Lab (D65) chroma ``[..., 2]``, float32."""
    return srgb8_to_lab(rgb)[..., 1:]


def lab_to_linear_rgb(L: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Lab -> linear RGB ``[3, ...]`` float32, unclipped (kornia's lab_to_rgb before its gamma)."""
    fy = (np.asarray(L, np.float32) + np.float32(16.0)) / np.float32(116.0)
    Y = f_inverse(fy)
    X = f_inverse(np.asarray(a, np.float32) / np.float32(500.0) + fy) * np.float32(WHITE_X)
    Z = f_inverse(np.maximum(fy - np.asarray(b, np.float32) / np.float32(200.0), 0.0)) * np.float32(WHITE_Z)
    m = np.array(XYZ_TO_LINEAR_RGB, np.float32)
    return np.stack([X * m[c, 0] + Y * m[c, 1] + Z * m[c, 2] for c in range(3)])


@functools.lru_cache(maxsize=1)
def linear_to_srgb8_table() -> np.ndarray:
    """Linear RGB in [0, 1] sampled at SRGB_TABLE_SIZE steps -> sRGB uint8 (``models.color``'s table in numpy)."""
    linear = np.linspace(0.0, 1.0, SRGB_TABLE_SIZE, dtype=np.float64)
    return np.round(np.clip(linear_to_srgb(linear), 0.0, 1.0) * 255.0).astype(np.uint8)


# ---------------------------------------------------------------- gray and lightness
def gray_to_l(gray: np.ndarray) -> np.ndarray:
    """Gray sRGB values in [0, 1] (any shape) -> CIE L in [0, 100], float32 (``models.color.gray_to_l``)."""
    g = np.clip(np.asarray(gray, dtype=np.float32), 0.0, 1.0)
    # A neutral color's Y is its linear value (the luminance row of the matrix sums to 1).
    return (116.0 * lab_f(srgb_to_linear(g)) - 16.0).astype(np.float32)


@functools.lru_cache(maxsize=2)
def gray_level_lightness(levels: int = 256) -> np.ndarray:
    """L of every gray level, ``[levels]`` float32 (``models.color.gray_level_lightness`` in numpy)."""
    g = np.arange(levels, dtype=np.float64) / (levels - 1)
    return (116.0 * lab_f(srgb_to_linear(g)) - 16.0).astype(np.float32)


def l_to_gray8(L: np.ndarray) -> np.ndarray:
    """CIE L in [0, 100] -> the 8-bit gray level that has it (the inverse of :func:`gray_level_lightness`)."""
    fy = (np.asarray(L, dtype=np.float32) + np.float32(16.0)) / np.float32(116.0)
    srgb = linear_to_srgb(f_inverse(fy))
    return np.clip(srgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def rgb_to_gray8(rgb: np.ndarray) -> np.ndarray:
    """uint8 sRGB ``[..., 3]`` -> the uint8 gray of the same CIE L ``[...]``, as ``models.color.rgb_to_gray``
    computes it (L back through Lab -> RGB with no chroma, in float32): equal on all but ~1e-5 of colors (float
    rounding at a level's edge), so eval's gray pages need no torch."""
    L = srgb8_to_lab(rgb)[..., 0]
    zero = np.zeros_like(L)
    lin = lab_to_linear_rgb(L, zero, zero)[0]
    return (np.clip(linear_to_srgb(lin), 0, 1) * 255).round().astype(np.uint8)


def luma(rgb: np.ndarray) -> np.ndarray:
    """The luma of RGB ``[..., 3]`` (Rec. 601 weights), float32 in the input's scale (levels for integers)."""
    rgb = np.asarray(rgb, dtype=np.float32)
    r, g, b = LUMA_WEIGHTS
    return rgb[..., 0] * r + rgb[..., 1] * g + rgb[..., 2] * b


def luma8(rgb: np.ndarray) -> np.ndarray:
    """uint8 luma of an sRGB uint8 image ``[..., 3]`` (Rec. 601 weights, as PIL's ``convert("L")``)."""
    return np.clip(luma(rgb) + np.float32(0.5), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- a model's input and output
def normalize_gray(gray: np.ndarray, input_norm: str) -> np.ndarray:
    """A gray plane in [0, 1] as a model reads it (``models.base.prepare_input`` in numpy): ``lab``:
    L/50 - 1, ``gray01``: the gray value itself."""
    if input_norm == "lab":
        return gray_to_l(gray) / np.float32(L_SCALE) - np.float32(1.0)
    if input_norm == "gray01":
        return gray
    raise ValueError(f"unknown input_norm {input_norm!r}")
