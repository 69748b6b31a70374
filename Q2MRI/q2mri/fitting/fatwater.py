"""Confounder-corrected water-fat separation from three or more complex echoes.

Signal model (physics.gre.gre_complex; Hernando et al., papers/000 ref. 30; Yu et al.
2008): S(t) = (W + F c(t)) exp(-R2* t) exp(i 2 pi psi t), with the multi-peak fat
spectrum c(t) of physics.fat, one R2* shared by water and fat, and complex W and F.

1. Variable projection (Golub & Pereyra; Hernando et al. MRM 2008): for fixed (psi, R2*)
   W and F follow by linear least squares, so the residual depends on (psi, R2*) alone.
   It is evaluated on a grid (psi over one period 1/dTE of the echo spacing, R2* on a
   log-like grid) and minimised over R2*, leaving a residual curve in psi per voxel.
2. B0 regularisation against water/fat swaps: the curve has several local minima
   (the true field and its swap, about one fat shift away). We choose among them by
   region growing (after Yu et al., MRM 2005): seeds are the voxels whose best minimum
   is clearly better than the next; then ring by ring every voxel bordering the grown
   region takes the candidate closest to the signal-weighted mean field of its grown
   neighbours. Two smoothing passes over a wider neighbourhood then re-pick any voxel
   whose choice disagrees with its surroundings. This relies on B0 varying smoothly
   compared with the fat shift (434 Hz at 3 T) over a voxel or two.
3. Levenberg-Marquardt refines (W, F, psi, R2*) per voxel on the complex model.

PDFF = 100 |F| / (|W| + |F|) (magnitude discrimination). It is the signal fat fraction:
with an SPGR readout it carries T1 bias unless the flip angle is small or the optional T1
correction (t1_correction) divides W and F by their SPGR T1 weightings.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from scipy import ndimage

from ..device import resolve_device
from ..errors import Q2MRIError
from ..physics.fat import fat_phasor
from ..physics.gre import gre_complex
from ..physics.spgr import spgr
from .lm import levenberg_marquardt
from .quality import fatwater_flags, with_quality
from .voxelwise import Progress, default_mask, relative_rms_residual

R2S_GRID = (0.0, 15.0, 30.0, 50.0, 75.0, 110.0, 160.0, 230.0, 330.0, 470.0, 670.0, 950.0, 1350.0)
N_CANDIDATES = 4


def _psi_grid(te_s: np.ndarray, step_hz: float | None, range_hz: float | None) -> np.ndarray:
    dte = float(np.min(np.diff(np.sort(te_s))))
    period = 1.0 / dte
    half = period / 2.0 if range_hz is None else float(range_hz)
    step = step_hz or period / 200.0
    return np.arange(-half, half, step)


def _residual_curves(y: torch.Tensor, te_s: torch.Tensor, c: torch.Tensor, psi: torch.Tensor,
                     r2s: torch.Tensor, chunk: int = 2048):
    """Per voxel: residual over psi (min over R2*) and the best R2* at each psi."""
    z = (-r2s[None, :, None] + 2j * math.pi * psi[:, None, None]) * te_s[None, None, :]   # (P, R, E)
    a = torch.exp(z)
    basis = torch.stack([a, a * c], dim=-1)                                                # (P, R, E, 2)
    q, _ = torch.linalg.qr(basis)
    qh = q.conj().reshape(-1, te_s.numel(), 2)                                              # (PR, E, 2)
    norm = (y.abs() ** 2).sum(-1)
    res, rbest = [], []
    for s in range(0, y.shape[0], chunk):
        yy = y[s:s + chunk]
        proj = torch.einsum("gek,ve->vgk", qh, yy)
        r = norm[s:s + chunk, None] - (proj.abs() ** 2).sum(-1)
        r = r.reshape(yy.shape[0], psi.numel(), r2s.numel())
        val, idx = r.min(-1)
        res.append(val)
        rbest.append(idx)
    return torch.cat(res), torch.cat(rbest), norm


def _candidates(curve: torch.Tensor, k: int):
    """The k lowest circular local minima of each residual curve (V, P)."""
    left, right = torch.roll(curve, 1, -1), torch.roll(curve, -1, -1)
    is_min = (curve <= left) & (curve <= right)
    masked = torch.where(is_min, curve, torch.full_like(curve, math.inf))
    val, idx = torch.topk(masked, k, dim=-1, largest=False)
    # Where fewer than k minima exist, repeat the best one.
    fill = ~torch.isfinite(val)
    idx = torch.where(fill, idx[:, :1].expand_as(idx), idx)
    val = torch.where(fill, val[:, :1].expand_as(val), val)
    return val, idx


def _neighbour_mean(values: np.ndarray, weights: np.ndarray, size: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    num = ndimage.uniform_filter(values * weights, size=size, mode="constant")
    den = ndimage.uniform_filter(weights, size=size, mode="constant")
    return num, den


def regularise_field(cand_psi: np.ndarray, cand_res: np.ndarray, norm: np.ndarray, mask: np.ndarray,
                     seed_quantile: float = 0.9) -> np.ndarray:
    """Choose one candidate field per voxel by region growing; arrays are image-shaped (+K)."""
    shape = mask.shape
    size3 = tuple(3 if n > 1 else 1 for n in shape)
    size5 = tuple(5 if n > 4 else (3 if n > 1 else 1) for n in shape)
    weight = np.sqrt(np.maximum(norm, 0)) * mask
    second = np.where(np.isfinite(cand_res[..., 1]), cand_res[..., 1], norm)
    conf = np.where(mask, (second - cand_res[..., 0]) / np.maximum(norm, 1e-30), -np.inf)
    best = cand_psi[..., 0]
    chosen = np.zeros(shape, dtype=np.float64)
    done = np.zeros(shape, bool)
    while (mask & ~done).any():
        remaining = mask & ~done
        thr = np.quantile(conf[remaining], seed_quantile)
        seeds = remaining & (conf >= thr)
        chosen[seeds] = best[seeds]
        done |= seeds
        footprint = np.ones(size3, bool)
        while True:
            # Ring membership by dilation: uniform_filter's running sums leave round-off
            # far from the grown region, so den > 0 is not a safe test.
            ring = mask & ~done & ndimage.binary_dilation(done, footprint)
            if not ring.any():
                break
            num, den = _neighbour_mean(chosen, np.maximum(weight, 1e-12) * done, size3)
            if not ring.any():
                break
            pred = num[ring] / den[ring]
            k = np.abs(cand_psi[ring] - pred[:, None]).argmin(-1)
            chosen[ring] = np.take_along_axis(cand_psi[ring], k[:, None], -1)[:, 0]
            done |= ring
    for _ in range(2):  # re-pick voxels that disagree with a wider neighbourhood
        num, den = _neighbour_mean(chosen, weight, size5)
        pred = np.where(den > 0, num / np.maximum(den, 1e-30), chosen)
        k = np.abs(cand_psi - pred[..., None]).argmin(-1)
        chosen = np.where(mask, np.take_along_axis(cand_psi, k[..., None], -1)[..., 0], 0.0)
    return chosen


def _refine(y: torch.Tensor, te_ms: torch.Tensor, field_t: float, psi0: torch.Tensor, r0: torch.Tensor,
            half_period: float):
    te_s = te_ms / 1000.0
    c = fat_phasor(te_s, field_t)
    a = torch.exp((-r0[:, None] + 2j * math.pi * psi0[:, None]) * te_s[None, :])
    basis = torch.stack([a, a * c[None, :]], -1)                               # (V, E, 2)
    wf = torch.linalg.lstsq(basis, y[..., None]).solution[..., 0]                # (V, 2)
    p0 = torch.stack([wf[:, 0].real, wf[:, 0].imag, wf[:, 1].real, wf[:, 1].imag, psi0, r0], 1)

    def factory(index):
        return lambda p: gre_complex(torch.complex(p[:, 0], p[:, 1]), torch.complex(p[:, 2], p[:, 3]),
                                     p[:, 5], p[:, 4], te_ms, field_t)

    inf = math.inf
    lower = torch.tensor([-inf, -inf, -inf, -inf, 0, 0.0], dtype=psi0.dtype, device=psi0.device).repeat(len(psi0), 1)
    upper = torch.tensor([inf, inf, inf, inf, 0, 3000.0], dtype=psi0.dtype, device=psi0.device).repeat(len(psi0), 1)
    lower[:, 4] = psi0 - half_period / 2
    upper[:, 4] = psi0 + half_period / 2
    res = levenberg_marquardt(factory, p0, y, lower, upper)
    p = res.params
    return p, relative_rms_residual(res.cost, y)


def fit_fatwater(echoes: np.ndarray, te_ms: Sequence[float], field_strength_t: float, *,
                 mask: np.ndarray | None = None, psi_step_hz: float | None = None,
                 psi_range_hz: float | None = None,
                 t1_correction: tuple[float, float, float, float] | None = None,
                 device: str = "auto", progress: Progress | None = None) -> dict[str, np.ndarray]:
    """PDFF (%), R2* (1/s), B0 (Hz), water, fat and residual from complex echoes (..., E).

    t1_correction: (flip angle deg, TR ms, T1 water ms, T1 fat ms) to remove the SPGR T1
    bias of PDFF; None reports the signal fat fraction.
    """
    echoes = np.asarray(echoes)
    if not np.iscomplexobj(echoes):
        raise Q2MRIError("water-fat separation needs complex echoes: give magnitude and phase images (--phase)")
    if echoes.shape[-1] < 3 or len(te_ms) != echoes.shape[-1]:
        raise Q2MRIError(f"water-fat separation needs 3 or more echoes with one TE each (got {echoes.shape[-1]} echoes, {len(te_ms)} TEs)")
    if len(set(round(float(t), 6) for t in te_ms)) != len(te_ms):
        raise Q2MRIError(f"water-fat separation needs distinct echo times, got {list(te_ms)} ms; check EchoTime or --te")
    dev = resolve_device(device)
    shape = echoes.shape[:-1]
    if mask is None:
        mask = default_mask(echoes, 0.05)
    mask = np.asarray(mask, bool).reshape(shape)
    idx = np.flatnonzero(mask)
    y = torch.from_numpy(echoes.reshape(-1, echoes.shape[-1])[idx].astype(np.complex128)).to(dev)
    te = torch.tensor(list(te_ms), dtype=torch.float64, device=dev)
    te_s = te / 1000.0
    psi = torch.from_numpy(_psi_grid(te_s.cpu().numpy(), psi_step_hz, psi_range_hz)).to(dev)
    r2s = torch.tensor(R2S_GRID, dtype=torch.float64, device=dev)
    c = fat_phasor(te_s, field_strength_t)
    if progress:
        progress(0, 3)
    curve, rbest, norm = _residual_curves(y, te_s, c, psi, r2s)
    cval, cidx = _candidates(curve, N_CANDIDATES)
    if progress:
        progress(1, 3)

    def image(v: torch.Tensor, fill=0.0) -> np.ndarray:
        out = np.full((int(np.prod(shape)),) + tuple(v.shape[1:]), fill, dtype=np.float64)
        out[idx] = v.cpu().numpy()
        return out.reshape(shape + tuple(v.shape[1:]))

    cand_psi = image(psi[cidx])
    chosen = regularise_field(cand_psi, image(cval, np.inf), image(norm), mask)
    psi0 = torch.from_numpy(chosen.reshape(-1)[idx]).to(dev)
    k = (psi0[:, None] - psi[None, :]).abs().argmin(-1)
    r0 = r2s[rbest.gather(1, k[:, None])[:, 0]]
    if progress:
        progress(2, 3)
    half_period = float(1.0 / np.min(np.diff(np.sort(te_s.cpu().numpy()))) / 2.0)
    p, resid = _refine(y, te, field_strength_t, psi0, r0, half_period)
    water = torch.complex(p[:, 0], p[:, 1]).abs()
    fat = torch.complex(p[:, 2], p[:, 3]).abs()
    if t1_correction is not None:
        fa, tr, t1w, t1f = (float(v) for v in t1_correction)
        water = water / float(spgr(t1w, 1.0, fa, tr))
        fat = fat / float(spgr(t1f, 1.0, fa, tr))
    total = water + fat
    pdff = torch.where(total > 0, 100.0 * fat / total, torch.zeros_like(total))
    if progress:
        progress(3, 3)
    out = {"PDFF": pdff, "R2s": p[:, 5], "B0": p[:, 4], "water": water, "fat": fat, "residual": resid}
    maps = {k: image(v).astype(np.float32) for k, v in out.items()}
    flags = fatwater_flags(maps["R2s"], maps["B0"], image(psi0), half_period) & mask
    return with_quality(maps, mask, flags)
