"""MPRAGE (magnetisation-prepared rapid gradient echo): analytic steady-state signal.

Following Deichmann et al., MRM 2000 (and Marques et al. 2010 for the notation): each
cycle of length TR (inversion to inversion) is an inversion (efficiency d), a delay TA,
a train of N readout excitations of flip angle a spaced by the echo spacing tau, and a
delay TB. TI is measured from the inversion to the excitation that samples the centre
of k-space, number n_c (0-based; N // 2 for linear ordering), so
    TA = TI - n_c * tau,    TB = TR - TA - N * tau.
Inside the train Mz follows the geometric recursion
    M_{k+1} = q M_k + M0 (1 - E),  q = cos(a) E,  E = exp(-tau / T1),
whose fixed point is M* = M0 (1 - E) / (1 - q). Requiring the magnetisation before the
inversion to repeat every TR gives the closed form
    M_pre = [M0 + E_B (M*(1 - q^N) - M0 + q^N M0 (1 - E_A))] / (1 + d E_A E_B q^N)
with E_A = exp(-TA/T1), E_B = exp(-TB/T1). The signal is
    S = M_{n_c} sin(a) exp(-TE/T2*),  M_k = M* + (M_A - M*) q^k,  M_A = M0 - (d M_pre + M0) E_A.
a = a_nominal * B1. Units: ms, degrees; M0 = PD.
"""
from __future__ import annotations

import math

import torch

from ..errors import Q2MRIError
from ._backend import signal_model
from .decay import mono_exponential


def mprage_timing(tr_ms: float, ti_ms: float, echo_spacing_ms: float, n_excitations: int,
                  centre_index: int | None = None) -> tuple[float, float, int]:
    """(TA, TB, n_c) in ms from the protocol; raises if the protocol does not fit in TR."""
    n = int(n_excitations)
    nc = n // 2 if centre_index is None else int(centre_index)
    ta = float(ti_ms) - nc * float(echo_spacing_ms)
    tb = float(tr_ms) - ta - n * float(echo_spacing_ms)
    if n < 1 or not 0 <= nc < n:
        raise Q2MRIError(f"MPRAGE needs 1 or more readout excitations and a centre index inside the train (got N={n}, centre={nc})")
    if ta < 0:
        raise Q2MRIError(f"MPRAGE TI = {ti_ms} ms is shorter than the readout before the k-space centre "
                         f"({nc} x {echo_spacing_ms} ms); lengthen TI or shorten the echo spacing")
    if tb < 0:
        raise Q2MRIError(f"MPRAGE TR = {tr_ms} ms is shorter than TI plus the rest of the readout train; check TR, TI, "
                         "echo spacing and the number of excitations")
    return ta, tb, nc


@signal_model
def mprage(t1_ms, pd, flip_angle_deg, tr_ms, ti_ms, echo_spacing_ms, n_excitations,
           te_ms=0.0, t2s_ms=math.inf, b1=1.0, inversion_efficiency=1.0, centre_index=None):
    """MPRAGE magnitude signal at the centre of k-space (Deichmann et al. 2000)."""
    ta, tb, nc = mprage_timing(float(tr_ms), float(ti_ms), float(echo_spacing_ms),
                               int(n_excitations), centre_index)
    n = int(n_excitations)
    d = inversion_efficiency
    alpha = flip_angle_deg * (math.pi / 180.0) * b1
    e = torch.exp(-echo_spacing_ms / t1_ms)
    q = torch.cos(alpha) * e
    m0 = pd
    m_star = m0 * (1.0 - e) / (1.0 - q)
    e_a = torch.exp(-ta / t1_ms)
    e_b = torch.exp(-tb / t1_ms)
    qn = q ** n
    m_pre = (m0 + e_b * (m_star * (1.0 - qn) - m0 + qn * m0 * (1.0 - e_a))) / (1.0 + d * e_a * e_b * qn)
    m_a = m0 - (d * m_pre + m0) * e_a
    m_centre = m_star + (m_a - m_star) * q ** nc
    return mono_exponential(torch.abs(m_centre) * torch.sin(alpha), t2s_ms, te_ms)
