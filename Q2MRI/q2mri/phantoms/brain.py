"""Head phantom from the MNI152 2009a (symmetric, 1 mm) template shipped in the nilearn wheel:
grey- and white-matter probability maps, CSF as brain mask minus GM and WM, and the whole
head around them (phantoms.head: meninges, skull and diploe, scalp with temporalis and
subcutaneous fat, skin, face and orbits, neck).

Per case: a random affine plus smooth elastic warp (cases differ in shape), an axial slab
of K 1-mm slices (mostly through the brain; sometimes through the skull base, orbits and
neck), putamen and thalamus from ellipsoids at their MNI positions, MS-like white-matter
lesions and (sometimes) a tumour-like mass, tissue values drawn per case at the field
strength (phantoms.tissues.BRAIN), partial volume from the probability maps, layer
thicknesses of skull and scalp drawn per case. The maps are made on a grid ``oversample``
times finer in-plane than the acquisition matrix; phantoms.imaging forms the images in
k-space. B1+ comes from the head's own electromagnetics (phantoms.transmit); air in the
sinuses and outside the head and cortical bone drive the susceptibility part of B0.
"""
from __future__ import annotations

import importlib.util
import os
from functools import lru_cache

import numpy as np
import torch

from ..errors import Q2MRIError
from ..io.images import Geometry
from . import fields, head
from .case import PhantomCase, dielectric_maps, labels_from_fractions, maps_from_fractions
from .tissues import BRAIN, draw_tissues
from .transmit import BODY_COIL, HEAD_COIL, transmit_field

GRID_YX = (240, 200)  # (AP, LR) acquisition matrix at 1 mm
# Deep grey matter as ellipsoids: (centre x, y, z mm MNI), (radii x, y, z mm)
DEEP_GM = {4: [((-25, 2, 0), (6, 13, 8)), ((25, 2, 0), (6, 13, 8))],
           5: [((-11, -18, 7), (7, 12, 8)), ((11, -18, 7), (7, 12, 8))]}
GRID_CENTRE_MM = (-12.0, 0.0)   # (y, x) MNI mm at the centre of the in-plane grid
BRAIN_LABELS = (1, 2, 3, 4, 5, 6, 7)


def _nilearn_data_dir() -> str:
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise Q2MRIError("the brain phantom needs the MNI152 template shipped in the nilearn package; "
                         "install it (pip install nilearn)")
    return os.path.join(spec.submodule_search_locations[0], "datasets", "data")


@lru_cache(maxsize=1)
def template_images() -> dict[str, np.ndarray]:
    """T1, GM and WM of the template as (z, y, x) float32 in 0-1, padded as phantoms.head.PAD."""
    import nibabel as nib
    d = _nilearn_data_dir()
    load = lambda n: np.pad(np.asarray(nib.load(os.path.join(d, f"mni_icbm152_{n}_tal_nlin_sym_09a_converted.nii.gz"))
                                       .dataobj, dtype=np.float32).transpose(2, 1, 0) / 255.0, head.PAD)
    return {"t1": load("t1"), "gm": load("gm"), "wm": load("wm")}


@lru_cache(maxsize=1)
def template_stack() -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Every field a case warps, on the padded template grid: continuous fields as one
    (1, C, Z, Y, X) tensor (trilinear), and the face/neck labels (nearest)."""
    img = template_images()
    hd = head.head_template()
    gm, wm = img["gm"], img["wm"]
    csf = np.clip(hd["intracranial"] - gm - wm, 0.0, 1.0)     # ventricles, sulci and extra-axial CSF
    mm = head._mm(gm.shape)
    names = ["gm", "wm", "csf"]
    chans = [gm, wm, csf]
    for lab, ells in DEEP_GM.items():
        m = np.zeros(gm.shape, bool)
        for c, r in ells:
            m |= head._ellipsoid(mm, c, r)
        from scipy import ndimage
        names.append(f"deep{lab}")
        chans.append(ndimage.gaussian_filter(m.astype(np.float32), 1.0))
    for k in ("d", "o", "temporal", "air"):
        names.append(k)
        chans.append(hd[k])
    cont = torch.from_numpy(np.stack(chans)[None].astype(np.float32))
    lab = torch.from_numpy(hd["extra"].astype(np.float32)[None, None])
    return cont, lab, names


# Every continuous field is sampled on the acquisition grid and interpolated to the fine grid:
# the probability maps are smooth on the template's 1 mm scale, and d and o are distances,
# which interpolate exactly along a straight surface (so the thin skull and skin layers,
# thresholds of d and o, keep sub-millimetre edges). Only the face/neck labels are sampled
# on the fine grid.
FINE_FIELDS: tuple[str, ...] = ()


def _grid(coords_vox: np.ndarray, z0: int, size) -> torch.Tensor:
    # grid_sample wants (x, y, z) normalised to -1..1 over the (cropped) input, align_corners=True
    g = [2.0 * (coords_vox[i] - (z0 if i == 0 else 0)) / max(size[i] - 1, 1) - 1.0 for i in range(3)]
    return torch.from_numpy(np.stack([g[2], g[1], g[0]], -1).astype(np.float32))[None]


def _sample(coarse: np.ndarray, fine: np.ndarray, os_: int, z0: int, z1: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The template fields at template-voxel coordinates (3, ...) of the acquisition grid
    (coarse) and of the fine grid, cropped to template slices z0:z1; all returned on the fine grid."""
    cont, lab, names = template_stack()
    sub, sublab = cont[:, :, z0:z1], lab[:, :, z0:z1]
    size = sub.shape[2:]
    fi = [names.index(n) for n in FINE_FIELDS]
    ci = [i for i in range(len(names)) if i not in fi]
    gf, gc = _grid(fine, z0, size), _grid(coarse, z0, size)
    sample = lambda t, g, mode: torch.nn.functional.grid_sample(t, g, mode=mode, padding_mode="zeros", align_corners=True)[0]
    lab_out = sample(sublab, gf, "nearest")[0]
    out = {names[i]: v.numpy() for i, v in zip(fi, sample(sub[:, fi], gf, "bilinear"))} if fi else {}
    out_c = sample(sub[:, ci], gc, "bilinear").numpy()
    up = fields.upsample_inplane(out_c.reshape(-1, *out_c.shape[2:]), os_).reshape(len(ci), *lab_out.shape) \
        if os_ > 1 else out_c
    out.update({names[i]: up[k] for k, i in enumerate(ci)})
    return out, lab_out.numpy().astype(np.int8)


def _coords(rng: np.random.Generator, slices: int, oversample: int, z_centre_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Template voxel coordinates of the acquisition grid (3, S, Y, X) and of the fine grid
    (3, S, Y*os, X*os): the warp is drawn on the acquisition grid and upsampled in-plane
    (pixel centres: fine j -> coarse (j + 0.5)/os - 0.5)."""
    ny, nx = GRID_YX
    shape = (slices, ny, nx)
    c = fields.random_warp(rng, shape, (1.0, 1.0, 1.0), rot_deg=7.0, scale=0.08, shift_mm=4.0, elastic_mm=3.0)
    c[0] += head.ORIGIN_VOX[0] + z_centre_mm - (slices - 1) / 2.0
    c[1] += head.ORIGIN_VOX[1] + GRID_CENTRE_MM[0] - (ny - 1) / 2.0
    c[2] += head.ORIGIN_VOX[2] + GRID_CENTRE_MM[1] - (nx - 1) / 2.0
    if oversample == 1:
        return c, c
    return c, np.stack([fields.upsample_inplane(ci, oversample) for ci in c])


def make_brain(rng: np.random.Generator, slices: int = 24, field_t: float = 3.0, lesions: bool = True,
               oversample: int = 2) -> PhantomCase:
    """One head case: an axial slab of ``slices`` 1-mm slices, maps on a grid oversample x finer in-plane."""
    ny, nx = GRID_YX
    os_ = int(oversample)
    # slab centre (MNI z, mm): mostly through the cerebrum, sometimes the skull base, orbits and neck
    z_c = rng.uniform(-30, 45) if rng.uniform() < 0.85 else rng.uniform(-80, -30)
    coarse, fine = _coords(rng, slices, os_, z_c)
    z0 = int(max(0, np.floor(fine[0].min()) - 1))
    z1 = int(min(template_images()["t1"].shape[0], np.ceil(fine[0].max()) + 2))
    src, extra = _sample(coarse, fine, os_, z0, z1)
    shape = src["gm"].shape
    vox = (1.0, 1.0 / os_, 1.0 / os_)
    hl, drawn_head = head.head_labels(rng, src["d"], src["o"], extra, src["temporal"], src["air"])
    fr = {1: src["csf"], 2: src["gm"], 3: src["wm"]}
    parenchyma = src["gm"] + src["wm"]
    for lab in (4, 5):
        d = np.clip(src[f"deep{lab}"], 0, 1)
        fr[lab] = d * parenchyma
        fr[2] = fr[2] * (1 - d)
        fr[3] = fr[3] * (1 - d)
    drawn: dict = {"lesions": [], "slab_centre_mni_mm": float(z_c), "head": drawn_head}
    if lesions:
        _add_lesions(rng, fr, drawn, vox)
    intracranial = np.clip(sum(fr.values()), 0.0, 1.0)
    outside = 1.0 - intracranial
    for lab in range(8, 17):
        fr[lab] = ((hl == lab) * outside).astype(np.float32)
    fr[1] = fr[1] + (hl == 1) * outside                             # CSF of the spinal canal
    tissues = draw_tissues(BRAIN, rng, field_t)
    maps = maps_from_fractions(fr, tissues, rng, voxel_mm=vox, oversample=os_)
    labels = labels_from_fractions(fr)
    eps, sig = dielectric_maps(fr, tissues)
    body = labels > 0
    coil = HEAD_COIL if field_t >= 5.0 else BODY_COIL
    maps["B1"], drawn["transmit"] = transmit_field(eps, sig, body, vox, 0, field_t, coil, rng, plane_step_mm=11.0)
    air = (src["air"] > 0.5) | (src["o"] <= 0)
    maps["B0"] = fields.b0_oversampled(rng, air, labels == 10, vox, field_t, os_, smooth_hz=150.0, b0_axis=0)
    geom = Geometry((nx * os_, ny * os_, slices), (1.0 / os_, 1.0 / os_, 1.0),
                    (GRID_CENTRE_MM[1] - (nx - 1) / 2.0 - (os_ - 1) / (2.0 * os_),
                     GRID_CENTRE_MM[0] - (ny - 1) / 2.0 - (os_ - 1) / (2.0 * os_), float(z_c - (slices - 1) / 2.0)),
                    (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0))
    drawn["tissues"] = tissues.values
    return PhantomCase("brain", labels, tissues.names, maps, fields.receive_bias(rng, shape).astype(np.float32),
                       geom, field_t, drawn, oversample=os_)


def _add_lesions(rng: np.random.Generator, fr: dict[int, np.ndarray], drawn: dict, vox) -> None:
    shape = fr[3].shape
    zz, yy, xx = (np.arange(n, dtype=np.float32).reshape([-1 if i == j else 1 for j in range(3)]) * v
                  for i, (n, v) in enumerate(zip(shape, vox)))

    def place(label, radius_mm, where):
        cand = np.argwhere(where)
        if len(cand) == 0:
            return
        c = cand[rng.integers(len(cand))]
        cm = [float(i) * v for i, v in zip(c, vox)]
        d = np.sqrt((zz - cm[0]) ** 2 + (yy - cm[1]) ** 2 + (xx - cm[2]) ** 2)
        f = np.clip(radius_mm + 0.5 - d, 0.0, 1.0) * np.clip(fr[2] + fr[3], 0.0, 1.0)  # lesions replace parenchyma only
        for k in fr:
            fr[k] = fr[k] * (1 - f)
        fr[label] = fr.get(label, np.zeros(shape, np.float32)) + f
        drawn["lesions"].append({"label": label, "centre_vox": [int(v) for v in c], "radius_mm": float(radius_mm)})

    for _ in range(int(rng.integers(1, 6))):
        place(6, rng.uniform(1.5, 4.5), fr[3] > 0.9)
    if rng.uniform() < 0.5:
        place(7, rng.uniform(5.0, 11.0), (fr[2] + fr[3]) > 0.9)
    fr.setdefault(6, np.zeros(shape, np.float32))
    fr.setdefault(7, np.zeros(shape, np.float32))
