"""Elementary rotations as NumPy matrices, shared by the motion readers and the synthetic generator."""

from __future__ import annotations

import numpy as np


def axis_rotation(axis: int | str, angle, *, degrees: bool = False) -> np.ndarray:
    """Right-handed rotation matrices (..., 3, 3) about one coordinate axis.

    Args:
        axis: 0/1/2 or "x"/"y"/"z" (either case).
        angle: (...,) angles, radians unless ``degrees``.
    """
    i = "xyz".index(axis.lower()) if isinstance(axis, str) else int(axis)
    j, k = (i + 1) % 3, (i + 2) % 3  # the plane rotated, in right-handed order
    a = np.asarray(angle, dtype=np.float64)
    if degrees:
        a = np.deg2rad(a)
    c, s = np.cos(a), np.sin(a)
    out = np.zeros(a.shape + (3, 3))
    out[..., i, i] = 1.0
    out[..., j, j], out[..., k, k] = c, c
    out[..., j, k], out[..., k, j] = -s, s
    return out
