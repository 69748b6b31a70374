"""Map names and their units: the vocabulary shared by fit, predict, simulate and synthesize.

Units (project-wide): T1, T2, T2* in ms; R2* in 1/s; B0 in Hz; B1 relative (1 = nominal);
PD relative; PDFF in percent; flip angles in degrees.
"""
from __future__ import annotations

MAP_UNITS: dict[str, str] = {
    "T1": "ms",
    "T2": "ms",
    "T2s": "ms",
    "R2s": "1/s",
    "B0": "Hz",
    "B1": "relative",
    "PD": "relative",
    "PDFF": "%",
    "S0": "a.u.",
    "water": "a.u.",
    "fat": "a.u.",
    "residual": "relative",
    "confidence": "relative",
    "quality": "label",
    "flip_angle_actual": "deg",
}

# Long names used in headers and GUIs.
MAP_QUANTITY: dict[str, str] = {
    "T1": "longitudinal relaxation time T1",
    "T2": "transverse relaxation time T2",
    "T2s": "effective transverse relaxation time T2*",
    "R2s": "effective transverse relaxation rate R2*",
    "B0": "off-resonance frequency B0",
    "B1": "relative transmit field B1+",
    "PD": "proton density",
    "PDFF": "proton-density fat fraction",
    "S0": "signal at TE = 0",
    "water": "water signal amplitude",
    "fat": "fat signal amplitude",
    "residual": "relative fit residual",
    "confidence": "water-fat confidence: 1 - residual / residual of the swapped solution (0 ambiguous, 1 certain)",
    "quality": "fit quality: 0 outside the mask, 1 fitted, 2 flagged",
    "flip_angle_actual": "actual flip angle (nominal times B1)",
}


def map_unit(name: str) -> str:
    """Unit of a map by its file stem (``T1``, ``T1_sd`` and ``T1_residual`` share T1's)."""
    base = name.split("_")[0]
    return MAP_UNITS.get(name, MAP_UNITS.get(base, "a.u."))
