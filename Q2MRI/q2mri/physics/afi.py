"""Actual flip-angle imaging (AFI; Yarnykh, MRM 2007).

Two interleaved SPGR intervals TR1 and TR2 after identical pulses of flip angle a = a_nom * B1:
    S1 = PD sin(a) (1 - E2 + (1 - E1) E2 cos(a)) / (1 - E1 E2 cos^2(a)) exp(-TE/T2*)
    S2 = PD sin(a) (1 - E1 + (1 - E2) E1 cos(a)) / (1 - E1 E2 cos^2(a)) exp(-TE/T2*)
with E1 = exp(-TR1/T1), E2 = exp(-TR2/T1) (ideal spoiling). S1 is the echo of the pulse
that starts the TR1 interval. The ratio r = S2/S1 is linear-fractional in cos(a), so
    cos(a) = (1 - E1 - r (1 - E2)) / (r (1 - E1) E2 - (1 - E2) E1)
exactly when T1 is known, and in the limit TR << T1 it becomes Yarnykh's
    cos(a) = (r n - 1) / (n - r),   n = TR2 / TR1.
Units: ms, degrees.
"""
from __future__ import annotations

import math

import torch

from ._backend import signal_model
from .decay import mono_exponential


@signal_model
def afi(t1_ms, pd, flip_angle_deg, tr1_ms, tr2_ms, te_ms=0.0, t2s_ms=math.inf, b1=1.0):
    """AFI signals; output shape (..., 2) holding (S1, S2)."""
    alpha = flip_angle_deg * (math.pi / 180.0) * b1
    c, s = torch.cos(alpha), torch.sin(alpha)
    e1 = torch.exp(-tr1_ms / t1_ms)
    e2 = torch.exp(-tr2_ms / t1_ms)
    den = 1.0 - e1 * e2 * c * c
    s1 = pd * s * (1.0 - e2 + (1.0 - e1) * e2 * c) / den
    s2 = pd * s * (1.0 - e1 + (1.0 - e2) * e1 * c) / den
    decay = mono_exponential(torch.ones_like(s1), t2s_ms, te_ms)
    return torch.stack(torch.broadcast_tensors(s1 * decay, s2 * decay), dim=-1)


@signal_model
def afi_cos_alpha(ratio, tr1_ms, tr2_ms, t1_ms=None):
    """cos(actual flip angle) from r = S2/S1: exact with a T1 map, Yarnykh's limit without."""
    if t1_ms is None:
        n = tr2_ms / tr1_ms
        return (ratio * n - 1.0) / (n - ratio)
    e1 = torch.exp(-tr1_ms / t1_ms)
    e2 = torch.exp(-tr2_ms / t1_ms)
    return (1.0 - e1 - ratio * (1.0 - e2)) / (ratio * (1.0 - e1) * e2 - (1.0 - e2) * e1)
