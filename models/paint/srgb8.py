"""A page's Lab straight to 8-bit sRGB, band by band, in numpy (the numpy compose's last step,
``models.paint.compose_cpu``; the twin of ``models.color.lab_to_srgb8_keeping_l``): the 8-bit gray levels'
fy and Y tables, the L-keeping gamut scale, the sRGB gamma as a 65536-entry uint8 table.
"""

from __future__ import annotations

import functools

import numpy as np

from ..cie import (F_KNEE, SRGB_TABLE_SIZE, WHITE_X, WHITE_Z, XYZ_TO_LINEAR_RGB, f_inverse, gray_level_lightness,
                   linear_to_srgb8_table)

# Rows per band of the full-resolution pass: a dozen float32 planes of 32 x 1200 stay in the cache (fastest of 8-96 measured).
BAND_ROWS = 32


@functools.lru_cache(maxsize=1)
def gray_tables() -> tuple[np.ndarray, np.ndarray]:
    # fy = (L + 16) / 116 and Y = f^-1(fy) of every 8-bit gray level, float32 as the per-pixel pass computes them.
    L = gray_level_lightness(256)
    fy = (L + np.float32(16.0)) / np.float32(116.0)
    return fy, f_inverse(fy).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _offset_matrix() -> np.ndarray:
    # [X, Y, Z] (f^-1 values, before the white point) -> the linear RGB offsets from gray d = rgb - Y.
    m = np.array(XYZ_TO_LINEAR_RGB) * np.array([WHITE_X, 1.0, WHITE_Z])
    m[:, 1] -= 1.0
    return m.astype(np.float32)


def _f_inverse_into(f: np.ndarray, out: np.ndarray) -> None:
    # f_inverse without temporaries beyond one: the cube, then the linear part below the knee.
    np.multiply(f, f, out=out)
    out *= f
    below = f <= F_KNEE
    if below.any():
        np.copyto(out, (f - np.float32(4.0 / 29.0)) * np.float32(1.0 / 7.787), where=below)


def srgb8_band(fy: np.ndarray, Y: np.ndarray, fa: np.ndarray, fb: np.ndarray, out: np.ndarray) -> None:
    """One band: ``fy``/``Y`` of the output L, ``fa = a/500``, ``fb = b/200`` (float32 ``[n, W]``) -> ``out`` ``[n, W, 3]``.

    As ``models.color.lab_to_srgb8_keeping_l``: linear RGB = Y + k*d, d the per-channel offsets
    from gray, k the largest scale in [0, 1] that keeps every channel in [0, 1].
    """
    shape = Y.shape
    xyz = np.empty((3,) + shape, np.float32)
    fa += fy
    _f_inverse_into(fa, xyz[0])
    xyz[1] = Y
    np.subtract(fy, fb, out=fb)
    np.maximum(fb, np.float32(0.0), out=fb)
    _f_inverse_into(fb, xyz[2])
    d = np.matmul(_offset_matrix(), xyz.reshape(3, -1)).reshape(xyz.shape)
    # How far the color overshoots: above 1 (room 1 - Y) or below 0 (room Y); k = 1 / overshoot, at most 1.
    over = d.max(axis=0)
    room = np.subtract(np.float32(1.0), Y, out=xyz[0])
    np.maximum(room, np.float32(1e-7), out=room)
    over /= room
    under = d.min(axis=0)
    np.maximum(Y, np.float32(1e-7), out=room)
    under /= room
    np.negative(under, out=under)
    k = np.maximum(over, under, out=over)
    np.maximum(k, np.float32(1.0), out=k)
    top = SRGB_TABLE_SIZE - 1
    np.divide(np.float32(top), k, out=k)
    base = np.multiply(Y, np.float32(top), out=xyz[1])
    base += np.float32(0.5)
    d *= k
    d += base
    index = np.empty(d.shape, np.int32)
    np.copyto(index, d, casting="unsafe")
    table = linear_to_srgb8_table()
    for c in range(3):
        np.take(table, index[c], out=out[..., c], mode="clip")


def lab_to_srgb8(fy_of: callable, ab_band_of: callable, shape: tuple[int, int]) -> np.ndarray:
    """Drive :func:`srgb8_band` band by band: ``fy_of(r0, r1) -> (fy, Y)``, ``ab_band_of(r0, r1) -> (fa, fb)``."""
    H, W = shape
    out = np.empty((H, W, 3), np.uint8)
    for r0 in range(0, H, BAND_ROWS):
        r1 = min(H, r0 + BAND_ROWS)
        fy, Y = fy_of(r0, r1)
        fa, fb = ab_band_of(r0, r1)
        srgb8_band(fy, Y, fa, fb, out[r0:r1])
    return out


