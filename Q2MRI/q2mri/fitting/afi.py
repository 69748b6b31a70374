"""B1 from an actual flip-angle imaging pair (Yarnykh, MRM 2007).

Closed form from the ratio r = S2/S1 (physics.afi.afi_cos_alpha): exact when a T1 map is
given, Yarnykh's TR << T1 approximation otherwise. B1 = actual / nominal flip angle.

B1+ varies on the scale of the RF wavelength in tissue (centimetres, phantoms.transmit), while
the voxel-wise ratio carries the images' noise; smooth_in_mask averages it over a Gaussian
of a few millimetres inside the mask (normalised convolution, so the edge of the mask does
not pull values towards 0), the usual treatment of measured B1 maps before a VFA fit.
"""
from __future__ import annotations

import numpy as np

from scipy import ndimage

from ..errors import Q2MRIError
from ..physics.afi import afi_cos_alpha
from .quality import afi_flags, with_quality
from .voxelwise import default_mask


def fit_b1_afi(s1: np.ndarray, s2: np.ndarray, flip_angle_deg: float, tr1_ms: float, tr2_ms: float, *,
               t1_ms: np.ndarray | None = None, mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """B1 (relative) and the actual flip angle (degrees) from AFI magnitudes S1 (TR1) and S2 (TR2)."""
    if not tr2_ms > tr1_ms:
        raise Q2MRIError(f"AFI needs TR2 > TR1 (got TR1 = {tr1_ms} ms, TR2 = {tr2_ms} ms); list the short-TR image first")
    if mask is None:
        mask = default_mask(np.stack([s1, s2], -1))
    s1d, s2d = s1.astype(np.float64), s2.astype(np.float64)
    ratio = np.divide(s2d, s1d, out=np.zeros_like(s1d), where=s1d > 0)
    t1 = None if t1_ms is None else np.where(t1_ms > 0, t1_ms, np.inf).astype(np.float64)
    cos_a = np.asarray(afi_cos_alpha(ratio, float(tr1_ms), float(tr2_ms), t1))
    alpha = np.degrees(np.arccos(np.clip(cos_a, -1.0, 1.0)))
    b1 = alpha / float(flip_angle_deg)
    mask = np.asarray(mask, bool)
    maps = {"B1": np.where(mask, b1, 0).astype(np.float32), "flip_angle_actual": np.where(mask, alpha, 0).astype(np.float32)}
    return with_quality(maps, mask, afi_flags(np.where(np.isfinite(cos_a), cos_a, 2.0)))




def smooth_in_mask(values: np.ndarray, mask: np.ndarray, sigma_mm: float, voxel_mm) -> np.ndarray:
    """Gaussian smoothing (SD sigma_mm) of values inside mask: sum(G * v m) / sum(G * m); 0 outside."""
    m = np.asarray(mask, bool) & np.isfinite(values)
    if sigma_mm <= 0 or not m.any():
        return np.where(m, values, 0).astype(np.float32)
    sig = [sigma_mm / float(d) for d in voxel_mm]
    num = ndimage.gaussian_filter(np.where(m, values, 0.0).astype(np.float64), sig, mode="constant")
    den = ndimage.gaussian_filter(m.astype(np.float64), sig, mode="constant")
    return np.where(m, num / np.maximum(den, 1e-12), 0).astype(np.float32)
