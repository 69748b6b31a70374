"""Brain phantom from the MNI152 2009a (symmetric, 1 mm) template shipped in the nilearn
wheel: grey- and white-matter probability maps, CSF as brain mask minus GM and WM.

Per case: a random affine plus smooth elastic warp (cases differ in shape), an axial slab
of K 1-mm slices, putamen and thalamus from ellipsoids at their MNI positions, MS-like
white-matter lesions and (sometimes) a tumour-like mass with values outside the normal
ranges, tissue values drawn per case (phantoms.tissues.BRAIN), partial volume from the
probability maps. Sinus air drives the susceptibility part of B0.
"""
from __future__ import annotations

import importlib.util
import os
from functools import lru_cache

import numpy as np
from scipy import ndimage

from ..errors import Q2MRIError
from ..io.images import Geometry
from . import fields
from .case import PhantomCase, labels_from_fractions, maps_from_fractions
from .tissues import BRAIN, draw_tissues

GRID_YX = (224, 192)  # (AP, LR) voxels at 1 mm
MNI_ORIGIN_VOX = np.array([72.0, 134.0, 98.0])  # (z, y, x) voxel of MNI (0, 0, 0) in the 2009a grid
# Deep grey matter as ellipsoids: (centre x, y, z mm MNI), (radii x, y, z mm)
DEEP_GM = {4: [((-25, 2, 0), (6, 13, 8)), ((25, 2, 0), (6, 13, 8))],
           5: [((-11, -18, 7), (7, 12, 8)), ((11, -18, 7), (7, 12, 8))]}
SINUSES = [((0, 58, -8), (14, 8, 10)), ((0, 12, -28), (11, 12, 9))]


def _nilearn_data_dir() -> str:
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise Q2MRIError("the brain phantom needs the MNI152 template shipped in the nilearn package; "
                         "install it (pip install nilearn)")
    return os.path.join(spec.submodule_search_locations[0], "datasets", "data")


@lru_cache(maxsize=1)
def mni_tissue_probabilities() -> dict[str, np.ndarray]:
    """GM, WM, CSF probabilities and sinus air on the MNI grid, as (z, y, x) float32."""
    import nibabel as nib
    d = _nilearn_data_dir()
    load = lambda n: np.asarray(nib.load(os.path.join(d, f"mni_icbm152_{n}_tal_nlin_sym_09a_converted.nii.gz"))
                                .dataobj, dtype=np.float32).transpose(2, 1, 0) / 255.0
    t1, gm, wm = load("t1"), load("gm"), load("wm")
    brain = ndimage.binary_fill_holes(ndimage.binary_closing(t1 > 0.05, iterations=2))
    csf = np.clip(brain.astype(np.float32) - gm - wm, 0.0, 1.0)
    zz, yy, xx = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in t1.shape], indexing="ij")
    mm = (xx - MNI_ORIGIN_VOX[2], yy - MNI_ORIGIN_VOX[1], zz - MNI_ORIGIN_VOX[0])

    def ellipsoid(c, r):
        return ((mm[0] - c[0]) / r[0]) ** 2 + ((mm[1] - c[1]) / r[1]) ** 2 + ((mm[2] - c[2]) / r[2]) ** 2 <= 1.0

    out = {"gm": gm, "wm": wm, "csf": csf}
    for lab, ells in DEEP_GM.items():
        m = np.zeros(t1.shape, bool)
        for c, r in ells:
            m |= ellipsoid(c, r)
        out[f"deep{lab}"] = ndimage.gaussian_filter(m.astype(np.float32), 1.0)
    air = np.zeros(t1.shape, bool)
    for c, r in SINUSES:
        air |= ellipsoid(c, r)
    out["air"] = (air & ~brain).astype(np.float32)
    return out


def make_brain(rng: np.random.Generator, slices: int = 24, field_t: float = 3.0, lesions: bool = True) -> PhantomCase:
    """One brain case: an axial slab of ``slices`` 1-mm slices."""
    src = mni_tissue_probabilities()
    ny, nx = GRID_YX
    shape = (slices, ny, nx)
    coords = fields.random_warp(rng, shape, (1.0, 1.0, 1.0), rot_deg=7.0, scale=0.08, shift_mm=4.0, elastic_mm=3.0)
    z0 = MNI_ORIGIN_VOX[0] + rng.uniform(-15, 25) - (slices - 1) / 2.0   # slab centre between MNI z -15 and +25 mm
    coords[0] += z0
    coords[1] += (src["gm"].shape[1] - ny) / 2.0
    coords[2] += (src["gm"].shape[2] - nx) / 2.0
    warp = lambda a, order=1: ndimage.map_coordinates(a, coords, order=order, mode="constant", cval=0.0)
    gm, wm, csf = warp(src["gm"]), warp(src["wm"]), warp(src["csf"])
    fr = {1: csf, 2: gm, 3: wm}
    parenchyma = gm + wm
    for lab in (4, 5):
        d = np.clip(warp(src[f"deep{lab}"]), 0, 1)
        fr[lab] = d * parenchyma
        fr[2] = fr[2] * (1 - d)
        fr[3] = fr[3] * (1 - d)
    drawn: dict = {"lesions": []}
    if lesions:
        _add_lesions(rng, fr, drawn)
    tissues = draw_tissues(BRAIN, rng)
    maps = maps_from_fractions(fr, tissues, rng)
    labels = labels_from_fractions(fr)
    air = warp(src["air"]) > 0.5
    geom = Geometry((nx, ny, slices), (1.0, 1.0, 1.0), (-(nx - 1) / 2.0, -(ny - 1) / 2.0, float(z0 - MNI_ORIGIN_VOX[0])),
                    (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0))
    maps["B1"] = fields.transmit_b1(rng, shape).astype(np.float32)
    maps["B0"] = fields.b0_field(rng, shape, (1.0, 1.0, 1.0), field_t, air=air, smooth_hz=150.0)
    drawn["tissues"] = tissues.values
    return PhantomCase("brain", labels, tissues.names, maps, fields.receive_bias(rng, shape).astype(np.float32),
                       geom, field_t, drawn)


def _add_lesions(rng: np.random.Generator, fr: dict[int, np.ndarray], drawn: dict) -> None:
    shape = fr[3].shape
    zz, yy, xx = np.ogrid[0:shape[0], 0:shape[1], 0:shape[2]]

    def blob(centre, radius):
        d = np.sqrt((zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2)
        return np.clip(radius + 0.5 - d, 0.0, 1.0)  # one-voxel soft edge: partial volume

    def place(label, radius, where):
        cand = np.argwhere(where)
        if len(cand) == 0:
            return
        c = cand[rng.integers(len(cand))]
        f = blob(c, radius) * np.clip(fr[2] + fr[3], 0.0, 1.0)  # lesions replace parenchyma only
        for k in fr:
            fr[k] = fr[k] * (1 - f)
        fr[label] = fr.get(label, np.zeros(shape, np.float32)) + f
        drawn["lesions"].append({"label": label, "centre_vox": [int(v) for v in c], "radius_vox": float(radius)})

    for _ in range(int(rng.integers(1, 6))):
        place(6, rng.uniform(1.5, 4.5), fr[3] > 0.9)
    if rng.uniform() < 0.5:
        place(7, rng.uniform(5.0, 11.0), (fr[2] + fr[3]) > 0.9)
    fr.setdefault(6, np.zeros(shape, np.float32))
    fr.setdefault(7, np.zeros(shape, np.float32))
