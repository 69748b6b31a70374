"""Inversion recovery: 180 inversion, TI, then a 90 readout; repeated every TR.

Signed longitudinal magnetisation at the readout, with inversion efficiency d (1 = ideal):
  gradient-echo / single-shot readout (Mz saturated by the readout):
      S = PD * (1 - (1 + d) exp(-TI/T1) + d exp(-TR/T1))
  spin-echo readout (the 180 at TI + TE/2 inverts Mz again; IR-SE, used by FLAIR):
      S = PD * (1 - (1 + d) exp(-TI/T1) + 2 d exp(-(TR - TE/2)/T1) - d exp(-TR/T1)) * exp(-TE/T2)
Both are a + b exp(-TI/T1) in TI, the three-parameter model of Barral et al., MRM 2010,
that the IR T1 fit uses. Magnitude images are |S|. Units: ms.
"""
from __future__ import annotations

import math

import torch

from ._backend import signal_model
from .decay import mono_exponential


@signal_model
def inversion_recovery(t1_ms, pd, ti_ms, tr_ms, te_ms=0.0, t2_ms=math.inf,
                       inversion_efficiency=1.0, spin_echo_readout=False):
    """Signed IR signal (take abs() for magnitude images)."""
    d = inversion_efficiency
    ei = torch.exp(-ti_ms / t1_ms)
    er = torch.exp(-tr_ms / t1_ms)
    if spin_echo_readout:
        mz = 1.0 - (1.0 + d) * ei + 2.0 * d * torch.exp(-(tr_ms - te_ms / 2.0) / t1_ms) - d * er
    else:
        mz = 1.0 - (1.0 + d) * ei + d * er
    return mono_exponential(pd * mz, t2_ms, te_ms)
