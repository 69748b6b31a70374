"""Retrospective contrast synthesis from quantitative maps (papers/000 A.4 and Discussion).

Given maps (T1, PD, B1, T2, T2*) and the user's protocol, evaluate the chosen sequence's
signal equation from q2mri.physics. B1 scales the flip angle wherever a flip angle acts
(SPGR/GRE, MPRAGE); a missing B1 means B1 = 1. This is the GUI slider's hot path: it
takes numpy arrays, shares their memory with torch, and does no I/O.
"""
from __future__ import annotations

import math
from typing import Any, Mapping


from . import physics
from .acquisition import Acquisition
from .errors import Q2MRIError

SEQUENCES = ("spgr", "gre", "se", "ir", "flair", "mprage")

# Maps each sequence needs, and the acquisition fields it needs.
NEEDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "spgr": (("T1", "PD"), ("flip_angle_deg", "tr_ms")),
    "gre": (("T1", "PD", "T2s"), ("flip_angle_deg", "tr_ms", "te_ms")),
    "se": (("T1", "T2", "PD"), ("tr_ms", "te_ms")),
    "ir": (("T1", "PD"), ("ti_ms", "tr_ms")),
    "flair": (("T1", "T2", "PD"), ("ti_ms", "tr_ms", "te_ms")),
    "mprage": (("T1", "PD"), ("flip_angle_deg", "tr_ms", "ti_ms", "echo_spacing_ms", "n_excitations")),
}


# Below this TE (ms) T2* decay is negligible (exp(-0.1/T2*) > 0.99 for any T2* above 10 ms):
# an SPGR or MPRAGE synthesized there does not need a T2* map (the maps of predict --task
# spgr-t1, which models the UTE readout of papers/000, have none).
UTE_TE_MS = 0.1


def required_maps(sequence: str, acq: Acquisition | None = None) -> tuple[str, ...]:
    """The maps a sequence needs with this protocol (T2/T2* only where TE matters)."""
    if sequence not in NEEDS:
        raise Q2MRIError(f"unknown sequence {sequence!r}; choose one of {', '.join(SEQUENCES)}")
    needed = NEEDS[sequence][0]
    te = acq.te_ms if acq is not None else None
    if sequence == "ir" and te:
        needed = needed + ("T2",)
    if sequence in ("spgr", "mprage") and te and te >= UTE_TE_MS:
        needed = needed + ("T2s",)
    return needed


def t2s_used(sequence: str, acq: Acquisition, maps: Mapping[str, Any]) -> bool:
    """Whether the synthesis applies T2* decay: where it needs it, or (below UTE_TE_MS) where a T2* map is given."""
    te = acq.te_ms or 0.0
    return sequence == "gre" or (sequence in ("spgr", "mprage") and te > 0 and maps.get("T2s") is not None)


def synthesize(maps: Mapping[str, Any], sequence: str, acq: Acquisition) -> Any:
    """Synthesize one image; arrays in (numpy or torch), same type and shape out."""
    sequence = sequence.lower()
    needed = required_maps(sequence, acq)
    missing = [m for m in needed if m not in maps or maps[m] is None]
    if missing:
        raise Q2MRIError(f"sequence {sequence} needs the {', '.join(missing)} map(s), which are missing; "
                         f"give {', '.join(m + '.nii.gz' for m in missing)} in the maps folder")
    acq.require(*NEEDS[sequence][1])
    b1 = maps.get("B1")
    b1 = 1.0 if b1 is None else b1
    te = acq.te_ms or 0.0
    t1, pd = maps["T1"], maps["PD"]
    if sequence in ("spgr", "gre"):
        t2s = maps["T2s"] if t2s_used(sequence, acq, maps) else math.inf
        return physics.spgr(t1, pd, acq.flip_angle_deg, acq.tr_ms, te, t2s, b1)
    if sequence == "se":
        return physics.spin_echo(t1, maps["T2"], pd, acq.tr_ms, acq.te_ms)
    if sequence == "ir":
        t2 = maps["T2"] if "T2" in needed else math.inf
        return abs(physics.inversion_recovery(t1, pd, acq.ti_ms, acq.tr_ms, te, t2))
    if sequence == "flair":
        return physics.flair(t1, maps["T2"], pd, acq.ti_ms, acq.tr_ms, acq.te_ms)
    t2s = maps["T2s"] if t2s_used(sequence, acq, maps) else math.inf
    return physics.mprage(t1, pd, acq.flip_angle_deg, acq.tr_ms, acq.ti_ms, acq.echo_spacing_ms,
                          acq.n_excitations, te, t2s, b1)


