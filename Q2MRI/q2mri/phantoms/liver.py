"""Procedural liver and abdomen slab (papers/000): axial slices through the upper abdomen.

Grid axes (z, y, x) = (superior-inferior slices, anterior-posterior, left-right). A body
ellipse with subcutaneous fat, an abdominal muscle wall and paraspinal muscles, a
vertebral body (marrow, cortical rim) with the spinal canal, aorta and inferior vena cava,
liver with portal/hepatic vessels, spleen, kidneys (inferior part of the slab), bowel gas
and visceral fat filling the rest. Per case the liver draws PDFF from 0-40 % and an
iron-driven R2* log-uniformly from 30 to 1200 1/s (papers/000: mild to severe overload).
Air (bowel gas, outside the body) drives the susceptibility part of B0.
"""
from __future__ import annotations

import numpy as np

from . import fields
from .case import PhantomCase, maps_from_fractions, one_hot_fractions
from .shapes import Frame, cylinder, ellipsoid
from .tissues import LIVER, LIVER_PDFF_PCT, LIVER_R2S_PER_S, draw_tissues, log_uniform

SUBQ, VISC, MUSCLE, LIVER_L, SPLEEN, KIDNEY, VESSEL, MARROW, CORTEX, CANAL = range(1, 11)


def make_liver(rng: np.random.Generator, slices: int = 32, matrix: int = 180, fov_mm: float = 380.0,
               slice_mm: float = 5.0, field_t: float = 3.0) -> PhantomCase:
    fr = Frame.square(slices, matrix, fov_mm, slice_mm)
    vox, shape = fr.voxel_mm, fr.shape
    z, y, x = fr.axes                       # SI (+superior), AP (+anterior), LR (+left)
    s = rng.uniform(0.88, 1.12)
    lab = np.zeros(shape, np.int16)
    rx, ry = 160 * s * rng.uniform(0.92, 1.08), 115 * s * rng.uniform(0.9, 1.1)
    body = cylinder((z, y, x), 0, (0.0, 0.0), (ry, rx))
    fat_t = rng.uniform(10, 30)
    wall_in = cylinder((z, y, x), 0, (0.0, 0.0), (ry - fat_t, rx - fat_t))
    cavity = cylinder((z, y, x), 0, (0.0, 0.0), (ry - fat_t - 10, rx - fat_t - 10))
    lab[body] = SUBQ
    lab[wall_in] = MUSCLE
    lab[cavity] = VISC
    for side in (-1, 1):
        lab[cylinder((z, y, x), 0, (-70 * s, side * 38 * s), (20 * s, 24 * s)) & body] = MUSCLE
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
    tissues = draw_tissues(LIVER, rng)
    pdff = float(rng.uniform(*LIVER_PDFF_PCT))
    r2s = log_uniform(rng, *LIVER_R2S_PER_S)
    tissues.values[LIVER_L]["PDFF"] = pdff
    tissues.values[LIVER_L]["T2s"] = min(1000.0 / r2s, tissues.values[LIVER_L]["T2"])
    maps = maps_from_fractions(one_hot_fractions(lab), tissues, rng)
    maps["PDFF"] = np.clip(maps["PDFF"], 0, 100)
    maps["B1"] = fields.transmit_b1(rng, shape, 0.6, 1.4).astype(np.float32)
    maps["B0"] = fields.b0_field(rng, shape, vox, field_t, air=air | ~body, smooth_hz=200.0, b0_axis=0)
    geom = fr.geometry((1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0))
    drawn = {"scale": s, "liver_pdff_pct": pdff, "liver_r2s_per_s": r2s, "fat_mm": fat_t, "tissues": tissues.values}
    return PhantomCase("liver", lab, tissues.names, maps, fields.receive_bias(rng, shape).astype(np.float32),
                       geom, field_t, drawn)
