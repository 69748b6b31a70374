"""Variable-flip-angle T1 and PD from two or more SPGR images (DESPOT1 + nonlinear LS).

Start: linear DESPOT1 (Deoni et al., MRM 2003). Dividing the SPGR equation (papers/000
A.4) by sin(a) gives  S/sin(a) = E1 * S/tan(a) + PD (1 - E1),  a line in S/tan(a) whose
slope is E1 = exp(-TR/T1). Protocols that give each image its own TR (the PDw and T1w images of
MPM and MTsat, Helms et al. 2008, MRM 60:1396) start from Helms' small-angle closed form instead:
S = A a R1 TR / (R1 TR + a^2 / 2), i.e.  S a^2 / (2 TR) = (A R1) a - R1 S,  linear in A R1 and R1
(exact for two images, least squares for more). Refinement: Levenberg-Marquardt on the magnitude SPGR model
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
from .lm import levenberg_marquardt, project_scale
from .quality import vfa_flags, with_quality
from .voxelwise import Progress, default_mask, fit_voxels, relative_rms_residual

T1_BOUNDS_MS = (1.0, 1.0e5)


def despot1(y: torch.Tensor, alpha_rad: torch.Tensor, tr_ms: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear DESPOT1 estimate (PD, T1 ms) per voxel; y (V, M), alpha (V, M) or (M,), TR a
    number or one per voxel (V,). Differentiable (the physics networks use it as a layer)."""
    x = y / torch.tan(alpha_rad)
    z = y / torch.sin(alpha_rad)
    xm, zm = x.mean(-1, keepdim=True), z.mean(-1, keepdim=True)
    sxx = ((x - xm) ** 2).sum(-1)
    sxz = ((x - xm) * (z - zm)).sum(-1)
    tr = torch.as_tensor(tr_ms, dtype=y.dtype, device=y.device)
    lo, hi = torch.exp(-tr / T1_BOUNDS_MS[0]) + 1e-6, torch.exp(-tr / T1_BOUNDS_MS[1])
    e1 = torch.minimum(torch.maximum(torch.nan_to_num(sxz / sxx, nan=0.98), lo), hi)
    pd = (zm.squeeze(-1) - e1 * xm.squeeze(-1)) / (1.0 - e1)
    t1 = -tr / torch.log(e1)
    return pd.clamp_min(0.0), t1


def helms_closed_form(y: torch.Tensor, alpha_rad: torch.Tensor, tr_ms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Helms et al. 2008 (MRM 60:1396, small-angle approximation) per voxel: (A, T1 ms) from
    y (V, M) at flip angles alpha (V, M) or (M,) and one TR per image (M,). A is the signal at
    full relaxation (PD times receive), T1 = 1 / R1; least squares in (A R1, R1) for M > 2."""
    a = alpha_rad.expand_as(y)
    lhs = y * a * a / (2.0 * tr_ms)                       # = c1 a - c2 S, c1 = A R1, c2 = R1
    # normal equations of [a, -S] [c1, c2]^T = lhs, per voxel
    saa, sas, sss = (a * a).sum(-1), (a * y).sum(-1), (y * y).sum(-1)
    sal, ssl = (a * lhs).sum(-1), (y * lhs).sum(-1)
    det = saa * sss - sas * sas
    c1 = (sss * sal - sas * ssl) / det
    c2 = (sas * sal - saa * ssl) / det
    r1 = c2.clamp(1.0 / T1_BOUNDS_MS[1], 1.0 / T1_BOUNDS_MS[0])
    t1 = torch.nan_to_num(1.0 / r1, nan=1000.0)
    return torch.nan_to_num(c1 / r1, nan=0.0).clamp_min(0.0), t1


def fit_vfa_chunk(y: torch.Tensor, flip_angles_deg: Sequence[float], tr_ms: float | Sequence[float],
                  b1: torch.Tensor | None = None, refine: bool = True) -> dict[str, torch.Tensor]:
    """T1 (ms), PD and the relative residual for a (V, M) chunk of SPGR magnitudes; tr_ms one TR
    for all images or one per image.

    PD enters the SPGR equation linearly, so it is projected out (variable projection) and
    Levenberg-Marquardt iterates over T1 alone: S = PD * spgr(T1, PD = 1), each image with its TR.
    """
    fa = torch.as_tensor(list(flip_angles_deg), dtype=y.dtype, device=y.device)
    b1v = b1[:, None] if b1 is not None else torch.ones_like(y[:, :1])
    trs = [float(t) for t in (tr_ms if isinstance(tr_ms, (list, tuple)) else [tr_ms] * len(fa))]
    if len(set(trs)) == 1:
        tr = trs[0]
        pd0, t10 = despot1(y, torch.deg2rad(fa) * b1v, tr)
    else:
        tr = torch.as_tensor(trs, dtype=y.dtype, device=y.device)
        pd0, t10 = helms_closed_form(y, torch.deg2rad(fa) * b1v, tr)

    def basis(t1, b):
        return spgr(t1, 1.0, fa, tr, 0.0, math.inf, b)

    def factory(index):
        b, ya = b1v[index], y[index]
        return lambda p: (lambda g: project_scale(g, ya) * g)(basis(p[:, 0:1], b))

    if refine:
        lower = torch.tensor([T1_BOUNDS_MS[0]], dtype=y.dtype, device=y.device)
        upper = torch.tensor([T1_BOUNDS_MS[1]], dtype=y.dtype, device=y.device)
        res = levenberg_marquardt(factory, t10[:, None], y, lower, upper)
        t1, cost = res.params[:, 0], res.cost
        pd = project_scale(basis(t1[:, None], b1v), y)[:, 0]
    else:
        t1, pd = t10, pd0
        r = pd[:, None] * basis(t1[:, None], b1v) - y
        cost = (r * r).sum(-1)
    return {"T1": t1, "PD": pd, "residual": relative_rms_residual(cost, y)}


def fit_vfa(images: np.ndarray, flip_angles_deg: Sequence[float], tr_ms: float | Sequence[float], *,
            b1: np.ndarray | None = None, mask: np.ndarray | None = None, device: str = "auto",
            dtype: torch.dtype = torch.float32, progress: Progress | None = None,
            refine: bool = True) -> dict[str, np.ndarray]:
    """Fit T1 (ms) and PD from SPGR magnitudes ``images`` of shape (..., M).

    flip_angles_deg: the M nominal flip angles; tr_ms: the common TR, or one per image; b1:
    relative map of shape (...). Returns {"T1", "PD", "residual"} maps; zero outside the mask.
    """
    if images.shape[-1] != len(flip_angles_deg):
        raise Q2MRIError(f"{images.shape[-1]} SPGR images but {len(flip_angles_deg)} flip angles; give one flip angle per image")
    trs = [float(t) for t in tr_ms] if isinstance(tr_ms, (list, tuple, np.ndarray)) else [float(tr_ms)] * len(flip_angles_deg)
    if len(trs) != len(flip_angles_deg):
        raise Q2MRIError(f"{len(flip_angles_deg)} SPGR images but {len(trs)} TRs; give one TR, or one per image")
    if len({(round(float(a), 6), round(t, 6)) for a, t in zip(flip_angles_deg, trs)}) < 2 or \
            (len(set(trs)) == 1 and len(set(round(float(a), 6) for a in flip_angles_deg)) < 2):
        raise Q2MRIError("VFA T1 needs at least two different flip angles")
    tr_arg = trs[0] if len(set(trs)) == 1 else trs
    if mask is None:
        mask = default_mask(images)
    out = fit_voxels(
        lambda y, b1=None: fit_vfa_chunk(y, flip_angles_deg, tr_arg, b1, refine),
        images, mask, ("T1", "PD", "residual"), per_voxel={"b1": b1},
        device=device, dtype=dtype, progress=progress)
    return with_quality(out, mask, vfa_flags(out["T1"], out["PD"], min(trs), T1_BOUNDS_MS))
