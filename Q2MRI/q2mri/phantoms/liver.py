"""Procedural liver and abdomen slab (papers/000): axial slices through the upper abdomen.

Grid axes (z, y, x) = (superior-inferior slices, anterior-posterior, left-right). The body's
outline is a superellipse flattened at the back that narrows towards the pelvis, shifted in
the field of view per case; under 1.5-2.5 mm of skin lie 10-30 mm of subcutaneous fat, the
abdominal wall, the ribs (marrow in cortical bone) where the slab reaches the costal margin,
and the paraspinal muscles; the vertebral body (marrow, cortical rim) with the spinal canal;
aorta and inferior vena cava; a liver with 3-6 portal/hepatic vessel branches and (in some
cases) the gallbladder; spleen; kidneys (inferior part of the slab); bowel gas; visceral fat
filling the rest. Per case the liver draws PDFF from 0-40 % and an iron-driven R2* (at 3 T)
log-uniformly from 30 to 1200 1/s (papers/000: mild to severe overload), scaled with the
field like every R2'. Air (bowel gas, outside the body) drives the susceptibility part of
B0; B1+ comes from the body's own electromagnetics in the body coil (phantoms.transmit).
"""
from __future__ import annotations

import numpy as np

from . import fields
from .case import PhantomCase, dielectric_maps, maps_from_fractions, one_hot_fractions
from .shapes import Frame, cylinder, ellipsoid
from .tissues import LIVER, LIVER_PDFF_PCT, LIVER_R2S_PER_S, draw_tissues, log_uniform
from .transmit import BODY_COIL, transmit_field

SUBQ, VISC, MUSCLE, LIVER_L, SPLEEN, KIDNEY, VESSEL, MARROW, CORTEX, CANAL, GALL, SKIN = range(1, 13)


def make_liver(rng: np.random.Generator, slices: int = 32, matrix: int = 180, fov_mm: float = 380.0,
               slice_mm: float = 5.0, field_t: float = 3.0, oversample: int = 1) -> PhantomCase:
    os_ = int(oversample)
    fr = Frame.square(slices, matrix * os_, fov_mm, slice_mm)
    vox, shape = fr.voxel_mm, fr.shape
    z0, y0, x0 = fr.axes                    # SI (+superior), AP (+anterior), LR (+left)
    shift = (rng.uniform(-10, 10), rng.uniform(-12, 12))
    z, y, x = z0, y0 - shift[0], x0 - shift[1]
    s = rng.uniform(0.88, 1.12)
    lab = np.zeros(shape, np.int16)
    rx0, ry0 = 160 * s * rng.uniform(0.92, 1.08), 115 * s * rng.uniform(0.9, 1.1)
    taper = 1.0 - 0.0008 * np.clip(-z, 0, None)                  # narrower towards the pelvis
    rx, ry = rx0 * taper, ry0 * taper
    # superellipse |x/rx|^p + |y/ry|^p <= 1, flatter at the back (p larger for y < 0)
    p = np.where(y < 0, 3.0, 2.2)
    rr = (np.abs(x / rx) ** p + np.abs(y / ry) ** p) ** (1.0 / p)
    body = rr <= 1.0
    depth = (1.0 - rr) * np.minimum(rx, ry)                       # approximate depth below the skin (mm)
    skin_t, fat_t = rng.uniform(1.5, 2.5), rng.uniform(10, 30)
    lab[body] = VISC
    lab[body & (depth <= skin_t + fat_t + 10)] = MUSCLE
    lab[body & (depth <= skin_t + fat_t)] = SUBQ
    lab[body & (depth <= skin_t)] = SKIN
    cavity = body & (depth > skin_t + fat_t + 10)
    for side in (-1, 1):
        lab[cylinder((z, y, x), 0, (-70 * s, side * 38 * s), (20 * s, 24 * s)) & body] = MUSCLE
    _ribs(rng, lab, (z, y, x), s, body, depth, skin_t + fat_t)
    liver = (ellipsoid((z, y, x), (25 * s, 5 * s, -55 * s), (140, 78 * s, 88 * s)) & cavity
             & ~ellipsoid((z, y, x), (0.0, 60 * s, 10 * s), (400, 30 * s, 30 * s)))
    spleen = ellipsoid((z, y, x), (30 * s, -35 * s, 88 * s), (80, 42 * s, 30 * s)) & cavity
    kidneys = np.zeros(shape, bool)
    for side in (-1, 1):
        kidneys |= ellipsoid((z, y, x), (-60 * s, -50 * s, side * 62 * s), (70, 32 * s, 24 * s)) & cavity
    lab[liver] = LIVER_L
    lab[spleen & ~liver] = SPLEEN
    lab[kidneys & ~liver] = KIDNEY
    vessels = cylinder((z, y, x), 0, (-28 * s, 18 * s), (10 * s, 10 * s)) | cylinder((z, y, x), 0, (-22 * s, -24 * s), (11 * s, 12 * s))
    for _ in range(int(rng.integers(3, 7))):   # portal and hepatic branches inside the liver
        c = (rng.uniform(-60, 40) * s, rng.uniform(-80, -25) * s)
        vessels |= cylinder((z, y, x), 0, c, (rng.uniform(3, 6),) * 2) & liver
    lab[vessels & cavity] = VESSEL
    if rng.uniform() < 0.6:                    # the gallbladder under the liver's inferior surface
        gb = ellipsoid((z, y, x), (-25 * s, 35 * s, -40 * s), (40 * s, 14 * s, 16 * s)) & cavity
        lab[gb] = GALL
    spine_c = (-58 * s, 0.0)
    vert = cylinder((z, y, x), 0, spine_c, (17 * s, 19 * s))
    lab[vert] = CORTEX
    lab[cylinder((z, y, x), 0, spine_c, (15 * s, 17 * s))] = MARROW
    lab[cylinder((z, y, x), 0, (-84 * s, 0.0), (7 * s, 8 * s))] = CANAL
    air = np.zeros(shape, bool)
    for _ in range(int(rng.integers(2, 5))):   # bowel gas in the left anterior abdomen
        c = (rng.uniform(-1, 1) * slices * slice_mm / 3, rng.uniform(20, 70) * s, rng.uniform(10, 80) * s)
        air |= ellipsoid((z, y, x), c, (rng.uniform(8, 15), rng.uniform(8, 15), rng.uniform(8, 18))) & cavity & ~liver
    lab[air] = 0
    tissues = draw_tissues(LIVER, rng, field_t)
    pdff = float(rng.uniform(*LIVER_PDFF_PCT))
    r2s_3t = log_uniform(rng, *LIVER_R2S_PER_S)
    t2 = tissues.values[LIVER_L]["T2"]
    # iron: R2* above R2 is R2', which grows in proportion to the field
    r2s = 1000.0 / t2 + max(r2s_3t - 1000.0 / t2, 0.0) * field_t / 3.0
    tissues.values[LIVER_L]["PDFF"] = pdff
    tissues.values[LIVER_L]["T2s"] = min(1000.0 / r2s, t2)
    frac = one_hot_fractions(lab, 0.3 if os_ == 1 else 0.0)
    maps = maps_from_fractions(frac, tissues, rng, voxel_mm=vox, oversample=os_)
    maps["PDFF"] = np.clip(maps["PDFF"], 0, 100)
    eps, sig = dielectric_maps(frac, tissues)
    tissue = lab > 0
    maps["B1"], transmit = transmit_field(eps, sig, tissue, vox, 0, field_t, BODY_COIL, rng, plane_step_mm=15.0)
    maps["B0"] = fields.b0_oversampled(rng, air | ~body, lab == CORTEX, vox, field_t, os_, smooth_hz=200.0, b0_axis=0)
    geom = fr.geometry((1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0))
    drawn = {"scale": s, "shift_mm": list(shift), "liver_pdff_pct": pdff, "liver_r2s_per_s_3t": r2s_3t,
             "liver_r2s_per_s": r2s, "skin_mm": skin_t, "fat_mm": fat_t, "tissues": tissues.values, "transmit": transmit}
    return PhantomCase("liver", lab, tissues.names, maps, fields.receive_bias(rng, shape).astype(np.float32),
                       geom, field_t, drawn, oversample=os_)


def _ribs(rng, lab, coords, s, body, depth, under_mm) -> None:
    """Rib cross-sections in the abdominal wall, present in the slab's superior part (the
    costal margin): oval bones of fatty marrow in a cortical rim, every 25-35 degrees."""
    z, y, x = coords
    theta = np.degrees(np.arctan2(x, y))        # 0 = anterior
    wall = body & (depth > under_mm) & (depth <= under_mm + 12)
    upper = z > rng.uniform(-20, 20)             # the costal margin crosses the slab
    step = rng.uniform(25, 35)
    for t in np.arange(-150, 151, step) + rng.uniform(-5, 5):
        if abs(t) < 35:                          # no ribs over the linea alba
            continue
        d_ang = np.radians(np.abs(((theta - t) + 180) % 360 - 180))
        near = wall & upper & (d_ang * np.hypot(x, y) < 9 * s)
        lab[near & (np.abs(depth - under_mm - 6) < 5)] = CORTEX
        lab[near & (np.abs(depth - under_mm - 6) < 3.5) & (d_ang * np.hypot(x, y) < 6.5 * s)] = MARROW
