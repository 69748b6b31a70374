"""Tissue parameter distributions at 3 T, drawn once per case.

Each case draws every tissue's mean values uniformly from the ranges below (the spread a
phantom should draw from, shared/reference/tissue-values.md); within a tissue, smooth
spatial variation of a few percent is added by the phantom. Proton density of water
tissues is coupled to T1 with scatter, 1/PD = A + B R1 (Fatouros et al. 1991; Gras et
al. 2013; A = 0.935, B = 0.341 s), the interdependency papers/000 A.5 relies on. Fatty
tissues draw PD directly.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PD_A, PD_B_S = 0.935, 0.341
PD_SCATTER = 0.03  # relative SD of PD around the coupling line


@dataclass(frozen=True)
class Tissue:
    name: str
    t1_ms: tuple[float, float]
    t2_ms: tuple[float, float]
    t2s_ms: tuple[float, float]
    pd: tuple[float, float] | None = None        # None: coupled to T1
    pdff_pct: tuple[float, float] = (0.0, 0.0)
    source: str = ""
    lesion: bool = False

    def draw(self, rng: np.random.Generator) -> dict[str, float]:
        u = lambda r: float(rng.uniform(*r))
        t1 = u(self.t1_ms)
        t2 = u(self.t2_ms)
        t2s = min(u(self.t2s_ms), t2)  # T2* never exceeds T2
        if self.pd is None:
            pd = 1.0 / (PD_A + PD_B_S * 1000.0 / t1) * (1.0 + PD_SCATTER * rng.standard_normal())
        else:
            pd = u(self.pd)
        return {"T1": t1, "T2": t2, "T2s": t2s, "PD": float(np.clip(pd, 0.0, 1.0)), "PDFF": u(self.pdff_pct)}


def log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


BRAIN = {
    1: Tissue("CSF", (4000, 4500), (1500, 2000), (400, 800), source="common 3 T literature (tissue-values.md)"),
    2: Tissue("grey matter", (1250, 1450), (80, 90), (50, 60), source="papers/001 Table 2; rrsg2020"),
    3: Tissue("white matter", (800, 880), (66, 74), (45, 55), source="rrsg2020 (genu 822, splenium 841); papers/001 Table 2"),
    4: Tissue("putamen", (940, 1020), (65, 73), (35, 45), source="papers/001 Table 2 (T1 976, T2 69.2)"),
    5: Tissue("thalamus", (850, 930), (66, 74), (42, 52), source="papers/001 Table 2 (T1 889, T2 69.8)"),
    6: Tissue("white-matter lesion", (1100, 1600), (100, 200), (60, 90), source="MS-like, outside normal WM", lesion=True),
    7: Tissue("tumour", (1500, 2200), (120, 250), (60, 120), source="mass-like, outside normal ranges", lesion=True),
}

KNEE = {
    1: Tissue("subcutaneous fat", (360, 400), (65, 75), (30, 40), pd=(0.90, 1.0), pdff_pct=(90, 100), source="tissue-values.md knee"),
    2: Tissue("muscle", (1300, 1500), (28, 34), (25, 30), source="tissue-values.md knee"),
    3: Tissue("fatty marrow", (360, 420), (60, 80), (25, 35), pd=(0.85, 0.95), pdff_pct=(80, 95), source="tissue-values.md knee"),
    4: Tissue("cortical bone", (200, 600), (0.5, 2.0), (0.3, 2.0), pd=(0.15, 0.25), source="ultrashort T2*; tissue-values.md"),
    5: Tissue("cartilage", (1000, 1200), (35, 45), (15, 30), source="Wang & Regatte 2014 (T2 39 +- 2)"),
    6: Tissue("synovial fluid", (2800, 3200), (800, 1200), (200, 600), source="tissue-values.md knee"),
    7: Tissue("meniscus", (900, 1100), (10, 20), (5, 10), source="tissue-values.md knee"),
    8: Tissue("tendon/ligament", (500, 800), (1.0, 3.0), (0.8, 2.5), pd=(0.3, 0.5), source="ultrashort T2*; tissue-values.md"),
    9: Tissue("cartilage lesion", (1200, 1450), (50, 70), (30, 40), source="OA-like focal T1/T2 rise", lesion=True),
}

LIVER = {
    1: Tissue("subcutaneous fat", (370, 390), (65, 70), (30, 40), pd=(0.9, 1.0), pdff_pct=(90, 100), source="mrphantom 3 T"),
    2: Tissue("visceral fat", (370, 390), (65, 70), (30, 40), pd=(0.9, 1.0), pdff_pct=(88, 98), source="mrphantom 3 T"),
    3: Tissue("muscle", (1100, 1300), (27, 31), (31, 36), pdff_pct=(1, 3), source="Abdominal_MR_Phantom"),
    4: Tissue("liver", (780, 850), (30, 38), (15, 25), source="mrphantom 3 T (T1 809); R2* and PDFF drawn per case"),
    5: Tissue("spleen", (1250, 1350), (55, 65), (28, 40), source="tissue-values.md"),
    6: Tissue("kidney", (1100, 1200), (70, 80), (20, 25), source="Abdominal_MR_Phantom (T1 1142)"),
    7: Tissue("blood vessel", (1600, 1750), (150, 250), (40, 60), source="blood T1 ~1650 ms at 3 T (Lu et al. 2004)"),
    8: Tissue("vertebral marrow", (550, 800), (50, 70), (8, 15), pd=(0.8, 0.9), pdff_pct=(30, 60), source="red/yellow marrow mix"),
    9: Tissue("cortical bone", (200, 600), (0.5, 2.0), (0.3, 2.0), pd=(0.15, 0.25), source="ultrashort T2*"),
    10: Tissue("spinal fluid", (4000, 4500), (1500, 2000), (400, 800), source="as CSF"),
}
# The liver cohort of papers/000: PDFF 0-40 %, iron-driven R2* from 30 to over 1000 1/s.
LIVER_PDFF_PCT = (0.0, 40.0)
LIVER_R2S_PER_S = (30.0, 1200.0)


@dataclass
class CaseTissues:
    """The values drawn for one case, by label."""
    values: dict[int, dict[str, float]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)


def draw_tissues(table: dict[int, Tissue], rng: np.random.Generator) -> CaseTissues:
    ct = CaseTissues()
    for lab, t in table.items():
        ct.values[lab] = t.draw(rng)
        ct.names[lab] = t.name
    return ct
