"""Dual-echo B0 off-resonance from the phase difference.

psi = angle(S2 conj(S1)) / (2 pi (TE2 - TE1)). Unambiguous for |psi| < 1/(2 dTE);
beyond that the map wraps. Assumes one species in the voxel (or echoes at which fat is
in phase with water): with fat present the chemical shift adds to the phase (use
``fit fatwater`` there).
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import Q2MRIError
from .voxelwise import default_mask


def fit_b0_dual_echo(s1: np.ndarray, s2: np.ndarray, te1_ms: float, te2_ms: float, *,
                     mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """B0 (Hz) from two complex echoes; also the unwrap-free range in the sidecar."""
    dte_s = (float(te2_ms) - float(te1_ms)) / 1000.0
    if dte_s == 0:
        raise Q2MRIError("B0 mapping needs two different echo times")
    if mask is None:
        mask = default_mask(np.stack([s1, s2], -1))
    dphi = np.angle(s2 * np.conj(s1))
    b0 = dphi / (2 * math.pi * dte_s)
    return {"B0": np.where(mask, b0, 0).astype(np.float32)}
