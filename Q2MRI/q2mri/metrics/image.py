"""Image-accuracy metrics of the papers, all with an optional mask.

- relative l1 (papers/000): mean |pred - ref| / mean |ref|
- Pearson correlation (papers/000 reports it as the correlation coefficient)
- SSIM (Wang et al. 2004, as in papers/000 A.3 and papers/001): Gaussian window sigma 1.5
  (11 x 11), K1 = 0.01, K2 = 0.03, dynamic range L = max - min of the reference in the
  mask; computed slice by slice in-plane and averaged over the masked voxels
- PSNR (papers/001): 20 log10(max(ref) / RMSE)
- MAE and MPE (papers/001): mean absolute error, and mean absolute percentage error
  100 * mean(|pred - ref| / |ref|) (voxels with ref = 0 excluded)
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ..errors import Q2MRIError


def _pair(pred, ref, mask):
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if pred.shape != ref.shape:
        raise Q2MRIError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    m = np.ones(ref.shape, bool) if mask is None else np.asarray(mask, bool)
    if m.shape != ref.shape:
        raise Q2MRIError(f"mask shape {m.shape} differs from image shape {ref.shape}")
    m = m & np.isfinite(pred) & np.isfinite(ref)
    if not m.any():
        raise Q2MRIError("the mask selects no voxels; check the mask")
    return pred, ref, m


def relative_l1(pred, ref, mask=None) -> float:
    p, r, m = _pair(pred, ref, mask)
    return float(np.abs(p[m] - r[m]).mean() / np.abs(r[m]).mean())


def mae(pred, ref, mask=None) -> float:
    p, r, m = _pair(pred, ref, mask)
    return float(np.abs(p[m] - r[m]).mean())


def mpe(pred, ref, mask=None) -> float:
    p, r, m = _pair(pred, ref, mask)
    m = m & (r != 0)
    return float(100.0 * (np.abs(p[m] - r[m]) / np.abs(r[m])).mean())


def pearson(pred, ref, mask=None) -> float:
    p, r, m = _pair(pred, ref, mask)
    a, b = p[m] - p[m].mean(), r[m] - r[m].mean()
    return float((a * b).sum() / math.sqrt((a * a).sum() * (b * b).sum()))


def psnr(pred, ref, mask=None) -> float:
    p, r, m = _pair(pred, ref, mask)
    mse = ((p[m] - r[m]) ** 2).mean()
    return math.inf if mse == 0 else float(20 * math.log10(np.abs(r[m]).max() / math.sqrt(mse)))


def ssim(pred, ref, mask=None, sigma: float = 1.5) -> float:
    p, r, m = _pair(pred, ref, mask)
    # flagged voxels (NaN) are left out of the mean and count as 0 in their neighbours' windows;
    # unfilled, the Gaussian window would spread NaN over the whole slice
    p, r = np.where(np.isfinite(p), p, 0.0), np.where(np.isfinite(r), r, 0.0)
    L = float(r[m].max() - r[m].min()) or 1.0
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    # In-plane Gaussian window (radius 5 = 11 x 11 at sigma 1.5), slice by slice.
    s = (0.0,) * (r.ndim - 2) + (sigma, sigma) if r.ndim >= 2 else (sigma,)
    f = lambda x: ndimage.gaussian_filter(x, s, truncate=3.5 if sigma == 1.5 else 4.0, mode="reflect")
    mp, mr = f(p), f(r)
    vp, vr, cov = f(p * p) - mp * mp, f(r * r) - mr * mr, f(p * r) - mp * mr
    smap = ((2 * mp * mr + c1) * (2 * cov + c2)) / ((mp * mp + mr * mr + c1) * (vp + vr + c2))
    return float(smap[m].mean())


def evaluate(pred, ref, mask=None) -> dict[str, float]:
    """All the papers' metrics plus Lin's CCC, in one dictionary."""
    from .agreement import ccc
    p, r, m = _pair(pred, ref, mask)
    return {"l1": relative_l1(p, r, m), "corr": pearson(p, r, m), "ssim": ssim(p, r, m), "psnr": psnr(p, r, m),
            "mae": mae(p, r, m), "mpe": mpe(p, r, m), "ccc": ccc(p[m], r[m]), "voxels": int(m.sum())}
