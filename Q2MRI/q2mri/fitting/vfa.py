"""Variable-flip-angle T1 and PD from two or more SPGR images (DESPOT1 + nonlinear LS).

Start: linear DESPOT1 (Deoni et al., MRM 2003). Dividing the SPGR equation (papers/000
A.4) by sin(a) gives  S/sin(a) = E1 * S/tan(a) + PD (1 - E1),  a line in S/tan(a) whose
slope is E1 = exp(-TR/T1). Refinement: Levenberg-Marquardt on the magnitude SPGR model
itself (physics.spgr), the method papers/000 A.1 used for its ground truth. B1, where
given, scales the nominal flip angle (a = a_nom * B1).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from ..errors import Q2MRIError
from ..physics.spgr import spgr
from .lm import levenberg_marquardt
from .voxelwise import Progress, fit_voxels, relative_rms_residual

T1_BOUNDS_MS = (1.0, 1.0e5)


def despot1(y: torch.Tensor, alpha_rad: torch.Tensor, tr_ms: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear DESPOT1 estimate (PD, T1 ms) per voxel; y (V, M), alpha (V, M) or (M,)."""
    x = y / torch.tan(alpha_rad)
    z = y / torch.sin(alpha_rad)
    xm, zm = x.mean(-1, keepdim=True), z.mean(-1, keepdim=True)
    sxx = ((x - xm) ** 2).sum(-1)
    sxz = ((x - xm) * (z - zm)).sum(-1)
    e1 = torch.nan_to_num(sxz / sxx, nan=0.98).clamp(math.exp(-tr_ms / T1_BOUNDS_MS[0]) + 1e-6,
                                                      math.exp(-tr_ms / T1_BOUNDS_MS[1]))
    pd = (zm.squeeze(-1) - e1 * xm.squeeze(-1)) / (1.0 - e1)
    t1 = -tr_ms / torch.log(e1)
    return pd.clamp_min(0.0), t1


def fit_vfa_chunk(y: torch.Tensor, flip_angles_deg: Sequence[float], tr_ms: float,
                  b1: torch.Tensor | None = None, refine: bool = True) -> dict[str, torch.Tensor]:
    """T1 (ms), PD and the relative residual for a (V, M) chunk of SPGR magnitudes."""
    fa = torch.as_tensor(list(flip_angles_deg), dtype=y.dtype, device=y.device)
    b1v = b1[:, None] if b1 is not None else torch.ones_like(y[:, :1])
    pd0, t10 = despot1(y, torch.deg2rad(fa) * b1v, tr_ms)
    p0 = torch.stack([pd0, t10], dim=1)
    scale_pd = y.abs().amax(-1).clamp_min(torch.finfo(y.dtype).tiny)

    def factory(index):
        b = b1v[index]
        return lambda p: spgr(p[:, 1:2], p[:, 0:1], fa, tr_ms, 0.0, math.inf, b)

    if refine:
        lower = torch.tensor([0.0, T1_BOUNDS_MS[0]], dtype=y.dtype, device=y.device)
        upper = torch.tensor([math.inf, T1_BOUNDS_MS[1]], dtype=y.dtype, device=y.device)
        res = levenberg_marquardt(factory, p0, y, lower, upper)
        p, cost = res.params, res.cost
    else:
        p = p0
        r = factory(torch.arange(y.shape[0], device=y.device))(p) - y
        cost = (r * r).sum(-1)
    del scale_pd
    return {"T1": p[:, 1], "PD": p[:, 0], "residual": relative_rms_residual(cost, y)}


def fit_vfa(images: np.ndarray, flip_angles_deg: Sequence[float], tr_ms: float, *,
            b1: np.ndarray | None = None, mask: np.ndarray | None = None, device: str = "auto",
            dtype: torch.dtype = torch.float32, progress: Progress | None = None,
            refine: bool = True) -> dict[str, np.ndarray]:
    """Fit T1 (ms) and PD from SPGR magnitudes ``images`` of shape (..., M).

    flip_angles_deg: the M nominal flip angles; tr_ms: the common TR; b1: relative map of
    shape (...). Returns {"T1", "PD", "residual"} maps; zero outside the mask.
    """
    if images.shape[-1] != len(flip_angles_deg):
        raise Q2MRIError(f"{images.shape[-1]} SPGR images but {len(flip_angles_deg)} flip angles; give one flip angle per image")
    if len(set(round(float(a), 6) for a in flip_angles_deg)) < 2:
        raise Q2MRIError("VFA T1 needs at least two different flip angles")
    return fit_voxels(
        lambda y, b1=None: fit_vfa_chunk(y, flip_angles_deg, tr_ms, b1, refine),
        images, mask, ("T1", "PD", "residual"), per_voxel={"b1": b1},
        device=device, dtype=dtype, progress=progress)
