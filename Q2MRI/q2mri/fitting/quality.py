"""Fit quality: a failed voxel is flagged, never a plausible number.

quality.nii.gz holds 0 outside the mask, 1 where the fit is trusted and 2 where it is not:
a parameter at a bound of the fit, a voxel that did not converge (non-finite values), or a
value the protocol cannot identify (e.g. a T1 much shorter than the first inversion time:
every image is then fully recovered and any short T1 fits). The maps are NaN where the
quality is 2, so that no statistic, overlay or downstream fit takes them for tissue values;
the relative residual stays, as the evidence.
"""
from __future__ import annotations

import numpy as np

OUTSIDE, FITTED, FLAGGED = 0, 1, 2
KEEP = ("residual", "quality", "confidence")          # maps left as they are where a voxel is flagged


def quality_map(mask: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    m = np.asarray(mask, bool)
    return np.where(m, np.where(flagged & m, FLAGGED, FITTED), OUTSIDE).astype(np.uint8)


def with_quality(maps: dict[str, np.ndarray], mask: np.ndarray, flagged: np.ndarray) -> dict[str, np.ndarray]:
    """The maps with NaN where flagged, plus the quality map."""
    q = quality_map(mask, flagged | ~np.all([np.isfinite(v) for v in maps.values()], axis=0))
    out = {k: (v if k in KEEP else np.where(q == FLAGGED, np.nan, v).astype(np.float32)) for k, v in maps.items()}
    out["quality"] = q
    return out


def _near(v: np.ndarray, bound: float, rel: float = 1e-3) -> np.ndarray:
    return np.abs(v - bound) <= rel * max(abs(bound), 1.0)


def vfa_flags(t1: np.ndarray, pd: np.ndarray, tr_ms: float, bounds: tuple[float, float]) -> np.ndarray:
    """T1 at a bound; T1 so long against TR that E1 = exp(-TR/T1) is 1 within the data's
    precision (beyond 20 s, longer than pure water's), or so short that every flip angle is at
    full recovery (below TR/10); PD not positive."""
    return (_near(t1, bounds[0]) | _near(t1, bounds[1]) | (t1 > 20000.0) | (t1 < tr_ms / 10.0) | ~(pd > 0))


def ir_flags(t1: np.ndarray, delta: np.ndarray, ti_ms, t1_bounds=(0.1, 2.0e4), delta_bounds=(0.0, 2.0)) -> np.ndarray:
    """T1 or the inversion efficiency at a bound; T1 much shorter than the first TI (below TI/3:
    every image fully recovered) or much longer than the last (above 10 x TI_max: no recovery
    seen)."""
    ti = np.asarray(ti_ms, float)
    return (_near(t1, t1_bounds[0]) | _near(t1, t1_bounds[1]) | _near(delta, delta_bounds[0])
            | _near(delta, delta_bounds[1]) | (t1 < ti.min() / 3.0) | (t1 > 10.0 * ti.max()))


def decay_flags(t: np.ndarray, s0: np.ndarray, te_ms, bounds: tuple[float, float]) -> np.ndarray:
    """T2 or T2* at a bound, shorter than a fifth of the second echo time (under 1 % of the signal
    left at the second echo: one echo carries it), or longer than 20 x the last echo time (no
    decay seen); S0 not positive."""
    te = np.sort(np.unique(np.asarray(te_ms, float)))
    return (_near(t, bounds[0]) | _near(t, bounds[1]) | (t < te[1] / 5.0) | (t > 20.0 * te.max()) | ~(s0 > 0))


def afi_flags(cos_alpha: np.ndarray) -> np.ndarray:
    """The signal ratio has no flip angle (|cos| > 1: noise or motion) or gives none below 1 degree."""
    return (np.abs(cos_alpha) > 1.0) | (cos_alpha > np.cos(np.radians(1.0)))


def fatwater_flags(r2s: np.ndarray, psi: np.ndarray, psi0: np.ndarray, half_period: float,
                   r2s_bounds=(0.0, 3000.0)) -> np.ndarray:
    """R2* at a bound, or the field at the edge of its allowed window around its start."""
    return _near(r2s, r2s_bounds[1]) | (np.abs(psi - psi0) >= 0.499 * half_period)


def low_signal(magnitude: np.ndarray, mask: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """Voxels whose signal is below a fraction of the median in the mask (phase is noise there)."""
    m = np.asarray(mask, bool)
    ref = float(np.median(magnitude[m])) if m.any() else 0.0
    return magnitude < fraction * ref
