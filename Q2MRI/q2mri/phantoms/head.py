"""The whole head around the MNI152 2009a brain: meninges, skull, scalp, face, orbits, neck.

The template in the nilearn wheel is skull-stripped, but every real T1-weighted head scan
shows scalp, skull and marrow (and the orbits and neck where the slab reaches them). They
are built here once, on the template grid (padded below for the neck), in MNI millimetres:

- intracranial space: the brain mask closed over the sulci (6 mm) and grown by 1.5 mm;
  what it adds to the brain is extra-axial CSF;
- the calvaria as layers of the distance d from the intracranial surface, thresholded per
  case: inner table (cortical bone), diploe (fatty red/yellow marrow), outer table, then
  the scalp: temporalis muscle over the temporal bone, subcutaneous fat, and skin (the
  outermost millimetres of the head, from the depth o below its surface);
- the face below the frontal lobes: muscle, orbits with fat and the eyes, the nasal cavity
  and maxillary sinuses (air) in thin bony walls; the frontal and sphenoid sinuses;
- the neck below the skull base: vertebral body (marrow in a cortical rim), spinal canal
  with CSF and the cord continuing the brainstem through the foramen magnum, the airway,
  muscle, then subcutaneous fat and skin.

Positions and sizes are typical adult values in MNI space (approximate; a phantom, not an
atlas). Per case the whole model is warped with the brain, and the layer thicknesses are
drawn (head_labels).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage

# Padding of the template grid (voxels = mm): (z below, z above), (y back, y front), (x each side).
PAD = ((48, 0), (0, 16), (6, 6))
MNI_ORIGIN_VOX = np.array([72.0, 134.0, 98.0])   # (z, y, x) voxel of MNI (0, 0, 0) in the unpadded grid
ORIGIN_VOX = MNI_ORIGIN_VOX + np.array([PAD[0][0], PAD[1][0], PAD[2][0]], float)

SINUSES = [((0, 58, -8), (14, 8, 10)), ((0, 12, -28), (11, 12, 9)),          # frontal, sphenoid
           ((-27, 38, -52), (12, 15, 14)), ((27, 38, -52), (12, 15, 14))]    # maxillary
EYES = [((-33, 55, -36), (12, 12, 12)), ((33, 55, -36), (12, 12, 12))]
ORBITS = [((-33, 50, -35), (18, 20, 16)), ((33, 50, -35), (18, 20, 16))]
CANAL_YX = (-45.0, 0.0)          # spinal canal centre (y, x) mm, below the foramen magnum at z -55 mm
VERTEBRA_YX = (-22.0, 0.0)
AIRWAY_YX = (4.0, 0.0)
TEMPLATE_OUTLINE_MM = 14.0       # head surface this far from the intracranial surface (calvaria)

# Labels written here (phantoms.tissues.BRAIN): bone and marrow, muscle, eye, fat, cord.
SKIN, SCALP_FAT, BONE, DIPLOE, MUSCLE, EYE, FAT, VERT_MARROW, CORD = 8, 9, 10, 11, 12, 13, 14, 15, 16


def _mm(shape):
    z, y, x = (np.arange(n, dtype=np.float32) - o for n, o in zip(shape, ORIGIN_VOX))
    return z[:, None, None], y[None, :, None], x[None, None, :]


def _ellipsoid(mm, c, r) -> np.ndarray:
    z, y, x = mm
    return ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2 <= 1.0


def _disc(mm, cyx, r) -> np.ndarray:
    _, y, x = mm
    r = r if isinstance(r, tuple) else (r, r)
    return ((y - cyx[0]) / r[0]) ** 2 + ((x - cyx[1]) / r[1]) ** 2 <= 1.0


@lru_cache(maxsize=1)
def head_template() -> dict[str, np.ndarray]:
    """Fields on the padded template grid: d (mm from the intracranial surface, 0 inside),
    o (mm below the head surface, 0 outside), extra (labels of the face and neck),
    air (sinuses, nasal cavity, airway), temporal (0-1 weight of the temporalis), and the
    intracranial and brain masks."""
    from .brain import template_images
    t1 = template_images()["t1"]
    brain = ndimage.binary_fill_holes(ndimage.binary_closing(t1 > 0.05, iterations=2))
    # Closing over the sulci by 6 mm (distance-transform dilation then erosion), grown 1.5 mm.
    grown = ndimage.distance_transform_edt(~brain) <= 6.0
    closed = ndimage.distance_transform_edt(grown) > 6.0
    ic = ndimage.binary_fill_holes((ndimage.distance_transform_edt(~(closed | brain)) <= 1.5))
    mm = _mm(ic.shape)
    z, y, x = mm
    d = ndimage.distance_transform_edt(~ic).astype(np.float32)
    face = _ellipsoid(mm, (0, 40, -48), (60, 58, 36)) & (z < -18)
    neck = (z < -40) & _disc(mm, (-22.0, 0.0), (58.0, 56.0))
    head = (d <= TEMPLATE_OUTLINE_MM) | face | neck
    head = ndimage.binary_closing(head, iterations=3) | head
    o = ndimage.distance_transform_edt(head).astype(np.float32)
    extra = np.zeros(ic.shape, np.int8)
    deep = (o > 6.0) & ~ic
    extra[face & deep] = MUSCLE
    for c, r in ORBITS:
        extra[_ellipsoid(mm, c, r) & ~ic] = FAT
    for c, r in EYES:
        extra[_ellipsoid(mm, c, r) & ~ic] = EYE
    below = z < -55
    extra[neck & (o > 8.0) & below] = MUSCLE
    vert = neck & below & _disc(mm, VERTEBRA_YX, 11.0)
    extra[vert] = BONE
    extra[neck & below & _disc(mm, VERTEBRA_YX, 9.5)] = VERT_MARROW
    ring = neck & below & _disc(mm, CANAL_YX, 11.0)
    extra[ring] = BONE
    canal = (z < -50) & _disc(mm, CANAL_YX, 8.5) & ~ic
    extra[canal] = 1                                   # CSF around the cord
    extra[canal & _disc(mm, CANAL_YX, 5.5)] = CORD
    air = np.zeros(ic.shape, bool)
    for c, r in SINUSES:
        air |= _ellipsoid(mm, c, r)
    air |= face & (np.abs(x) < 9) & (y > 25) & (z < -25) & (z > -75)           # nasal cavity
    air |= neck & below & _disc(mm, AIRWAY_YX, (7.0, 9.0))
    air &= ~ic
    walls = (ndimage.distance_transform_edt(~air) <= 2.0) & ~air & face & ~ic
    extra[walls & (extra != EYE)] = BONE
    extra[air] = 0
    # temporalis over the temporal squama (lateral, y -33..43, z -25..35 mm); inside the
    # intracranial space the weight does nothing (only scalp layers use it)
    temporal = np.broadcast_to(np.exp(-((y - 5.0) / 38.0) ** 2 - ((z - 5.0) / 30.0) ** 2), ic.shape).astype(np.float32)
    # no skull where the cord passes the foramen magnum
    foramen = (z < -50) & _disc(mm, CANAL_YX, 11.5)
    d = np.where(foramen & ~ic, 100.0, d).astype(np.float32)
    return {"d": d, "o": o, "extra": extra, "air": air.astype(np.float32), "temporal": temporal,
            "intracranial": ic.astype(np.float32), "brain": brain.astype(np.float32)}


def head_labels(rng: np.random.Generator, d: np.ndarray, o: np.ndarray, extra: np.ndarray, temporal: np.ndarray,
                air: np.ndarray) -> tuple[np.ndarray, dict]:
    """Extracranial labels of one case from its warped template fields (layer thicknesses drawn)."""
    t_in, t_dip, t_out = rng.uniform(1.2, 2.2), rng.uniform(1.5, 4.5), rng.uniform(1.2, 2.0)
    skin_t = rng.uniform(1.5, 2.5)
    muscle_t = rng.uniform(4.0, 10.0)
    skull = t_in + t_dip + t_out
    lab = np.zeros(d.shape, np.int8)
    outside_ic = d > 0
    lab[outside_ic & (o > 0)] = SCALP_FAT
    lab[outside_ic & (o > 0) & (temporal > 0.3) & (d > skull) & (d <= skull + muscle_t * temporal)] = MUSCLE
    ex = extra > 0
    lab[ex & outside_ic] = extra[ex & outside_ic]
    bone = outside_ic & (d <= skull)
    lab[bone] = BONE
    lab[bone & (d > t_in) & (d <= t_in + t_dip)] = DIPLOE
    lab[outside_ic & (o > 0) & (o <= skin_t)] = SKIN
    lab[(air > 0.5) | (o <= 0)] = 0
    drawn = {"skull_inner_mm": t_in, "diploe_mm": t_dip, "skull_outer_mm": t_out, "skin_mm": skin_t,
             "temporalis_mm": muscle_t}
    return lab, drawn
