"""Spin echo (90-180) with repetition time TR and echo time TE.

S = PD * (1 - 2 exp(-(TR - TE/2)/T1) + exp(-TR/T1)) * exp(-TE/T2)
(the refocusing pulse at TE/2 inverts the partially recovered Mz; e.g. Haacke et al.,
Magnetic Resonance Imaging, ch. 8). Units: ms; PD relative.
"""
from __future__ import annotations

import torch

from ._backend import signal_model
from .decay import mono_exponential


@signal_model
def spin_echo(t1_ms, t2_ms, pd, tr_ms, te_ms):
    """Spin-echo magnitude signal."""
    mz = 1.0 - 2.0 * torch.exp(-(tr_ms - te_ms / 2.0) / t1_ms) + torch.exp(-tr_ms / t1_ms)
    return mono_exponential(pd * mz, t2_ms, te_ms)
