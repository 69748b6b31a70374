"""Two-point Dixon PDFF from an in-phase / out-of-phase magnitude pair (Dixon 1984).

W = (|IP| + |OP|) / 2,  F = (|IP| - |OP|) / 2,  PDFF = 100 F / (W + F).
Simplifications, each a bias a user should know about:
- single-peak fat: with the real multi-peak spectrum the 'in-phase' echo is not fully in
  phase, which underestimates fat by a few points (physics.fat);
- no R2* correction: decay between the echoes reads as fat or water;
- magnitude only: W and F cannot be told apart, so the voxel is assumed water-dominant
  and PDFF is limited to 0-50 % (a fat-dominant voxel is reported as 100 - PDFF);
- no T1 correction (signal fat fraction).
Use ``fit fatwater`` with three or more complex echoes for the confounder-corrected PDFF.
"""
from __future__ import annotations

import numpy as np

from .quality import with_quality
from .voxelwise import default_mask


def dixon_fractions(ip, op):
    """(water, fat, PDFF %) of in-phase and out-of-phase magnitudes, water-dominant; written with
    arithmetic only, so that it serves numpy arrays and torch tensors (the fatwater-ipop network's input)."""
    water = (ip + op) / 2.0
    d = (ip - op) / 2.0
    fat = (d + abs(d)) / 2.0                        # max(d, 0)
    total = water + fat
    return water, fat, 100.0 * fat / (total + (total == 0) * 1.0)


def fit_dixon_two_point(in_phase: np.ndarray, out_phase: np.ndarray, *,
                        mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """PDFF (%), water and fat from magnitudes of an in-phase and an out-of-phase echo."""
    ip = np.abs(in_phase).astype(np.float64)
    op = np.abs(out_phase).astype(np.float64)
    if mask is None:
        mask = default_mask(np.stack([ip, op], -1))
    water, fat, pdff = dixon_fractions(ip, op)
    m = np.asarray(mask, bool)
    maps = {k: np.where(m, v, 0).astype(np.float32) for k, v in {"PDFF": pdff, "water": water, "fat": fat}.items()}
    return with_quality(maps, m, np.zeros(m.shape, bool))
