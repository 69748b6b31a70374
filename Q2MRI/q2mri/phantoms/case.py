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
from .fields import smooth_field
from .tissues import CaseTissues

VARIATION = 0.03  # relative SD of the smooth within-tissue variation of T1, T2, T2*, PD


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


def maps_from_fractions(fractions: dict[int, np.ndarray], tissues: CaseTissues, rng: np.random.Generator,
                        overrides: dict[int, dict[str, np.ndarray]] | None = None) -> dict[str, np.ndarray]:
    """T1, T2, T2s, R2s, PD, PDFF maps from tissue fractions (PD-weighted rate mixing)."""
    shape = next(iter(fractions.values())).shape
    var = {k: 1.0 + VARIATION * smooth_field(rng, shape, 6) for k in ("T1", "T2", "T2s", "PD")}
    pd = np.zeros(shape)
    r1 = np.zeros(shape)
    r2 = np.zeros(shape)
    r2s = np.zeros(shape)
    fat = np.zeros(shape)
    for lab, f in fractions.items():
        v = dict(tissues.values[lab])
        for key, arr in (overrides or {}).get(lab, {}).items():
            v[key] = arr
        w = f * v["PD"] * var["PD"]
        pd += w
        r1 += w / (v["T1"] * var["T1"])
        r2 += w / (v["T2"] * var["T2"])
        r2s += w / (np.minimum(v["T2s"] * var["T2s"], v["T2"] * var["T2"]))
        fat += w * v["PDFF"]
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
    return {k: v.astype(np.float32) for k, v in out.items()}


def labels_from_fractions(fractions: dict[int, np.ndarray], threshold: float = 0.5) -> np.ndarray:
    """The dominant tissue of each voxel; background where tissue fills less than threshold."""
    keys = sorted(fractions)
    stack = np.stack([fractions[k] for k in keys])
    lab = np.array(keys, dtype=np.int16)[stack.argmax(0)]
    return np.where(stack.sum(0) >= threshold, lab, 0).astype(np.int16)


def one_hot_fractions(labels: np.ndarray, sigma_vox: float = 0.3) -> dict[int, np.ndarray]:
    """Partial volume for procedural (hard-edged) phantoms: one-hot label maps blurred by
    a Gaussian of 0.3 voxel, the SD of a one-voxel box (the voxel's own footprint)."""
    from scipy import ndimage
    out = {}
    for lab in np.unique(labels):
        if lab == 0:
            continue
        out[int(lab)] = ndimage.gaussian_filter((labels == lab).astype(np.float32), sigma_vox)
    return out
