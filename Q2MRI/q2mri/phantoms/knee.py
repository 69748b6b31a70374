"""Procedural 3D knee (papers/000): sagittal slices, randomized size, shape and flexion.

Grid axes (z, y, x) = (left-right slices, superior-inferior, anterior-posterior), like the
papers' sagittal 3D UTE (256 x 256 x 36). Structures, in mm around the joint line:
femur (shaft, metaphysis, two condyles), tibia (plateau, shaft) and patella, each with
fatty marrow inside a cortical rim of ultrashort T2*; articular cartilage of smoothly
varying thickness (1.5-3 mm) on the condyles, plateau and patellar facet, with 0-2
osteoarthritis-like focal lesions (raised T1/T2); C-shaped wedge menisci; synovial fluid
in the joint space and the suprapatellar pouch; patellar and quadriceps tendons and the
cruciate ligaments; muscle; subcutaneous fat. The femur, patella and quadriceps tendon
rotate together about the left-right axis by the flexion angle (0-30 degrees).
"""
from __future__ import annotations

import numpy as np

from . import fields
from .case import PhantomCase, maps_from_fractions, one_hot_fractions
from .shapes import Frame, cylinder, distance_inside_mm, distance_outside_mm, ellipsoid, segment_tube
from .tissues import KNEE, draw_tissues

FAT, MUSCLE, MARROW, CORTEX, CARTILAGE, FLUID, MENISCUS, TENDON, LESION = range(1, 10)


def make_knee(rng: np.random.Generator, slices: int = 36, matrix: int = 256, fov_mm: float = 150.0,
              slice_mm: float = 3.0, field_t: float = 3.0) -> PhantomCase:
    """One knee case on a (slices, matrix, matrix) sagittal grid."""
    fr = Frame.square(slices, matrix, fov_mm, slice_mm)
    vox, shape = fr.voxel_mm, fr.shape
    s = rng.uniform(0.88, 1.12)                       # overall size
    flex = rng.uniform(0.0, 30.0)                     # flexion, degrees
    j = lambda sd=1.0: 1.0 + sd * rng.uniform(-0.08, 0.08)   # per-structure shape jitter
    u, v, w = fr.axes                                 # LR, SI, AP (mm)
    lab = np.zeros(shape, np.int16)
    # limb and subcutaneous fat
    limb = cylinder((u, v, w), 1, (0.0, 5.0 * s), (62 * s * j(), 56 * s * j()))
    fat_t = rng.uniform(6.0, 14.0)
    inner = cylinder((u, v, w), 1, (0.0, 5.0 * s), (62 * s - fat_t, 56 * s - fat_t))
    lab[limb] = FAT
    lab[inner & limb] = MUSCLE
    # femur, patella, quadriceps tendon: rotated about the LR axis through the joint
    fu, fv, fw = fr.rotated(flex, (1, 2), (0.0, 0.0, 0.0))
    fem = ((cylinder((fu, fv, fw), 1, (0.0, -2 * s), (14 * s * j(), 13 * s * j())) & (fv > 30 * s))
           | ellipsoid((fu, fv, fw), (0.0, 40 * s, -3 * s), (31 * s * j(), 28 * s, 22 * s * j()))
           | ellipsoid((fu, fv, fw), (-20 * s, 18 * s, -6 * s), (16 * s * j(), 22 * s * j(), 27 * s * j()))
           | ellipsoid((fu, fv, fw), (20 * s, 18 * s, -6 * s), (16 * s * j(), 22 * s * j(), 27 * s * j())))
    pat = ellipsoid((fu, fv, fw), (0.0, 32 * s, 30 * s), (21 * s * j(), 20 * s * j(), 8.5 * s * j()))
    quad = segment_tube((fu, fv, fw), (0.0, 50 * s, 30 * s), (0.0, 95 * s, 24 * s), 6.0 * s)
    pouch = ellipsoid((fu, fv, fw), (0.0, 58 * s, 20 * s), (24 * s, 16 * s, 3.0))
    # tibia and tendons in the fixed frame
    tib = (ellipsoid((u, v, w), (0.0, -19 * s, -4 * s), (38 * s * j(), 16 * s * j(), 29 * s * j()))
           | (cylinder((u, v, w), 1, (0.0, -6 * s), (15 * s * j(), 15 * s * j())) & (v < -20 * s)))
    tib &= v < -3.0 * s
    pat_lig = segment_tube((u, v, w), (0.0, 14 * s, 36 * s), (0.0, -38 * s, 26 * s), 5.0 * s)
    acl = segment_tube((u, v, w), (-6 * s, 16 * s, -14 * s), (3 * s, -5 * s, 6 * s), 4.0 * s)
    pcl = segment_tube((u, v, w), (6 * s, 12 * s, -4 * s), (0.0, -8 * s, -22 * s), 4.5 * s)
    bones = fem | tib | pat
    # cartilage: a shell of smoothly varying thickness on the joint surfaces
    thick = 1.5 + 1.5 * (0.5 + 0.25 * fields.smooth_field(rng, shape, 5)).clip(0, 1)
    out_dist = distance_outside_mm(bones, vox)
    joint_zone = (v > -12 * s) & (v < 34 * s)
    cart = (out_dist > 0) & (out_dist <= thick) & joint_zone & limb & ~quad
    # synovial fluid: a thin film beyond the cartilage in the joint, and the pouch
    fluid = ((out_dist > thick) & (out_dist <= thick + 1.0) & joint_zone & (np.abs(v) < 25 * s)) | pouch
    # menisci: C-shaped wedges on the tibial plateau periphery
    menisci = np.zeros(shape, bool)
    for side in (-1.0, 1.0):
        r = np.sqrt((u - side * 20 * s) ** 2 + (w + 4 * s) ** 2)
        rin, rout = 10 * s, 19 * s * j()
        height = np.clip((r - rin) / (rout - rin), 0, 1) * 6.0
        menisci |= (r >= rin) & (r <= rout) & (v >= -3 * s) & (v <= -3 * s + height) & ~((w + 4 * s) > 6 * s) \
            & (np.abs(u - side * 20 * s) > 0)
    menisci &= ~fem & limb
    for mask, label in ((fluid & limb, FLUID), (quad | pat_lig | acl | pcl, TENDON), (cart, CARTILAGE),
                        (menisci, MENISCUS)):
        lab[mask & limb] = label
    cortex_mm = rng.uniform(1.5, 2.5)
    depth = distance_inside_mm(bones, vox)
    lab[bones] = MARROW
    lab[bones & (depth <= cortex_mm)] = CORTEX
    drawn = {"scale": s, "flexion_deg": flex, "fat_mm": fat_t, "cortex_mm": cortex_mm, "lesions": []}
    _cartilage_lesions(rng, lab, fr, drawn)
    tissues = draw_tissues(KNEE, rng)
    maps = maps_from_fractions(one_hot_fractions(lab), tissues, rng)
    maps["B1"] = fields.transmit_b1(rng, shape).astype(np.float32)
    maps["B0"] = fields.b0_field(rng, shape, vox, field_t, bone=lab == CORTEX, smooth_hz=150.0, b0_axis=1)
    geom = fr.geometry((0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0))   # x = AP, y = SI, z = LR (sagittal)
    drawn["tissues"] = tissues.values
    return PhantomCase("knee", lab, tissues.names, maps, fields.receive_bias(rng, shape).astype(np.float32),
                       geom, field_t, drawn)


def _cartilage_lesions(rng, lab, fr: Frame, drawn) -> None:
    cart = np.argwhere(lab == CARTILAGE)
    if len(cart) == 0:
        return
    for _ in range(int(rng.integers(0, 3))):
        c = cart[rng.integers(len(cart))]
        centre = [float(ax.ravel()[i]) for ax, i in zip(fr.axes, c)]
        radius = rng.uniform(2.5, 5.0)
        blob = ellipsoid(fr.axes, centre, (max(radius, fr.voxel_mm[0] * 0.6), radius, radius))
        lab[blob & (lab == CARTILAGE)] = LESION
        drawn["lesions"].append({"centre_mm": centre, "radius_mm": radius})
