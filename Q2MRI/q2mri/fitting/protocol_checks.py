"""Plausible protocols per fit: values that look like the wrong unit are errors that say which
unit is expected, before any fit runs.

The acquisition record holds ms (q2mri.acquisition); a TE given in seconds on the command line
(--te 0.0046) or a sidecar holding milliseconds where BIDS wants seconds (EchoTime 4.6 -> 4600
ms) are the two usual slips. The ranges are generous: they reject what no MR protocol uses.
"""
from __future__ import annotations

from typing import Sequence

from ..errors import Q2MRIError

SECONDS_HINT = "give times in ms on the command line (e.g. 4.6, not 0.0046) and in seconds in BIDS sidecars"


def check_echo_times(te_ms: Sequence[float], fit: str, *, spin_echo: bool = False) -> None:
    """Multi-echo GRE: spacing >= 0.2 ms and TE <= 200 ms; spin echo: TE 1-2000 ms."""
    te = sorted(set(float(t) for t in te_ms))        # repeated TEs are the fit's own error to report
    if len(te) >= 2:
        spacing = min(b - a for a, b in zip(te, te[1:]))
        if spacing < 0.2:
            raise Q2MRIError(f"{fit}: echo times {te} ms are {spacing:g} ms apart, which looks like seconds; {SECONDS_HINT}")
    top = 2000.0 if spin_echo else 200.0
    if te[-1] > top:
        raise Q2MRIError(f"{fit}: echo time {te[-1]:g} ms is longer than any {'spin-echo' if spin_echo else 'gradient-echo'} "
                         f"echo ({top:g} ms); a sidecar in ms? {SECONDS_HINT}")
    if spin_echo and te[0] < 1.0:
        raise Q2MRIError(f"{fit}: spin-echo time {te[0]:g} ms is shorter than 1 ms; {SECONDS_HINT}")


def check_tr(tr_ms: float, fit: str) -> None:
    if tr_ms < 1.0:
        raise Q2MRIError(f"{fit}: TR {tr_ms:g} ms is shorter than 1 ms, which looks like seconds; {SECONDS_HINT}")
    if tr_ms > 60000.0:
        raise Q2MRIError(f"{fit}: TR {tr_ms:g} ms is longer than a minute; {SECONDS_HINT}")


def check_inversion_times(ti_ms: Sequence[float], tr_ms: float) -> None:
    ti = [float(t) for t in ti_ms]
    if max(ti) < 20.0:       # an IR series spans tens to thousands of ms; all below 20 ms is seconds given as ms
        raise Q2MRIError(f"IR: inversion times {ti} ms are all below 20 ms, which looks like seconds; {SECONDS_HINT}")
    for t in ti:
        if t >= tr_ms:
            raise Q2MRIError(f"IR: inversion time {t:g} ms is not shorter than TR {tr_ms:g} ms; check --ti and --tr (ms)")


def check_flip_angles(fa_deg: Sequence[float], fit: str) -> None:
    for a in fa_deg:
        if not (0.0 < float(a) <= 180.0):
            raise Q2MRIError(f"{fit}: flip angle {a:g} is outside 0-180 degrees; give the nominal flip angle in degrees")
