"""Spoiled gradient echo (SPGR / FLASH) in the steady state.

papers/000 A.4:  S = PD * sin(a) * (1 - E1) / (1 - cos(a) * E1) * exp(-TE / T2*)
with E1 = exp(-TR / T1) and a = a_nominal * B1 (the actual flip angle).
Units: T1, T2*, TR, TE in ms; flip angle in degrees; B1 relative (1 = nominal); PD relative.
"""
from __future__ import annotations

import math

import torch

from ._backend import signal_model
from .decay import mono_exponential


def spgr_t1_factor(t1_ms, flip_angle_rad, tr_ms):
    """sin(a)(1-E1)/(1-cos(a)E1): the T1 weighting of the SPGR steady state (torch)."""
    e1 = torch.exp(-tr_ms / t1_ms)
    return torch.sin(flip_angle_rad) * (1.0 - e1) / (1.0 - torch.cos(flip_angle_rad) * e1)


@signal_model
def spgr(t1_ms, pd, flip_angle_deg, tr_ms, te_ms=0.0, t2s_ms=math.inf, b1=1.0):
    """SPGR steady-state magnitude signal (papers/000 A.4), broadcast over all inputs."""
    alpha = flip_angle_deg * (math.pi / 180.0) * b1
    s = pd * spgr_t1_factor(t1_ms, alpha, tr_ms)
    if te_ms.numel() == 1 and float(te_ms) == 0.0:  # no T2* weighting at TE = 0 (the fit's hot path)
        return s
    return mono_exponential(s, t2s_ms, te_ms)


@signal_model
def ernst_angle_deg(t1_ms, tr_ms):
    """Flip angle of maximum SPGR signal: cos(a_E) = exp(-TR/T1)."""
    return torch.rad2deg(torch.arccos(torch.exp(-tr_ms / t1_ms)))
