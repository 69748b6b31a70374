"""A phantom case: labels, tissue fractions turned into maps, and the system fields.

Partial volume: each voxel holds fractions f_k of tissues k. Its maps are a single
compartment with PD = sum f_k PD_k and proton-weighted rates R = sum f_k PD_k R_k / PD
(R1, R2, R2*), PDFF = sum f_k PD_k PDFF_k / PD. Mixing parameters (not signals) keeps
every image exactly explained by its maps, which is what training and the
physics-consistency loss need; the price is that partial-volume voxels are
single-compartment approximations.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..io.images import Geometry
from .fields import smooth_field, upsample_inplane
from .tissues import CaseTissues

# Within-tissue heterogeneity (relative SD) of T1, T2, T2* and PD: a field smooth over a few
# centimetres (regional differences) plus a finer one correlated over about TEXTURE_MM.
VARIATION = 0.02
TEXTURE = 0.02
TEXTURE_MM = 4.0


@dataclass
class PhantomCase:
    phantom: str
    labels: np.ndarray                     # (z, y, x) int16, 0 = background/air
    label_names: dict[int, str]
    maps: dict[str, np.ndarray]            # T1, T2, T2s, R2s, PD, PDFF, B1, B0 (float32)
    receive: np.ndarray                    # receive sensitivity (relative), not in PD
    geometry: Geometry
    field_strength_t: float
    drawn: dict = field(default_factory=dict)
    oversample: int = 1                    # in-plane grid refinement over the acquisition matrix

    def __post_init__(self) -> None:
        # Fields are only defined where there is tissue: outside it there is no signal, and
        # the air field (hundreds of Hz) would only be a meaningless training target.
        tissue = self.maps["PD"] > 0
        for k in ("B0", "B1"):
            if k in self.maps:
                self.maps[k] = np.where(tissue, self.maps[k], 0.0).astype(np.float32)

    @property
    def body(self) -> np.ndarray:
        return self.labels > 0


def texture(rng: np.random.Generator, shape: tuple[int, int, int], voxel_mm, oversample: int = 1) -> np.ndarray:
    """1 + smooth relative variation: a coarse field (VARIATION) plus a fine one (TEXTURE, ~TEXTURE_MM).
    Both vary over millimetres or more, so they are drawn on the acquisition grid (shape
    divided by ``oversample`` in-plane) and interpolated."""
    cshape = (shape[0], shape[1] // oversample, shape[2] // oversample)
    cvox = (voxel_mm[0], voxel_mm[1] * oversample, voxel_mm[2] * oversample)
    fine = tuple(max(2, int(round(n * d / TEXTURE_MM))) for n, d in zip(cshape, cvox))
    t = 1.0 + VARIATION * smooth_field(rng, cshape, 6) + TEXTURE * smooth_field(rng, cshape, fine)
    return upsample_inplane(t, oversample)


def maps_from_fractions(fractions: dict[int, np.ndarray], tissues: CaseTissues, rng: np.random.Generator,
                        overrides: dict[int, dict[str, np.ndarray]] | None = None,
                        voxel_mm=(1.0, 1.0, 1.0), oversample: int = 1) -> dict[str, np.ndarray]:
    """T1, T2, T2s, R2s, PD, PDFF maps from tissue fractions (PD-weighted rate mixing)."""
    shape = next(iter(fractions.values())).shape
    var = {k: texture(rng, shape, voxel_mm, oversample).ravel() for k in ("T1", "T2", "T2s", "PD")}
    n = int(np.prod(shape))
    pd, r1, r2, r2s, fat = (np.zeros(n, np.float32) for _ in range(5))
    for lab, f in fractions.items():
        ff = np.asarray(f, np.float32).ravel()
        idx = np.flatnonzero(ff > 1e-6)          # each tissue touches only part of the volume
        if idx.size == 0:
            continue
        v = dict(tissues.values[lab])
        for key, arr in (overrides or {}).get(lab, {}).items():
            v[key] = np.asarray(arr).ravel()[idx] if np.ndim(arr) else arr
        w = ff[idx] * v["PD"] * var["PD"][idx]
        t2 = v["T2"] * var["T2"][idx]
        pd[idx] += w
        r1[idx] += w / (v["T1"] * var["T1"][idx])
        r2[idx] += w / t2
        r2s[idx] += w / np.minimum(v["T2s"] * var["T2s"][idx], t2)
        fat[idx] += w * v["PDFF"]
    inside = pd > 1e-6
    safe = np.where(inside, pd, 1.0)
    out = {
        # a voxel cannot hold more water than pure water; below 1e-6 it holds none (T1 etc. are 0 there)
        "PD": np.where(inside, np.clip(pd, 0.0, 1.0), 0.0),
        "T1": np.where(inside, safe / np.where(inside, r1, 1.0), 0.0),
        "T2": np.where(inside, safe / np.where(inside, r2, 1.0), 0.0),
        "T2s": np.where(inside, safe / np.where(inside, r2s, 1.0), 0.0),
        "PDFF": np.where(inside, fat / safe, 0.0),
    }
    out["R2s"] = np.where(inside, 1000.0 / np.where(out["T2s"] > 0, out["T2s"], 1.0), 0.0)
    return {k: v.astype(np.float32).reshape(shape) for k, v in out.items()}


def dielectric_maps(fractions: dict[int, np.ndarray], tissues: CaseTissues) -> tuple[np.ndarray, np.ndarray]:
    """Relative permittivity and conductivity (S/m) at the case's Larmor frequency: the
    volume-weighted mixture of the tissues' Gabriel values, air (1, 0) where no tissue is."""
    from .dielectric import properties
    shape = next(iter(fractions.values())).shape
    eps = np.zeros(shape, np.float32)
    sig = np.zeros(shape, np.float32)
    total = np.zeros(shape, np.float32)
    for lab, f in fractions.items():
        e, s = properties(tissues.dielectric[lab], tissues.field_t)
        eps += f * e
        sig += f * s
        total += f
    air = np.clip(1.0 - total, 0.0, 1.0)
    return eps + air, sig


def labels_from_fractions(fractions: dict[int, np.ndarray], threshold: float = 0.5) -> np.ndarray:
    """The dominant tissue of each voxel; background where tissue fills less than threshold."""
    first = next(iter(fractions.values()))
    best = np.zeros(first.shape, np.float32)
    total = np.zeros(first.shape, np.float32)
    lab = np.zeros(first.shape, np.int16)
    for k in sorted(fractions):      # running maximum: no (labels x volume) stack in memory
        f = fractions[k]
        up = f > best
        lab[up] = k
        best = np.maximum(best, f)
        total += f
    return np.where(total >= threshold, lab, 0).astype(np.int16)


class LabelFractions(dict):
    """Tissue fractions of a hard label map, made on access (one volume at a time in memory):
    the one-hot map of each label, blurred by sigma_vox voxels where given. Entries set
    explicitly (e.g. a fraction moved between tissues) are stored as given."""

    def __init__(self, labels: np.ndarray, sigma_vox: float = 0.0):
        super().__init__()
        self.labels, self.sigma = labels, sigma_vox
        self._keys = [int(k) for k in np.unique(labels) if k != 0]

    def _make(self, k: int) -> np.ndarray:
        from scipy import ndimage
        f = (self.labels == k).astype(np.float32)
        return ndimage.gaussian_filter(f, self.sigma) if self.sigma > 0 else f

    def __getitem__(self, k):
        return super().__getitem__(k) if super().__contains__(k) else self._make(int(k))

    def __contains__(self, k) -> bool:
        return super().__contains__(k) or int(k) in self._keys

    def keys(self):
        return list(dict.fromkeys(self._keys + list(super().keys())))

    def __iter__(self):
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def items(self):
        return ((k, self[k]) for k in self.keys())

    def values(self):
        return (self[k] for k in self.keys())

    def get(self, k, default=None):
        return self[k] if k in self else default


def one_hot_fractions(labels: np.ndarray, sigma_vox: float = 0.3) -> LabelFractions:
    """Partial volume for procedural (hard-edged) phantoms: one-hot label maps blurred by a
    Gaussian of sigma_vox voxels. 0.3 voxel is the SD of a one-voxel box (the voxel's own
    footprint), for phantoms made directly on the acquisition grid; on an oversampled grid
    k-space image formation makes the partial volume and sigma_vox is 0."""
    return LabelFractions(labels, sigma_vox)
