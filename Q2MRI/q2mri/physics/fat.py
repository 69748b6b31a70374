"""Multi-peak fat spectrum (Hamilton et al., NMR Biomed 2011; liver fat).

Peaks in ppm relative to water and their relative amplitudes, from
shared/reference/tissue-values.md. Frequencies scale with field strength through the
proton gyromagnetic ratio 42.577 MHz/T. Fat resonates below water, so the main peak
(-3.40 ppm) is at about -434 Hz at 3 T.
"""
from __future__ import annotations

import math

import torch

GAMMA_BAR_MHZ_PER_T = 42.577
FAT_PPM = (-3.80, -3.40, -2.60, -1.94, -0.39, 0.60)
_RAW_AMPLITUDES = (0.087, 0.693, 0.128, 0.004, 0.039, 0.048)
# The published amplitudes add to 0.999; normalised so that F is the total fat signal.
FAT_AMPLITUDES = tuple(a / sum(_RAW_AMPLITUDES) for a in _RAW_AMPLITUDES)
MAIN_PEAK_PPM = -3.40


def fat_frequencies_hz(field_strength_t: float) -> tuple[float, ...]:
    """Peak offsets from water in Hz at this field strength."""
    return tuple(ppm * GAMMA_BAR_MHZ_PER_T * field_strength_t for ppm in FAT_PPM)


def fat_phasor(te_s: torch.Tensor, field_strength_t: float, single_peak: bool = False) -> torch.Tensor:
    """c(t) = sum_p a_p exp(i 2 pi f_p t): the fat signal relative to water at time t.

    te_s: echo times in seconds (any shape). Returns a complex tensor of the same shape.
    single_peak uses the main methylene peak alone (the two-point Dixon simplification).
    """
    te_s = torch.as_tensor(te_s)
    cdtype = torch.complex128 if te_s.dtype == torch.float64 else torch.complex64
    if single_peak:
        freqs, amps = (MAIN_PEAK_PPM * GAMMA_BAR_MHZ_PER_T * field_strength_t,), (1.0,)
    else:
        freqs, amps = fat_frequencies_hz(field_strength_t), FAT_AMPLITUDES
    out = torch.zeros(te_s.shape, dtype=cdtype, device=te_s.device)
    for f, a in zip(freqs, amps):
        out = out + a * torch.exp(1j * (2 * math.pi * f) * te_s.to(cdtype))
    return out


def in_out_phase_echo_times_ms(field_strength_t: float) -> tuple[float, float]:
    """First out-of-phase and in-phase echo times (ms) for the main fat peak."""
    period_ms = 1000.0 / abs(MAIN_PEAK_PPM * GAMMA_BAR_MHZ_PER_T * field_strength_t)
    return period_ms / 2.0, period_ms
