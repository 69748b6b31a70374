"""B1 from a double-angle pair (Insko and Bolinger 1993, J Magn Reson A 103:82; Stollberger and
Wach 1996, MRM 35:246).

With a TR long enough for full relaxation the signal is PD sin(a) (the SPGR equation of
papers/000 A.4 as TR/T1 -> infinity, physics.spgr), so two images at nominal A and 2A give
S_2A / S_A = sin(2a) / sin(a) = 2 cos(a) with a = B1 A the actual angle:
    B1 = arccos(S_2A / (2 S_A)) / A.
The ratio has no angle where |S_2A / (2 S_A)| > 1 (noise, or S_A near 0) or where the actual
2a passes 180 degrees (magnitude images lose the sign): such voxels are flagged.
"""
from __future__ import annotations

import numpy as np

from .quality import with_quality
from .voxelwise import default_mask


def fit_b1_dam(s_a: np.ndarray, s_2a: np.ndarray, flip_angle_deg: float, *,
               mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """B1 (relative) and the actual flip angle (degrees) from magnitudes at A and 2A."""
    if mask is None:
        mask = default_mask(np.stack([s_a, s_2a], -1))
    a, b = s_a.astype(np.float64), s_2a.astype(np.float64)
    half = np.divide(b, 2.0 * a, out=np.full_like(a, np.nan), where=a > 0)
    alpha = np.degrees(np.arccos(np.clip(half, -1.0, 1.0)))
    b1 = alpha / float(flip_angle_deg)
    undefined = ~np.isfinite(half) | (np.abs(half) > 1.0) | (half <= 0.0)
    mask = np.asarray(mask, bool)
    maps = {"B1": np.where(mask, b1, 0).astype(np.float32),
            "flip_angle_actual": np.where(mask, alpha, 0).astype(np.float32)}
    return with_quality(maps, mask, undefined)
