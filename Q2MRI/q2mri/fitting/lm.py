"""Batched Levenberg-Marquardt: many small independent least-squares problems at once.

Every voxel is its own problem (P parameters, M measurements). The model is any physics
function; its Jacobian comes from forward-mode automatic differentiation (one JVP per
parameter, over all voxels at once), so no signal equation is re-typed here as a
derivative. The damped normal equations (J^T J + lambda diag(J^T J)) dp = -J^T r
(Marquardt 1963) are solved per voxel by a vectorised Cholesky-free elimination after
Jacobi scaling, which is exact for the small SPD systems met here.
Voxels that have converged drop out of the active set.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch.func import jvp

Model = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class LMResult:
    params: torch.Tensor     # (V, P)
    cost: torch.Tensor       # (V,) sum of squared residuals
    iterations: int


def project_scale(basis: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Least-squares amplitude c of y ~ c * basis per voxel (basis, y: (V, M)).

    Variable projection (Golub & Pereyra 1973): a parameter that enters linearly, such as
    PD, is solved in closed form for the current nonlinear parameters, so LM iterates over
    the nonlinear ones alone. Differentiable, so JVPs see the projection.
    """
    return (basis * y).sum(-1, keepdim=True) / (basis * basis).sum(-1, keepdim=True).clamp_min(torch.finfo(y.dtype).tiny)


def _solve_spd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve a x = b for a batch of small SPD matrices a (V,P,P), b (V,P)."""
    p = a.shape[-1]
    if p == 1:
        return b / a[:, 0, 0:1]
    if p == 2:
        det = a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]
        x0 = (a[:, 1, 1] * b[:, 0] - a[:, 0, 1] * b[:, 1]) / det
        x1 = (a[:, 0, 0] * b[:, 1] - a[:, 1, 0] * b[:, 0]) / det
        return torch.stack([x0, x1], dim=1)
    a = a.clone()
    b = b.clone()
    for k in range(p):  # Gaussian elimination without pivoting (SPD, diagonally damped)
        piv = a[:, k, k]
        for i in range(k + 1, p):
            f = a[:, i, k] / piv
            a[:, i, k:] -= f[:, None] * a[:, k, k:]
            b[:, i] -= f * b[:, k]
    x = torch.zeros_like(b)
    for k in range(p - 1, -1, -1):
        x[:, k] = (b[:, k] - (a[:, k, k + 1:] * x[:, k + 1:]).sum(1)) / a[:, k, k]
    return x


def _residual_and_jacobian(model: Model, p: torch.Tensor, y: torch.Tensor):
    """r = model(p) - y as real (V, M'), and J (V, M', P) by forward-mode AD."""
    cols = []
    r = None
    for k in range(p.shape[1]):
        tangent = torch.zeros_like(p)
        tangent[:, k] = 1.0
        out, dout = jvp(model, (p,), (tangent,))
        if r is None:
            r = _as_real(out - y)
        cols.append(_as_real(dout))
    return r, torch.stack(cols, dim=-1)


def _as_real(x: torch.Tensor) -> torch.Tensor:
    if x.is_complex():
        return torch.view_as_real(x).flatten(-2)
    return x


def _cost(model: Model, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        r = _as_real(model(p) - y)
    return (r * r).sum(-1)


def levenberg_marquardt(model_factory: Callable[[torch.Tensor], Model], p0: torch.Tensor, y: torch.Tensor,
                        lower: torch.Tensor | None = None, upper: torch.Tensor | None = None,
                        max_iter: int = 20, rtol: float | None = None, lam0: float = 1e-3) -> LMResult:
    """Minimise sum_m |model(p)_m - y_m|^2 independently for every row of p0.

    model_factory(index) returns the model restricted to the voxels ``index`` (so that
    per-voxel constants such as B1 follow the active set). p0: (V, P); y: (V, M).
    lower/upper: (P,) or per-voxel (V, P) bounds, applied by clamping each step.
    """
    p = p0.clone()
    v = p.shape[0]
    if rtol is None:  # relative cost change below which a voxel has converged
        rtol = 100.0 * torch.finfo(p.dtype).eps
    lam = torch.full((v,), lam0, dtype=p.dtype, device=p.device)
    active = torch.arange(v, device=p.device)
    full_model = model_factory(active)
    cost = _cost(full_model, p, y)
    it = 0
    for it in range(1, max_iter + 1):
        if active.numel() == 0:
            break
        model = model_factory(active)
        pa, ya = p[active], y[active]
        r, jac = _residual_and_jacobian(model, pa, ya)
        a = torch.einsum("vmp,vmq->vpq", jac, jac)
        g = torch.einsum("vmp,vm->vp", jac, r)
        diag = torch.diagonal(a, dim1=1, dim2=2).clamp_min(torch.finfo(p.dtype).tiny)
        scale = diag.sqrt()
        a_s = a / (scale[:, :, None] * scale[:, None, :])
        g_s = g / scale
        lam_a = lam[active]
        eye = torch.eye(p.shape[1], dtype=p.dtype, device=p.device)
        step = -_solve_spd(a_s + (lam_a[:, None, None] * eye) + eye * 1e-12, g_s) / scale
        cand = pa + step
        if lower is not None:
            cand = torch.maximum(cand, lower[active] if lower.dim() == 2 else lower)
        if upper is not None:
            cand = torch.minimum(cand, upper[active] if upper.dim() == 2 else upper)
        c_old = cost[active]
        c_new = _cost(model, cand, ya)
        better = torch.isfinite(c_new) & (c_new < c_old)
        p[active] = torch.where(better[:, None], cand, pa)
        cost[active] = torch.where(better, c_new, c_old)
        lam[active] = torch.where(better, lam_a * 0.2, lam_a * 10.0).clamp(1e-12, 1e12)
        # Converged: the accepted step changed the cost by a negligible relative amount,
        # or the damping has grown so large that no step can be taken.
        tiny = torch.finfo(p.dtype).tiny
        rel = (c_old - torch.where(better, c_new, c_old)).abs() / (c_old + tiny)
        # Decrease the quadratic model predicts for this step: when even that is
        # negligible the voxel sits at its minimum (to working precision).
        predicted = -(g * step).sum(1) - 0.5 * torch.einsum("vp,vpq,vq->v", step, a, step)
        stalled = predicted <= rtol * (c_old + tiny)
        # The step actually taken (after the bounds): a voxel pinned on a bound stops here.
        step_small = ((cand - pa).abs() <= 10 * torch.finfo(p.dtype).eps * (pa.abs() + 1e-12)).all(1)
        done = (better & (rel < rtol)) | stalled | (lam[active] >= 1e8) | (c_old == 0) | step_small
        active = active[~done]
    return LMResult(params=p, cost=cost, iterations=it)
