"""Which voxels are clearly water and which clearly fat, from the echo magnitudes alone.

The magnitude of the multi-peak signal, |(1 - f) + f c(t)| exp(-R2* t) (physics.fat's spectrum
c(t), the confounder model of fitting.fatwater without B0 and phase), is the same for a
conjugated precession and for any phase convention, so it judges a complex separation from
outside: where the best water-dominant fraction (f < 0.5) and the best fat-dominant one differ
clearly in residual, the voxel's side is known, and a complex fit on the other side has swapped
water and fat there (magnitude fitting, Yu et al. 2011, MRM 66:199; used as the outside check of
the ISMRM 2012 challenge cases in ../shared/realdata/README.md).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..physics.fat import fat_phasor

UNSURE, WATER, FAT = 0, 1, 2
# R2* (1/s) grid of the water-fat residual curves, here and in fitting.fatwater
R2S_GRID = (0.0, 15.0, 30.0, 50.0, 75.0, 110.0, 160.0, 230.0, 330.0, 470.0, 670.0, 950.0, 1350.0)


def magnitude_sides(mag: np.ndarray, te_ms: Sequence[float], field_t: float, mask: np.ndarray, *,
                    ratio: float = 2.0, margin: float = 0.0, steps: int = 51, chunk: int = 65536,
                    evidence: bool = False):
    """Per voxel of mag (..., E): WATER, FAT, or UNSURE where the two sides' best residuals are
    within ``ratio`` of each other or within ``margin`` noise variances (or outside the mask).
    evidence: also return the residuals' difference in noise variances per voxel."""
    te_s = torch.as_tensor(np.asarray(te_ms, float) / 1000.0)
    c = fat_phasor(te_s, float(field_t))                                        # (E,) complex
    f = torch.linspace(0.0, 1.0, steps, dtype=torch.float64)
    r2s = torch.as_tensor(R2S_GRID, dtype=torch.float64)
    m = ((1 - f)[:, None] + f[:, None] * c[None].to(torch.complex128)).abs()    # (F, E)
    m = m[:, None, :] * torch.exp(-r2s[None, :, None] * te_s[None, None, :])    # (F, R, E)
    mm = (m * m).sum(-1)
    y_all = np.asarray(mag, np.float64)[np.asarray(mask, bool)]
    water = f < 0.5
    rw, rf, yy = [], [], []
    for s in range(0, y_all.shape[0], chunk):
        y = torch.from_numpy(y_all[s:s + chunk])                               # (V, E)
        n2 = (y * y).sum(-1)
        ym = torch.einsum("ve,fre->vfr", y, m)
        res = (n2[:, None, None] - ym * ym / mm[None]).clamp_min(0).amin(-1)  # (V, F): best R2* per fraction
        rw.append(res[:, water].amin(-1))
        rf.append(res[:, ~water].amin(-1))
        yy.append(n2)
    rw, rf, yy = torch.cat(rw), torch.cat(rf), torch.cat(yy)
    # sure: one side fits clearly better, by a factor and by more than the noise can move a residual
    # (its variance from the median best residual over E - 3 degrees of freedom)
    best = torch.minimum(rw, rf)
    sigma2 = float(best.median()) / max(len(te_ms) - 3, 1) if best.numel() else 0.0
    eps = 1e-4 * yy
    ratio_v = (torch.maximum(rw, rf) + eps) / (best + eps)
    margin_v = (rw - rf).abs() / max(sigma2, 1e-30)
    sure = (ratio_v > ratio) & (margin_v > margin)
    out = torch.where(sure, torch.where(rw < rf, WATER, FAT), UNSURE).to(torch.int8).numpy()
    full = np.zeros(mask.shape, np.int8)
    full[np.asarray(mask, bool)] = out
    if evidence:
        ev = np.zeros(mask.shape, np.float32)
        ev[np.asarray(mask, bool)] = margin_v.numpy()
        return full, ev
    return full


def swapped_share(pdff: np.ndarray, sides: np.ndarray) -> tuple[float, int]:
    """The share of confidently classified voxels whose PDFF (%) is on the other side of 50 %,
    and how many voxels were classified."""
    sure = (sides != UNSURE) & np.isfinite(pdff)
    swapped = ((sides == WATER) & (pdff > 50)) | ((sides == FAT) & (pdff < 50))
    n = int(sure.sum())
    return (float(swapped[sure].sum()) / n if n else 0.0), n
