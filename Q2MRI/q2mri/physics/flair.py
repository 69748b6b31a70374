"""FLAIR: inversion recovery with a long TI that nulls fluid, read out by a spin echo.

Modelled as IR-SE magnitude (physics.inversion_recovery with spin_echo_readout): a
single-echo approximation of the turbo-spin-echo FLAIR used clinically (papers/001: TR
4800 ms, TI 1800 ms, TE 352 ms). Echo-train T2 blurring and variable refocusing angles
of 3D FLAIR are not modelled. Units: ms.
"""
from __future__ import annotations

import math

import torch

from ._backend import signal_model
from .inversion_recovery import inversion_recovery


@signal_model
def flair(t1_ms, t2_ms, pd, ti_ms, tr_ms, te_ms, inversion_efficiency=1.0):
    """FLAIR magnitude signal."""
    return torch.abs(inversion_recovery(
        t1_ms, pd, ti_ms, tr_ms, te_ms, t2_ms, inversion_efficiency, True))


def fluid_null_ti_ms(t1_ms: float, tr_ms: float, te_ms: float = 0.0) -> float:
    """TI that nulls a tissue of this T1 in the IR-SE model with an ideal inversion:
    exp(-TI/T1) = (1 + 2 exp(-(TR - TE/2)/T1) - exp(-TR/T1)) / 2."""
    e = (1.0 + 2.0 * math.exp(-(tr_ms - te_ms / 2.0) / t1_ms) - math.exp(-tr_ms / t1_ms)) / 2.0
    return -t1_ms * math.log(e)
