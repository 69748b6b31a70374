"""Multi-echo gradient echo with water, multi-peak fat, R2* and B0 (complex and magnitude).

Confounder model of Hernando et al. (papers/000 ref. 30; Yu et al. 2008):
    S(t) = (W + F * sum_p a_p exp(i 2 pi f_p t)) * exp(-R2* t) * exp(i 2 pi psi t) * exp(i phi0)
with t = TE in seconds, psi = B0 off-resonance in Hz, R2* in 1/s, f_p the fat peaks of
physics.fat at the given field strength. W and F may be complex (each with its own
phase). The echo axis is the last axis of the output: maps of shape (...) and TE of
shape (E,) give (..., E). The in-phase/out-of-phase pair is the two-echo case.
"""
from __future__ import annotations

import math

import torch

from ._backend import signal_model
from .fat import fat_phasor


def _echo_axis(x):
    return x.unsqueeze(-1) if isinstance(x, torch.Tensor) and x.dim() > 0 else x


@signal_model
def gre_complex(water, fat, r2s_per_s, b0_hz, te_ms, field_strength_t=3.0, phase_rad=0.0,
                single_peak=False):
    """Complex multi-echo GRE signal; output shape (..., E)."""
    te_s = te_ms.reshape(-1) / 1000.0
    fs = float(field_strength_t)
    c = fat_phasor(te_s, fs, single_peak=bool(single_peak))
    w, f = _echo_axis(water), _echo_axis(fat)
    r2s, b0, ph = _echo_axis(r2s_per_s), _echo_axis(b0_hz), _echo_axis(phase_rad)
    cdtype = c.dtype
    decay = torch.exp(-r2s * te_s)
    rot = torch.exp(1j * (2 * math.pi * b0 * te_s + ph).to(cdtype))
    return (w + f * c) * decay * rot


@signal_model
def gre_magnitude(water, fat, r2s_per_s, te_ms, field_strength_t=3.0, single_peak=False):
    """|S(t)| of the multi-echo GRE: B0 and the common phase drop out of the magnitude."""
    return torch.abs(gre_complex(water, fat, r2s_per_s, 0.0 * r2s_per_s, te_ms,
                                            field_strength_t, 0.0 * r2s_per_s, single_peak))


@signal_model
def spgr_water_fat(t1_ms, pd, pdff_pct, r2s_per_s, b0_hz, flip_angle_deg, tr_ms, te_ms, b1=1.0,
                   field_strength_t=3.0):
    """Complex SPGR echoes of a water-fat voxel: the SPGR steady-state T1 weighting
    E = spgr(T1, 1, FA, TR, B1) (papers/000 A.4) times the confounder model above with
    W = PD (1 - f) E, F = PD f E, f = PDFF / 100 (one T1 for water and fat). Output
    (..., E) like gre_complex; with PDFF = 0 its magnitude is spgr with T2* = 1000 / R2*."""
    from .spgr import spgr
    e = spgr(t1_ms, 1.0, flip_angle_deg, tr_ms, 0.0, math.inf, b1)
    f = pdff_pct / 100.0
    return gre_complex(pd * (1 - f) * e, pd * f * e, r2s_per_s, b0_hz, te_ms, field_strength_t)
