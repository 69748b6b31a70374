"""Mono-exponential transverse decay, shared by every echo-time dependence.

S(TE) = S0 * exp(-TE / T), with TE and T in ms (T = T2 for spin echoes, T2* for
gradient echoes). T = inf means no decay.
"""
from __future__ import annotations

import torch

from ._backend import signal_model


@signal_model
def mono_exponential(s0: torch.Tensor, t_ms: torch.Tensor, te_ms: torch.Tensor) -> torch.Tensor:
    """S = S0 * exp(-TE/T). Units: TE and T in ms; S in the units of S0."""
    return s0 * torch.exp(-te_ms / t_ms)
