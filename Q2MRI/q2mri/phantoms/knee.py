"""Procedural 3D knee (papers/000): sagittal slices, randomized size, shape, position and flexion.

Grid axes (z, y, x) = (left-right slices, superior-inferior, anterior-posterior), like the
papers' sagittal 3D UTE (256 x 256 x 36). In mm around the joint line:

- the leg's outline changes along its length: the thigh widens upwards and bulges
  posteriorly over the hamstrings, the patella makes the anterior knee, the popliteal
  fossa is concave behind the joint, the calf bulges over the gastrocnemius; the leg is
  tilted and shifted in the field of view per case, with air all around it;
- skin (1.5-2.5 mm), subcutaneous fat (4-14 mm), a deep fascia over the muscles;
- muscle groups in sectors around the bones (thigh: quadriceps, adductors, hamstrings;
  calf: tibialis anterior, peronei, soleus and the two gastrocnemius heads), separated by
  fascia and each with its own small T1/T2 offset;
- femur (shaft, metaphysis, two curved condyles), tibia (plateau, shaft) and patella, each
  fatty marrow with trabecular texture (a sub-voxel bone fraction of 10-35 %, which also
  shortens T2*) inside a 1.5-2.5 mm cortical rim of ultrashort T2*;
- articular cartilage of smoothly varying thickness (1.5-3 mm) on the condyles, plateau and
  patellar facet, with 0-2 osteoarthritis-like focal lesions (raised T1/T2);
- C-shaped wedge menisci; synovial fluid in the joint space and the suprapatellar pouch;
  patellar and quadriceps tendons and the cruciate ligaments; the infrapatellar (Hoffa's)
  fat pad; the popliteal artery and vein.
The femur, patella and quadriceps tendon rotate together about the left-right axis by the
flexion angle (0-30 degrees). Maps are made on a grid ``oversample`` times finer in-plane.
"""
from __future__ import annotations

import numpy as np

from . import fields
from .case import PhantomCase, dielectric_maps, maps_from_fractions, one_hot_fractions
from .shapes import Frame, cylinder, distance_inside_mm, distance_outside_mm, ellipsoid, segment_tube
from .tissues import KNEE, draw_tissues
from .transmit import KNEE_COIL, transmit_field

(FAT, MUSCLE, MARROW, CORTEX, CARTILAGE, FLUID, MENISCUS, TENDON, LESION, SKIN, FASCIA, FAT_PAD,
 VESSEL) = range(1, 14)


def _sigmoid(t):
    return 1.0 / (1.0 + np.exp(-t))


def _limb(u, v, w, s, rng):
    """The leg: an elliptic cross-section whose AP centre and radii follow the anatomy along SI.
    Returns (inside mask, normalised radius field r (1 on the skin surface), AP centre)."""
    thigh = _sigmoid((v - 45 * s) / (12 * s))          # 0 below the knee, 1 in the thigh
    calf = np.exp(-((v + 75 * s) / (38 * s)) ** 2)     # the gastrocnemius bulge
    fossa = np.exp(-((v - 5 * s) / (22 * s)) ** 2)     # the popliteal fossa behind the joint
    r_lr = s * (52 + 8 * thigh * (1 + (v - 45 * s) / (120 * s)).clip(1, 2) + 4 * calf) * rng.uniform(0.95, 1.05)
    r_ap = s * (48 + 12 * thigh * (1 + (v - 45 * s) / (150 * s)).clip(1, 2) + 8 * calf - 4 * fossa) * rng.uniform(0.95, 1.05)
    c_ap = s * (2.0 - 6 * thigh - 10 * calf + 3 * fossa)
    r = np.sqrt((u / r_lr) ** 2 + ((w - c_ap) / r_ap) ** 2)
    return r <= 1.0, r, r_lr, r_ap, c_ap


def make_knee(rng: np.random.Generator, slices: int = 36, matrix: int = 256, fov_mm: float = 150.0,
              slice_mm: float = 3.0, field_t: float = 3.0, oversample: int = 1) -> PhantomCase:
    """One knee case on a (slices, matrix * oversample, matrix * oversample) sagittal grid."""
    os_ = int(oversample)
    fr = Frame.square(slices, matrix * os_, fov_mm, slice_mm)
    vox, shape = fr.voxel_mm, fr.shape
    s = rng.uniform(0.88, 1.12)                       # overall size
    flex = rng.uniform(0.0, 30.0)                     # flexion, degrees
    j = lambda sd=1.0: 1.0 + sd * rng.uniform(-0.08, 0.08)   # per-structure shape jitter
    # the leg's position in the field of view: shifted and tilted in the sagittal plane
    shift = (rng.uniform(-8, 8), rng.uniform(-10, 10), rng.uniform(-8, 8))
    tilt = rng.uniform(-6.0, 6.0)
    coords = fr.rotated(tilt, (1, 2), (0.0, 0.0, 0.0))
    u, v, w = (c - d for c, d in zip(coords, shift))  # LR, SI, AP (mm) in the leg's frame
    lab = np.zeros(shape, np.int16)
    limb, rnorm, r_lr, r_ap, c_ap = _limb(u, v, w, s, rng)
    # depth below the skin (mm), along the normalised radius (the cross-section is smooth)
    depth = (1.0 - rnorm) * np.minimum(r_lr, r_ap)
    skin_t, fat_t = rng.uniform(1.5, 2.5), rng.uniform(4.0, 14.0)
    lab[limb] = MUSCLE
    lab[limb & (depth <= skin_t + fat_t + 1.0)] = FASCIA            # deep fascia over the muscles
    lab[limb & (depth <= skin_t + fat_t)] = FAT
    lab[limb & (depth <= skin_t)] = SKIN
    groups = _muscle_groups(rng, u, w - c_ap, v, s, shape, lab == MUSCLE)
    lab[groups == -1] = FASCIA                                    # fascia between the groups
    # femur, patella, quadriceps tendon: rotated about the LR axis through the joint
    fu, fv, fw = (c - d for c, d in zip(fr.rotated(flex + tilt, (1, 2), (0.0, 0.0, 0.0)), shift))
    fem = ((cylinder((fu, fv, fw), 1, (0.0, -2 * s), (14 * s * j(), 13 * s * j())) & (fv > 30 * s))
           | ellipsoid((fu, fv, fw), (0.0, 40 * s, -3 * s), (31 * s * j(), 28 * s, 22 * s * j()))
           | ellipsoid((fu, fv, fw), (-20 * s, 18 * s, -6 * s), (16 * s * j(), 22 * s * j(), 27 * s * j()))
           | ellipsoid((fu, fv, fw), (20 * s, 18 * s, -6 * s), (16 * s * j(), 22 * s * j(), 27 * s * j())))
    pat = ellipsoid((fu, fv, fw), (0.0, 32 * s, 30 * s), (21 * s * j(), 20 * s * j(), 8.5 * s * j()))
    quad = segment_tube((fu, fv, fw), (0.0, 50 * s, 30 * s), (0.0, 95 * s, 24 * s), 6.0 * s)
    pouch = ellipsoid((fu, fv, fw), (0.0, 58 * s, 20 * s), (24 * s, 16 * s, 3.0))
    # tibia and tendons in the leg frame
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
    inner = limb & (depth > skin_t + fat_t + 1.0)
    cart = (out_dist > 0) & (out_dist <= thick) & joint_zone & inner & ~quad
    fluid = ((out_dist > thick) & (out_dist <= thick + 1.0) & joint_zone & (np.abs(v) < 25 * s)) | pouch
    # Hoffa's fat pad: behind the patellar tendon, in front of the condyles and the plateau
    hoffa = ellipsoid((u, v, w), (0.0, 4 * s, 20 * s), (24 * s * j(), 13 * s * j(), 11 * s * j())) & inner
    menisci = np.zeros(shape, bool)
    for side in (-1.0, 1.0):
        r = np.sqrt((u - side * 20 * s) ** 2 + (w + 4 * s) ** 2)
        rin, rout = 10 * s, 19 * s * j()
        height = np.clip((r - rin) / (rout - rin), 0, 1) * 6.0
        menisci |= (r >= rin) & (r <= rout) & (v >= -3 * s) & (v <= -3 * s + height) & ~((w + 4 * s) > 6 * s)
    menisci &= ~fem & inner
    vessels = np.zeros(shape, bool)
    for du, rad in ((-4.0, 3.5 * s), (5.0, 4.0 * s)):            # popliteal artery and vein
        vessels |= cylinder((u, v, w), 1, (du * s, -34 * s), (rad, rad * 1.2))
    lab[hoffa & ~bones & (out_dist > thick)] = FAT_PAD
    lab[vessels & inner & ~bones] = VESSEL
    for mask, label in ((fluid & inner, FLUID), (quad | pat_lig | acl | pcl, TENDON), (cart, CARTILAGE),
                        (menisci, MENISCUS)):
        lab[mask & inner] = label
    cortex_mm = rng.uniform(1.5, 2.5)
    bdepth = distance_inside_mm(bones, vox)
    lab[bones] = MARROW
    lab[bones & (bdepth <= cortex_mm)] = CORTEX
    drawn = {"scale": s, "flexion_deg": flex, "tilt_deg": tilt, "shift_mm": list(shift), "skin_mm": skin_t, "fat_mm": fat_t,
             "cortex_mm": cortex_mm, "lesions": []}
    _cartilage_lesions(rng, lab, fr, drawn)
    tissues = draw_tissues(KNEE, rng, field_t)
    frac = one_hot_fractions(lab, 0.3 if os_ == 1 else 0.0)
    bvtv = _trabecular(rng, frac, shape, vox, drawn)
    overrides = {MUSCLE: _group_offsets(rng, groups, tissues.values[MUSCLE])}
    maps = maps_from_fractions(frac, tissues, rng, overrides, voxel_mm=vox, oversample=os_)
    eps, sig = dielectric_maps(frac, tissues)
    body = lab > 0
    maps["B1"], drawn["transmit"] = transmit_field(eps, sig, body, vox, 1, field_t, KNEE_COIL, rng, plane_step_mm=10.0)
    air = ~body
    maps["B0"] = fields.b0_oversampled(rng, air, lab == CORTEX, vox, field_t, os_, smooth_hz=150.0, b0_axis=1)
    geom = fr.geometry((0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0))   # x = AP, y = SI, z = LR (sagittal)
    drawn["tissues"] = tissues.values
    drawn["trabecular_bone_fraction"] = bvtv
    return PhantomCase("knee", lab, tissues.names, maps, fields.receive_bias(rng, shape).astype(np.float32),
                       geom, field_t, drawn, oversample=os_)


# Sector boundaries (degrees, 0 = anterior, +90 = the +LR side) of the muscle groups.
THIGH_SECTORS = (-150.0, -60.0, 60.0, 150.0)      # quadriceps | medial (adductors) | hamstrings (two) | lateral
CALF_SECTORS = (-110.0, -40.0, 40.0, 110.0)       # tibialis anterior | peronei | soleus/gastrocnemius


def _muscle_groups(rng, u, w, v, s, shape, muscle):
    """Group index (0, 1, ...) of every muscle voxel by its angle around the leg axis; -1 on
    the fascia (within about 0.8 mm of a boundary). The calf also separates the superficial
    gastrocnemius from the deep soleus. Computed on the muscle voxels only."""
    idx = np.flatnonzero(muscle)
    pick = lambda a: np.broadcast_to(a, shape).reshape(-1)[idx]
    uu, ww, vv = pick(u), pick(w), pick(v)
    theta = np.degrees(np.arctan2(uu, ww))
    rad = np.sqrt(uu ** 2 + ww ** 2)
    thigh = vv > 0
    g = np.zeros(idx.size, np.int16)
    fascia = np.zeros(idx.size, bool)
    for sectors, where, base in ((THIGH_SECTORS, thigh, 0), (CALF_SECTORS, ~thigh, 10)):
        b = np.sort(np.array(sectors) + rng.uniform(-10, 10, len(sectors)))
        g = np.where(where, base + np.searchsorted(b, theta).astype(np.int16), g)
        for bd in b:
            diff = np.radians(np.abs((theta - bd + 180.0) % 360.0 - 180.0))
            fascia |= where & (diff * rad < 0.8)
    post = (~thigh) & (np.abs(theta) > 110)            # gastrocnemius over the soleus
    g = np.where(post & (rad < 38 * s), 20, g)
    fascia |= post & (np.abs(rad - 38 * s) < 0.8)
    out = np.full(int(np.prod(shape)), -2, np.int16)   # -2: not muscle
    out[idx] = np.where(fascia, -1, g)
    return out.reshape(shape)


def _group_offsets(rng, groups, base) -> dict[str, np.ndarray]:
    """Per-group T1 and T2 of muscle: the case's values times a small factor per group (+-4 %)."""
    out = {}
    for key in ("T1", "T2"):
        arr = np.full(groups.shape, base[key], np.float32)
        for g in np.unique(groups):
            if g >= 0:
                arr[groups == g] *= 1.0 + rng.uniform(-0.04, 0.04)
        out[key] = arr
    return out


def _trabecular(rng, frac, shape, vox, drawn) -> float:
    """Sub-voxel trabecular bone in the marrow: a fraction of 10-35 % (BV/TV) varying over
    about a millimetre, moved from marrow to the (ultrashort-T2*) bone compartment."""
    if MARROW not in frac:
        return 0.0
    mean = rng.uniform(0.12, 0.25)
    nodes = tuple(max(2, int(n * d / 1.5)) for n, d in zip(shape, vox))
    bv = np.clip(mean + 0.08 * fields.smooth_field(rng, shape, nodes), 0.10, 0.35).astype(np.float32)
    moved = frac[MARROW] * bv
    frac[MARROW] = frac[MARROW] - moved
    frac[CORTEX] = (frac[CORTEX] if CORTEX in frac else np.zeros(shape, np.float32)) + moved
    return float(mean)


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
