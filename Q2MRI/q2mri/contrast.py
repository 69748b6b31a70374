"""Virtual contrast (papers/000 Discussion): change a tissue's parameters in the maps, then
re-synthesize. Either a value (the T1 of blood, an enhancing lesion) or a gadolinium agent at a
concentration C, through the relaxivity equations

    1/T1 = 1/T1_0 + r1 C,     1/T2 = 1/T2_0 + r2 C,     R2* = R2*_0 + r2 C

(T in s, r in L/(mmol s), C in mmol/L = mM). r2 for T2* is a lower bound: susceptibility
effects of a compartmentalised agent add more.

Relaxivities in human plasma at 37 degC, 1.5 T and 3 T: Rohrer M, Bauer H, Mintorovitch J,
Requardt M, Weinmann HJ. Comparison of magnetic properties of MRI contrast media solutions at
different magnetic field strengths. Invest Radiol 2005;40:715-724 (Table 3).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .errors import Q2MRIError

# agent: {field (T): (r1, r2)} in L/(mmol s)
RELAXIVITY: dict[str, dict[float, tuple[float, float]]] = {
    "gadobutrol": {1.5: (5.2, 6.1), 3.0: (5.0, 7.1)},      # Gadovist
    "gadoterate": {1.5: (3.6, 4.3), 3.0: (3.5, 4.9)},      # Dotarem
    "gadopentetate": {1.5: (4.1, 4.6), 3.0: (3.7, 5.2)},   # Magnevist
    "gadoteridol": {1.5: (4.1, 5.0), 3.0: (3.7, 5.7)},     # ProHance
    "gadobenate": {1.5: (6.3, 8.7), 3.0: (5.5, 11.0)},     # MultiHance
    "gadoxetate": {1.5: (6.9, 8.7), 3.0: (6.2, 11.0)},     # Primovist / Eovist
}
SETTABLE = ("T1", "T2", "T2s", "PD")


def relaxivity(agent: str, field_t: float) -> tuple[float, float]:
    """(r1, r2) of an agent at a field strength; linear between the tabulated 1.5 and 3 T."""
    table = RELAXIVITY.get(agent.lower())
    if table is None:
        raise Q2MRIError(f"unknown contrast agent {agent!r}; choose one of {', '.join(RELAXIVITY)}")
    fields = sorted(table)
    if not fields[0] - 0.05 <= field_t <= fields[-1] + 0.05:
        raise Q2MRIError(f"relaxivities are tabulated at {' and '.join(f'{f:g}' for f in fields)} T "
                         f"(Rohrer et al. 2005); {field_t:g} T is outside; give --field-strength 1.5 to 3")
    r1 = float(np.interp(field_t, fields, [table[f][0] for f in fields]))
    r2 = float(np.interp(field_t, fields, [table[f][1] for f in fields]))
    return r1, r2


def with_agent(maps: dict[str, np.ndarray], where: np.ndarray, agent: str, conc_mm: float,
               field_t: float) -> dict[str, np.ndarray]:
    """The maps with the agent at conc_mm (mmol/L) in the voxels `where`; the other voxels untouched."""
    if conc_mm < 0:
        raise Q2MRIError(f"a concentration cannot be negative ({conc_mm:g} mM)")
    r1, r2 = relaxivity(agent, field_t)
    out = {k: np.array(v, copy=True) for k, v in maps.items()}
    if "T1" in out:
        t1 = out["T1"][where].astype(np.float64)
        out["T1"][where] = 1000.0 / (1000.0 / t1 + r1 * conc_mm)
    for name in ("T2", "T2s"):
        if name in out:
            t = out[name][where].astype(np.float64)
            out[name][where] = np.where(t > 0, 1000.0 / (1000.0 / np.where(t > 0, t, 1.0) + r2 * conc_mm), t)
    if "R2s" in out:
        out["R2s"][where] = out["R2s"][where] + r2 * conc_mm
    return out


@dataclass(frozen=True)
class Setting:
    """One --set: a label (name or number) and either parameter values or an agent at a concentration."""
    label: str
    values: tuple[tuple[str, float], ...] = ()
    agent: str | None = None
    conc_mm: float = 0.0


def parse_setting(text: str) -> Setting:
    """'liver:T1=300', 'lesion:T1=600,T2=80' or '3:agent=gadobutrol:0.5mM'."""
    label, sep, rest = text.partition(":")
    if not sep or not label or not rest:
        raise Q2MRIError(f"--set {text!r}: write LABEL:T1=MS (T1, T2, T2s in ms, PD relative) or "
                         "LABEL:agent=NAME:CONCmM, e.g. lesion:agent=gadobutrol:0.5mM")
    m = re.fullmatch(r"agent=([A-Za-z-]+):([0-9.eE+-]+)\s*mM", rest.strip())
    if m:
        try:
            return Setting(label, agent=m.group(1).lower(), conc_mm=float(m.group(2)))
        except ValueError:
            raise Q2MRIError(f"--set {text!r}: the concentration is not a number") from None
    values = []
    for part in rest.split(","):
        key, eq, val = part.partition("=")
        key = key.strip()
        if not eq or key not in SETTABLE:
            raise Q2MRIError(f"--set {text!r}: set one of {', '.join(SETTABLE)} (e.g. {label}:T1=300) or an agent "
                             f"({label}:agent=gadobutrol:0.5mM)")
        try:
            v = float(val)
        except ValueError:
            raise Q2MRIError(f"--set {text!r}: {val!r} is not a number") from None
        if v <= 0 and key != "PD":
            raise Q2MRIError(f"--set {text!r}: {key} must be positive (ms)")
        values.append((key, v))
    return Setting(label, tuple(values))


def apply_settings(maps: dict[str, np.ndarray], labels: np.ndarray, names: dict[int, str],
                   settings: list[Setting], field_t: float | None) -> tuple[dict[str, np.ndarray], list[str]]:
    """The maps after every setting, in order, and one line per setting saying what changed."""
    out = {k: np.array(v, copy=True) for k, v in maps.items()}
    notes = []
    by_name = {v.lower(): k for k, v in names.items()}
    for s in settings:
        key = s.label.strip()
        lab = int(key) if key.lstrip("-").isdigit() else by_name.get(key.lower())
        if lab is None:
            raise Q2MRIError(f"--set: no label named {key!r}; the labels are {', '.join(sorted(names.values())) or 'numbers only'}")
        where = labels == lab
        if not where.any():
            raise Q2MRIError(f"--set: label {key!r} ({lab}) has no voxels in the label image")
        if s.agent:
            if field_t is None:
                raise Q2MRIError("--set with an agent needs the field strength: give --field-strength (T)")
            out = with_agent(out, where, s.agent, s.conc_mm, field_t)
            r1, r2 = relaxivity(s.agent, field_t)
            notes.append(f"{names.get(lab, key)}: {s.agent} {s.conc_mm:g} mM at {field_t:g} T (r1 {r1:g}, r2 {r2:g} L/mmol/s)")
        for k, v in s.values:
            if k not in out:
                raise Q2MRIError(f"--set {key}:{k}=...: the maps have no {k}")
            out[k][where] = v
            notes.append(f"{names.get(lab, key)}: {k} = {v:g}")
    return out, notes
