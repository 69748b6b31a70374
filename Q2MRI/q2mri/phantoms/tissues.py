"""Tissue parameter distributions, drawn once per case, at 1.5, 3 or 7 T.

Ranges are given at 3 T (shared/reference/tissue-values.md and the sources beside each
tissue). Each case draws every tissue's values uniformly from its range, then moves them
to the case's field strength (scale_to_field): T1 and T2 by factors per relaxation class,
and R2* = R2 + R2' with the mesoscopic (static dephasing) part R2' proportional to B0
(Yablonskiy and Haacke 1994). Within a tissue, smooth spatial variation of a few percent is
added by the phantom. Proton density of water tissues is coupled to T1 at 3 T with scatter,
1/PD = A + B R1 (Fatouros et al. 1991; Gras et al. 2013; A = 0.935, B = 0.341 s), the
interdependency papers/000 A.5 relies on; PD does not depend on the field. Fatty tissues
draw PD directly. Each tissue also names its dielectric class (Gabriel et al. 1996,
phantoms.dielectric), which shapes the transmit field.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

PD_A, PD_B_S = 0.935, 0.341
PD_SCATTER = 0.03  # relative SD of PD around the coupling line

# (T1 factor, T2 factor) relative to 3 T, per relaxation class, at 1.5 and 7 T.
FIELD_SCALING: dict[str, dict[float, tuple[float, float]]] = {
    # Brain parenchyma: T1 from Rooney et al. 2007 (MRM 57:308) and Wang et al. 2020
    # (NeuroImage 213:116700, the same subjects at 0.55-7 T); T2 from Cox and Gowland 2010
    # (MRM 64:1440; white matter 80 / 71 / 47 ms at 1.5 / 3 / 7 T).
    "brain": {1.5: (0.80, 1.13), 7.0: (1.45, 0.66)},
    # Free water (CSF, vitreous, synovial fluid, bile): T1 nearly field independent (Rooney 2007).
    "fluid": {1.5: (1.00, 1.00), 7.0: (1.05, 0.90)},
    # Abdomen, 1.5 vs 3 T from de Bazelaire et al. 2004 (Radiology 230:652; the same subjects
    # and sequences at both fields); 7 T extrapolated with the same power of B0.
    "liver": {1.5: (0.72, 1.35), 7.0: (1.49, 0.69)},
    "spleen": {1.5: (0.80, 1.30), 7.0: (1.31, 0.73)},
    "kidney": {1.5: (0.85, 1.14), 7.0: (1.22, 0.85)},
    # Muscle, fat, marrow and cartilage: 1.5 T from de Bazelaire 2004 (muscle 856 / 898 ms,
    # fat 343 / 382 ms, vertebral marrow 549 / 586 ms); 7 T from Jordan et al. 2013 (Eur J
    # Radiol 82:734: T1 longer and T2 shorter at 7 T in every knee tissue), rounded.
    "muscle": {1.5: (0.95, 0.93), 7.0: (1.10, 0.85)},
    "fat": {1.5: (0.90, 0.85), 7.0: (1.45, 0.85)},
    "marrow": {1.5: (0.94, 1.00), 7.0: (1.45, 0.85)},
    "cartilage": {1.5: (0.88, 1.00), 7.0: (1.25, 0.85)},
    # Collagen-rich short-T2 tissue (tendon, ligament, meniscus, fascia, skin, cortical bone).
    "connective": {1.5: (0.88, 1.00), 7.0: (1.20, 0.90)},
    # Blood: T1 1.5 T about 85 % of 3 T (Lu et al. 2004); T2 of arterial blood falls with B0.
    "blood": {1.5: (0.85, 1.15), 7.0: (1.30, 0.60)},
}


def field_factors(relax: str, field_t: float) -> tuple[float, float]:
    """(T1, T2) factors relative to 3 T, piecewise linear in log(B0) through 1.5, 3 and 7 T."""
    table = FIELD_SCALING[relax]
    pts = [(1.5, table[1.5]), (3.0, (1.0, 1.0)), (7.0, table[7.0])]
    x = math.log(float(field_t))
    xs = [math.log(b) for b, _ in pts]
    out = []
    for k in range(2):
        ys = [math.log(v[k]) for _, v in pts]
        i = 0 if x < xs[1] else 1
        y = ys[i] + (ys[i + 1] - ys[i]) * (x - xs[i]) / (xs[i + 1] - xs[i])
        out.append(math.exp(y))
    return out[0], out[1]


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
    dielectric: str = "muscle"                    # Gabriel class (phantoms.dielectric)
    relax: str = "muscle"                         # field-scaling class (FIELD_SCALING)

    def draw(self, rng: np.random.Generator, field_t: float = 3.0) -> dict[str, float]:
        u = lambda r: float(rng.uniform(*r))
        t1 = u(self.t1_ms)
        t2 = u(self.t2_ms)
        t2s = min(u(self.t2s_ms), t2)  # T2* never exceeds T2
        if self.pd is None:
            pd = 1.0 / (PD_A + PD_B_S * 1000.0 / t1) * (1.0 + PD_SCATTER * rng.standard_normal())
        else:
            pd = u(self.pd)
        v = {"T1": t1, "T2": t2, "T2s": t2s, "PD": float(np.clip(pd, 0.0, 1.0)), "PDFF": u(self.pdff_pct)}
        return scale_to_field(v, self.relax, field_t)


def scale_to_field(v: dict[str, float], relax: str, field_t: float) -> dict[str, float]:
    """3 T values moved to field_t: T1 and T2 by their factors, R2' = R2* - R2 in proportion to B0."""
    if abs(field_t - 3.0) < 1e-9:
        return v
    f1, f2 = field_factors(relax, field_t)
    r2_3, r2s_3 = 1000.0 / v["T2"], 1000.0 / v["T2s"]
    t2 = v["T2"] * f2
    r2p = max(r2s_3 - r2_3, 0.0) * field_t / 3.0
    return {**v, "T1": v["T1"] * f1, "T2": t2, "T2s": 1000.0 / (1000.0 / t2 + r2p)}


def log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


_FAT = dict(pd=(0.90, 1.0), pdff_pct=(90, 100), dielectric="fat", relax="fat")
_BONE = dict(pd=(0.15, 0.25), dielectric="cortical bone", relax="connective")
_SKIN = Tissue("skin", (900, 1100), (25, 40), (12, 25), pd=(0.60, 0.75), dielectric="skin", relax="connective",
               source="dermis: collagen-rich, short T2 (Richard et al. 1991, 1.5 T), scaled to 3 T")

BRAIN = {
    1: Tissue("CSF", (4000, 4500), (1500, 2000), (400, 800), source="common 3 T literature (tissue-values.md)",
              dielectric="csf", relax="fluid"),
    2: Tissue("grey matter", (1250, 1450), (80, 90), (50, 60), source="papers/001 Table 2; rrsg2020",
              dielectric="grey matter", relax="brain"),
    3: Tissue("white matter", (800, 880), (66, 74), (45, 55), source="rrsg2020 (genu 822, splenium 841); papers/001 Table 2",
              dielectric="white matter", relax="brain"),
    4: Tissue("putamen", (940, 1020), (65, 73), (35, 45), source="papers/001 Table 2 (T1 976, T2 69.2)",
              dielectric="grey matter", relax="brain"),
    5: Tissue("thalamus", (850, 930), (66, 74), (42, 52), source="papers/001 Table 2 (T1 889, T2 69.8)",
              dielectric="grey matter", relax="brain"),
    6: Tissue("white-matter lesion", (1100, 1600), (100, 200), (60, 90), source="MS-like, outside normal WM", lesion=True,
              dielectric="white matter", relax="brain"),
    7: Tissue("tumour", (1500, 2200), (120, 250), (60, 120), source="mass-like, outside normal ranges", lesion=True,
              dielectric="grey matter", relax="brain"),
    8: Tissue("scalp skin and galea", *(_SKIN.t1_ms, _SKIN.t2_ms, _SKIN.t2s_ms), pd=_SKIN.pd, source=_SKIN.source,
              dielectric="skin", relax="connective"),
    9: Tissue("scalp subcutaneous fat", (360, 400), (65, 75), (30, 40), source="subcutaneous fat 382 ms (de Bazelaire 2004)", **_FAT),
    10: Tissue("cortical bone (skull, vertebrae)", (200, 600), (0.5, 2.0), (0.3, 1.0), source="ultrashort T2*; tissue-values.md",
               **_BONE),
    11: Tissue("skull marrow (diploe)", (450, 600), (45, 65), (8, 15), pd=(0.80, 0.90), pdff_pct=(40, 70),
               source="red/yellow marrow mix; vertebral marrow 586 ms (de Bazelaire 2004)", dielectric="bone marrow", relax="marrow"),
    12: Tissue("muscle (temporalis, neck)", (1100, 1400), (28, 34), (22, 30), source="muscle 898-1412 ms at 3 T (de Bazelaire 2004; tissue-values.md)"),
    13: Tissue("eye (vitreous)", (3300, 4300), (700, 1100), (200, 500), source="near-pure water, CSF-like",
               dielectric="vitreous humour", relax="fluid"),
    14: Tissue("fat (orbit, neck)", (360, 400), (65, 75), (30, 40), source="as subcutaneous fat", **_FAT),
    15: Tissue("vertebral marrow", (550, 800), (50, 70), (8, 15), pd=(0.80, 0.90), pdff_pct=(30, 60),
               source="L4 marrow 586 ms (de Bazelaire 2004)", dielectric="bone marrow", relax="marrow"),
    16: Tissue("spinal cord", (800, 950), (65, 80), (40, 55), source="cervical cord, white-matter like",
               dielectric="white matter", relax="brain"),
}

KNEE = {
    1: Tissue("subcutaneous fat", (360, 400), (65, 75), (30, 40), source="tissue-values.md knee", **_FAT),
    2: Tissue("muscle", (1300, 1500), (28, 34), (25, 30), source="tissue-values.md knee"),
    3: Tissue("fatty marrow", (360, 420), (60, 80), (25, 35), pd=(0.85, 0.95), pdff_pct=(80, 95), source="tissue-values.md knee",
              dielectric="bone marrow", relax="marrow"),
    4: Tissue("cortical bone", (200, 600), (0.5, 2.0), (0.3, 2.0), source="ultrashort T2*; tissue-values.md", **_BONE),
    5: Tissue("cartilage", (1000, 1200), (35, 45), (15, 30), source="Wang & Regatte 2014 (T2 39 +- 2)",
              dielectric="cartilage", relax="cartilage"),
    6: Tissue("synovial fluid", (2800, 3200), (800, 1200), (200, 600), source="tissue-values.md knee",
              dielectric="csf", relax="fluid"),
    7: Tissue("meniscus", (900, 1100), (10, 20), (5, 10), source="tissue-values.md knee", dielectric="cartilage", relax="connective"),
    8: Tissue("tendon/ligament", (500, 800), (1.0, 3.0), (0.8, 2.5), pd=(0.3, 0.5), source="ultrashort T2*; tissue-values.md",
              dielectric="tendon", relax="connective"),
    9: Tissue("cartilage lesion", (1200, 1450), (50, 70), (30, 40), source="OA-like focal T1/T2 rise", lesion=True,
              dielectric="cartilage", relax="cartilage"),
    10: _SKIN,
    11: Tissue("fascia", (600, 900), (8, 20), (5, 12), pd=(0.4, 0.6), source="fibrous sheets between muscles, tendon-like",
               dielectric="tendon", relax="connective"),
    12: Tissue("infrapatellar fat pad", (360, 400), (65, 75), (30, 40), source="Hoffa's fat pad; as subcutaneous fat", **_FAT),
    13: Tissue("popliteal vessel (blood)", (1600, 1750), (150, 250), (40, 60), source="blood T1 ~1650 ms at 3 T (Lu et al. 2004)",
               dielectric="blood", relax="blood"),
}

LIVER = {
    1: Tissue("subcutaneous fat", (370, 390), (65, 70), (30, 40), source="mrphantom 3 T; de Bazelaire 2004 (382 ms)", **_FAT),
    2: Tissue("visceral fat", (370, 390), (65, 70), (30, 40), pd=(0.9, 1.0), pdff_pct=(88, 98), source="mrphantom 3 T",
              dielectric="fat", relax="fat"),
    3: Tissue("muscle", (850, 1300), (27, 31), (22, 30), pdff_pct=(1, 3), source="de Bazelaire 2004 (898 ms); Abdominal_MR_Phantom"),
    4: Tissue("liver", (780, 850), (30, 38), (15, 25), source="mrphantom 3 T (T1 809); R2* and PDFF drawn per case",
              dielectric="liver", relax="liver"),
    5: Tissue("spleen", (1250, 1350), (55, 65), (28, 40), source="de Bazelaire 2004 (1328 ms)", dielectric="spleen", relax="spleen"),
    6: Tissue("kidney", (1100, 1200), (70, 80), (20, 25), source="de Bazelaire 2004 (cortex 1142 ms)", dielectric="kidney",
              relax="kidney"),
    7: Tissue("blood vessel", (1600, 1750), (150, 250), (40, 60), source="blood T1 ~1650 ms at 3 T (Lu et al. 2004)",
              dielectric="blood", relax="blood"),
    8: Tissue("bone marrow (vertebra, ribs)", (550, 800), (50, 70), (8, 15), pd=(0.8, 0.9), pdff_pct=(30, 60),
              source="red/yellow marrow mix; L4 586 ms (de Bazelaire 2004)", dielectric="bone marrow", relax="marrow"),
    9: Tissue("cortical bone", (200, 600), (0.5, 2.0), (0.3, 2.0), source="ultrashort T2*", **_BONE),
    10: Tissue("spinal fluid", (4000, 4500), (1500, 2000), (400, 800), source="as CSF", dielectric="csf", relax="fluid"),
    11: Tissue("gallbladder (bile)", (2500, 3500), (300, 700), (100, 300), source="bile, fluid-like", dielectric="csf",
               relax="fluid"),
    12: _SKIN,
}
# The liver cohort of papers/000: PDFF 0-40 %, iron-driven R2* from 30 to over 1000 1/s.
LIVER_PDFF_PCT = (0.0, 40.0)
LIVER_R2S_PER_S = (30.0, 1200.0)


@dataclass
class CaseTissues:
    """The values drawn for one case, by label, at the case's field strength."""
    values: dict[int, dict[str, float]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    dielectric: dict[int, str] = field(default_factory=dict)
    field_t: float = 3.0


def draw_tissues(table: dict[int, Tissue], rng: np.random.Generator, field_t: float = 3.0) -> CaseTissues:
    ct = CaseTissues(field_t=float(field_t))
    for lab, t in table.items():
        ct.values[lab] = t.draw(rng, field_t)
        ct.names[lab] = t.name
        ct.dielectric[lab] = t.dielectric
    return ct
