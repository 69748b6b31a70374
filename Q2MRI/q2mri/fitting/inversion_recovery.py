"""Inversion-recovery T1, the reference method: magnitude images at several TIs.

Barral et al., MRM 2010 (RD-NLS-PR): the signal is a + b exp(-TI/T1); magnitude data
lose its sign before the null point. For each voxel the sign is restored for the two
candidate null positions around the smallest magnitude; for each, a grid search over T1
solves a and b by linear least squares (the model is linear in them), and the better
candidate wins. The winner is refined by Levenberg-Marquardt on the signed IR signal of
physics.inversion_recovery with parameters (PD, inversion efficiency, T1), which is the
same three-parameter family once TR is known.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from ..errors import Q2MRIError
from ..physics.inversion_recovery import inversion_recovery
from .lm import levenberg_marquardt
from .quality import ir_flags, with_quality
from .voxelwise import default_mask, Progress, fit_voxels, relative_rms_residual

T1_GRID_MS = (1.0, 10000.0, 400)
TR_UNKNOWN_MS = 1.0e9


def _grid_search(y: torch.Tensor, ti: torch.Tensor, grid: torch.Tensor):
    """Best (T1, a, b, residual) per voxel for signed data y (V, N)."""
    basis = torch.stack([torch.ones(grid.numel(), ti.numel(), dtype=y.dtype, device=y.device),
                         torch.exp(-ti[None, :] / grid[:, None])], dim=-1)      # (G, N, 2)
    q, _ = torch.linalg.qr(basis)                                                 # (G, N, 2)
    proj = torch.einsum("gnk,vn->vgk", q, y)                                       # (V, G, 2)
    resid = (y * y).sum(-1, keepdim=True) - (proj * proj).sum(-1)                  # (V, G)
    best = resid.argmin(-1)
    coef = torch.linalg.lstsq(basis[best], y[..., None]).solution[..., 0]          # (V, 2)
    return grid[best], coef[:, 0], coef[:, 1], resid.gather(1, best[:, None])[:, 0]


def _pd_and_efficiency(a, b, t1, tr_ms):
    """a + b e^{-TI/T1} = PD(1 - (1+d) e^{-TI/T1} + d e^{-TR/T1}): solve for PD and d."""
    er = torch.exp(-tr_ms / t1)
    pd_d = (a + b) / (er - 1.0)
    pd = -b - pd_d
    d = torch.where(pd.abs() > 0, pd_d / pd, torch.ones_like(pd))
    return pd, d


def fit_ir_chunk(y: torch.Tensor, ti_ms: Sequence[float], tr_ms: float) -> dict[str, torch.Tensor]:
    ti = torch.as_tensor(list(ti_ms), dtype=y.dtype, device=y.device)
    order = torch.argsort(ti)
    ti, y = ti[order], y[:, order]
    n = ti.numel()
    lo, hi, g = T1_GRID_MS
    grid = torch.logspace(math.log10(lo), math.log10(hi), g, dtype=y.dtype, device=y.device)
    kmin = y.argmin(-1)
    best = None
    for shift in (0, 1):  # flip the points before (0) or up to and including (1) the minimum
        k = (kmin + shift).clamp(max=n)
        sign = torch.where(torch.arange(n, device=y.device)[None, :] < k[:, None], -1.0, 1.0).to(y.dtype)
        t1, a, b, resid = _grid_search(y * sign, ti, grid)
        pd, d = _pd_and_efficiency(a, b, t1, tr_ms)
        # Few TIs can fit either polarity; a candidate that implies no real inversion
        # (efficiency far from 1) loses to one that does.
        plausible = (d > 0.3) & (d < 1.2)
        score = torch.where(plausible, resid, resid + (y * y).sum(-1) + 1.0)
        cand = (score, t1, pd, d, sign)
        if best is None:
            best = cand
        else:
            better = cand[0] < best[0]
            best = tuple(torch.where(better[:, None] if c.dim() == 2 else better, c, o) for c, o in zip(cand, best))
    _, t1, pd, d, sign = best
    ys = y * sign
    p0 = torch.stack([pd, d.clamp(0.0, 1.5), t1], 1)

    def factory(index):
        return lambda p: inversion_recovery(p[:, 2:3], p[:, 0:1], ti, tr_ms, 0.0, math.inf, p[:, 1:2])

    lower = torch.tensor([-math.inf, 0.0, 0.1], dtype=y.dtype, device=y.device)
    upper = torch.tensor([math.inf, 2.0, 2.0e4], dtype=y.dtype, device=y.device)
    res = levenberg_marquardt(factory, p0, ys, lower, upper)
    return {"T1": res.params[:, 2], "PD": res.params[:, 0].abs(), "inversion_efficiency": res.params[:, 1],
            "residual": relative_rms_residual(res.cost, y)}


def fit_t1_ir(images: np.ndarray, ti_ms: Sequence[float], tr_ms: float, *, mask=None, device="auto",
              dtype=torch.float64, progress: Progress | None = None) -> dict[str, np.ndarray]:
    """T1 (ms), PD, inversion efficiency and residual from IR magnitudes (..., N). tr_ms = inf: TR
    not recorded; T1 is exact, PD and the efficiency are then the apparent a and -(a + b)/a."""
    if images.shape[-1] != len(ti_ms):
        raise Q2MRIError(f"{images.shape[-1]} IR images but {len(ti_ms)} inversion times; give one TI per image")
    if len(set(round(float(t), 6) for t in ti_ms)) < 3:
        raise Q2MRIError("IR T1 fitting needs at least three different inversion times")
    if max(ti_ms) >= tr_ms:
        raise Q2MRIError(f"an inversion time ({max(ti_ms)} ms) is not shorter than TR ({tr_ms} ms); check --ti and --tr")
    mask = default_mask(images) if mask is None else mask
    # TR not recorded (inf): the model's TR -> inf limit, a + b exp(-TI/T1), which needs no TR. A finite
    # stand-in keeps the Levenberg-Marquardt Jacobian finite (d/dT1 exp(-inf/T1) is 0 * inf = NaN in
    # torch, which froze every voxel on the start grid); e^(-TR/T1) is exactly 0 at it.
    tr_model = TR_UNKNOWN_MS if math.isinf(tr_ms) else tr_ms
    out = fit_voxels(lambda y: fit_ir_chunk(y, ti_ms, tr_model), images, mask,
                     ("T1", "PD", "inversion_efficiency", "residual"),
                     device=device, dtype=dtype, progress=progress, chunk=1 << 14)
    return with_quality(out, mask, ir_flags(out["T1"], out["inversion_efficiency"], ti_ms))
