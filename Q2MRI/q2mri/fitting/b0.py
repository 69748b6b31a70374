"""Dual-echo B0 off-resonance from the phase difference, spatially unwrapped.

psi = angle(S2 conj(S1)) / (2 pi (TE2 - TE1)). Voxel by voxel this is known only modulo
1/dTE (it wraps at +-1/(2 dTE)); fields larger than that, common at air-tissue boundaries
or with long echo spacings, are unwrapped in space: the phase difference is unwrapped by
scikit-image's unwrap_phase, the reliability-guided algorithm of Herraez et al. 2002 (2D)
and Abdul-Rahman et al. 2007 (3D), which unwraps the most reliable voxels (smallest second
differences of phase) first, so that noisy voxels at the edge of the body cannot propagate
a wrong 2 pi step into the tissue; it is maintained, needs no tuning, and handles masks.
The unwrapped field is then moved by whole periods 1/dTE so that its median in the mask is
within +-1/(2 dTE) of 0 (the scanner shims the tissue near its centre frequency).

Sign convention: the signal model is S(TE) ~ exp(+i 2 pi B0 TE) (physics.gre), so B0 is
positive where the phase grows with echo time, B0 = (phase(TE2) - phase(TE1)) / (2 pi dTE).
Scanners that store phase with the opposite sign (it depends on the vendor and on how the
complex image is reconstructed) give the negated map: --negate flips it. The default mask
is the body from the magnitude (Otsu threshold of the mean magnitude, holes filled, the
largest connected part), not the noise around it.

Assumes one species in the voxel (or echoes at which fat is in phase with water): with fat
present the chemical shift adds to the phase (use ``fit fatwater`` there).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ..errors import Q2MRIError
from .quality import low_signal, with_quality


def body_mask(magnitude: np.ndarray) -> np.ndarray:
    """The body in a (z, y, x) magnitude image: Otsu threshold, holes filled per slice, the
    largest connected component, opened by one voxel in-plane."""
    from skimage.filters import threshold_otsu
    mag = np.asarray(magnitude, np.float64)
    finite = mag[np.isfinite(mag)]
    if finite.size == 0 or finite.max() <= 0:
        return np.zeros(mag.shape, bool)
    if np.ptp(finite) <= 1e-6 * finite.max():          # a constant image (a test object): all of it
        return mag > 0
    m = mag > threshold_otsu(finite)
    st = np.zeros((3, 3, 3), bool)
    st[1] = ndimage.generate_binary_structure(2, 1)
    m = ndimage.binary_opening(m, st)
    m = np.stack([ndimage.binary_fill_holes(s) for s in m])
    lab, n = ndimage.label(m)
    if n > 1:
        sizes = ndimage.sum(m, lab, range(1, n + 1))
        m = lab == (1 + int(np.argmax(sizes)))
    return m


def fit_b0_dual_echo(s1: np.ndarray, s2: np.ndarray, te1_ms: float, te2_ms: float, *,
                     mask: np.ndarray | None = None, unwrap: bool = True, negate: bool = False) -> dict[str, np.ndarray]:
    """B0 (Hz) from two complex echoes, unwrapped in space; quality flags low-signal voxels."""
    dte_s = (float(te2_ms) - float(te1_ms)) / 1000.0
    if dte_s == 0:
        raise Q2MRIError("B0 mapping needs two different echo times")
    mag = 0.5 * (np.abs(s1) + np.abs(s2))
    if mask is None:
        mask = body_mask(mag)
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise Q2MRIError("the B0 mask selects no voxels; give --mask or check the magnitude images")
    dphi = np.angle(s2 * np.conj(s1))
    if unwrap and dphi.ndim >= 2:                       # a list of voxels has no neighbours to unwrap with
        from skimage.restoration import unwrap_phase
        wrapped = np.ma.masked_array(dphi, mask=~mask)
        # 3D when the volume has several slices, else slice by slice (2D)
        if dphi.ndim == 2 or dphi.shape[0] >= 3:
            dphi = np.asarray(unwrap_phase(wrapped).filled(0.0))
        else:
            dphi = np.stack([np.asarray(unwrap_phase(w).filled(0.0)) if (~w.mask).any() else np.zeros(w.shape)
                             for w in wrapped])
        # whole periods: bring the tissue's median near 0 Hz
        dphi = dphi - 2 * math.pi * np.round(np.median(dphi[mask]) / (2 * math.pi))
    b0 = dphi / (2 * math.pi * dte_s) * (-1.0 if negate else 1.0)
    flags = low_signal(mag, mask) & mask
    return with_quality({"B0": np.where(mask, b0, 0).astype(np.float32)}, mask, flags)
