"""Mono-exponential T2* / R2* (multi-echo GRE) and T2 (multi-echo spin echo).

Model S(TE) = S0 exp(-TE/T) (physics.decay). Start: log-linear least squares weighted
by S^2, which undoes most of the noise amplification of the logarithm (the weighting of
the log-transformed problem by the signal variance ratio). Refinement: Levenberg-Marquardt
on the magnitude model, with S0 projected out (variable projection).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..errors import Q2MRIError
from ..physics.decay import mono_exponential
from .lm import levenberg_marquardt, project_scale
from .quality import decay_flags, with_quality
from .voxelwise import Progress, default_mask, fit_voxels, relative_rms_residual

T_BOUNDS_MS = (0.01, 1.0e4)


def log_linear(y: torch.Tensor, te_ms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted log-linear fit: (S0, T ms) per voxel."""
    tiny = torch.finfo(y.dtype).tiny
    w = y.clamp_min(tiny) ** 2
    ly = torch.log(y.clamp_min(tiny))
    sw = w.sum(-1)
    tm = ((w * te_ms).sum(-1) / sw)[:, None]
    lm = ((w * ly).sum(-1) / sw)[:, None]
    stt = (w * (te_ms - tm) ** 2).sum(-1)
    slope = (w * (te_ms - tm) * (ly - lm)).sum(-1) / stt
    rate = (-slope).clamp(1.0 / T_BOUNDS_MS[1], 1.0 / T_BOUNDS_MS[0])
    s0 = torch.exp(lm[:, 0] + rate * tm[:, 0])
    return s0, 1.0 / rate


def fit_mono_chunk(y: torch.Tensor, te_ms: Sequence[float]) -> dict[str, torch.Tensor]:
    """S0 enters linearly and is projected out (variable projection); LM iterates over T."""
    te = torch.as_tensor(list(te_ms), dtype=y.dtype, device=y.device)
    _, t = log_linear(y, te)

    def factory(index):
        ya = y[index]
        return lambda p: (lambda g: project_scale(g, ya) * g)(mono_exponential(1.0, p[:, 0:1], te))

    lower = torch.tensor([T_BOUNDS_MS[0]], dtype=y.dtype, device=y.device)
    upper = torch.tensor([T_BOUNDS_MS[1]], dtype=y.dtype, device=y.device)
    res = levenberg_marquardt(factory, t[:, None], y, lower, upper)
    t = res.params[:, 0]
    s0 = project_scale(mono_exponential(1.0, t[:, None], te), y)[:, 0]
    return {"S0": s0, "T": t, "residual": relative_rms_residual(res.cost, y)}


def _check_echoes(images: np.ndarray, te_ms: Sequence[float], what: str) -> None:
    if images.shape[-1] != len(te_ms):
        raise Q2MRIError(f"{images.shape[-1]} echoes but {len(te_ms)} echo times; give one TE per echo")
    if len(set(round(float(t), 6) for t in te_ms)) < 2:
        raise Q2MRIError(f"{what} needs at least two different echo times")


def fit_t2star(images: np.ndarray, te_ms: Sequence[float], *, mask=None, device="auto",
               dtype=torch.float32, progress: Progress | None = None) -> dict[str, np.ndarray]:
    """T2* (ms), R2* (1/s), S0 and the relative residual from GRE magnitudes (..., E)."""
    _check_echoes(images, te_ms, "T2* fitting")
    mask = default_mask(images) if mask is None else mask
    out = fit_voxels(lambda y: fit_mono_chunk(y, te_ms), images, mask, ("S0", "T", "residual"),
                     device=device, dtype=dtype, progress=progress)
    t = out.pop("T")
    r2s = np.where(t > 0, 1000.0 / np.where(t > 0, t, 1.0), 0.0).astype(np.float32)
    return with_quality({"T2s": t, "R2s": r2s, **out}, mask, decay_flags(t, out["S0"], te_ms, T_BOUNDS_MS))


def fit_t2(images: np.ndarray, te_ms: Sequence[float], *, mask=None, device="auto",
           dtype=torch.float32, progress: Progress | None = None) -> dict[str, np.ndarray]:
    """T2 (ms), S0 and the relative residual from multi-echo spin-echo magnitudes (..., E).

    Assumes ideal refocusing (no stimulated echoes); drop the first echo of a CPMG train
    with imperfect refocusing before fitting.
    """
    _check_echoes(images, te_ms, "T2 fitting")
    mask = default_mask(images) if mask is None else mask
    out = fit_voxels(lambda y: fit_mono_chunk(y, te_ms), images, mask, ("S0", "T", "residual"),
                     device=device, dtype=dtype, progress=progress)
    t = out.pop("T")
    return with_quality({"T2": t, **out}, mask, decay_flags(t, out["S0"], te_ms, T_BOUNDS_MS))
