"""A small procedural knee slab made with the core physics, for the demo and the tests.

It is deliberately simple (ellipses, not anatomy): the [phantoms] issue brings the real
digital phantoms. Tissue values follow shared/reference/tissue-values.md (knee, 3 T) and
the protocol is papers/000 A.1: SPGR at 5/10/20/30 deg, TR 20 ms, TE 0.032 ms, and an
AFI pair at 45 deg with TR1/TR2 = 20/100 ms.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..acquisition import Acquisition
from ..io.images import Geometry
from ..io.writer import OutputWriter
from ..physics import afi, spgr

# label: (name, T1 ms, T2* ms, PD)
TISSUES = {
    1: ("subcutaneous fat", 380.0, 35.0, 0.90),
    2: ("muscle", 1400.0, 28.0, 0.75),
    3: ("fatty marrow", 390.0, 32.0, 0.88),
    4: ("cortical bone", 300.0, 0.5, 0.20),
    5: ("cartilage", 1100.0, 20.0, 0.80),
    6: ("synovial fluid", 3000.0, 200.0, 0.95),
    7: ("meniscus", 1000.0, 7.0, 0.60),
}
FLIP_ANGLES_DEG = (5.0, 10.0, 20.0, 30.0)
TR_MS, TE_MS = 20.0, 0.032
AFI_FA_DEG, AFI_TR_MS = 45.0, (20.0, 100.0)
FIELD_T = 3.0


def knee_labels(ny: int, nx: int, nz: int) -> np.ndarray:
    """An axial-ish slab: fat ring, muscle, femur (cortex + marrow), cartilage, fluid, menisci."""
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
    cy, cx = ny / 2, nx / 2
    r = lambda ay, ax, oy=0.0, ox=0.0: ((y - cy - oy) / ay) ** 2 + ((x - cx - ox) / ax) ** 2
    lab = np.zeros((ny, nx), np.int16)
    lab[r(0.46 * ny, 0.44 * nx) < 1] = 1
    lab[r(0.40 * ny, 0.38 * nx) < 1] = 2
    lab[r(0.22 * ny, 0.26 * nx, -0.02 * ny) < 1] = 6            # joint space with fluid
    lab[r(0.20 * ny, 0.24 * nx, -0.04 * ny) < 1] = 5            # cartilage cap
    lab[r(0.17 * ny, 0.21 * nx, -0.06 * ny) < 1] = 4            # cortical rim
    lab[r(0.15 * ny, 0.19 * nx, -0.06 * ny) < 1] = 3            # marrow
    for side in (-1, 1):
        lab[r(0.035 * ny, 0.07 * nx, 0.17 * ny, side * 0.12 * nx) < 1] = 7
    return np.repeat(lab[None], nz, axis=0)


def make_sample(out: str | Path, size: tuple[int, int, int] = (6, 96, 96), seed: int = 7, snr: float = 150.0) -> Path:
    """Write images (with BIDS sidecars), ground-truth maps and labels into ``out``."""
    rng = np.random.default_rng(seed)
    nz, ny, nx = size
    lab = knee_labels(ny, nx, nz)
    t1, t2s, pd = (np.zeros(lab.shape) for _ in range(3))
    for k, (_, a, b, c) in TISSUES.items():
        sel = lab == k
        t1[sel], t2s[sel], pd[sel] = a, b, c
    zz, yy, xx = np.meshgrid(np.linspace(-1, 1, nz), np.linspace(-1, 1, ny), np.linspace(-1, 1, nx), indexing="ij")
    smooth = 1 + 0.04 * np.sin(2.1 * xx + 1.3 * yy) * np.cos(1.7 * yy - 0.5 * zz)
    t1, pd = t1 * smooth, pd * (2 - smooth)
    # 3 T-like transmit field: central brightening plus a left-right tilt, 0.75-1.25.
    b1 = 1.0 + 0.18 * np.exp(-(xx ** 2 + yy ** 2) / 0.5) - 0.10 + 0.08 * xx
    sigma = pd.max() * float(spgr(1000.0, 1.0, 10.0, TR_MS)) / snr

    def noisy(s):
        return np.abs(s + sigma * (rng.standard_normal(s.shape) + 1j * rng.standard_normal(s.shape))).astype(np.float32)

    geom = Geometry((nx, ny, nz), (0.6, 0.6, 3.0), (-28.8, -28.8, -9.0), (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0))
    body = lab > 0
    t2s_safe = np.where(body, t2s, 1.0)
    out = Path(out)
    with OutputWriter(out) as w:
        for fa in FLIP_ANGLES_DEG:
            img = noisy(spgr(t1, pd, fa, TR_MS, TE_MS, t2s_safe, b1) * body)
            acq = Acquisition(flip_angle_deg=fa, tr_ms=TR_MS, te_ms=TE_MS, field_strength_t=FIELD_T, sequence="spgr")
            w.write_image(f"images/spgr_fa{int(fa):02d}.nii.gz", img, geom, quantity="SPGR", unit="a.u.", sidecar=acq.to_bids())
        s = afi(t1, pd, AFI_FA_DEG, AFI_TR_MS[0], AFI_TR_MS[1], TE_MS, t2s_safe, b1) * body[..., None]
        for i, tr in enumerate(AFI_TR_MS):
            acq = Acquisition(flip_angle_deg=AFI_FA_DEG, tr_ms=tr, te_ms=TE_MS, field_strength_t=FIELD_T, sequence="afi")
            w.write_image(f"images/afi_tr{i + 1}.nii.gz", noisy(s[..., i]), geom, quantity="AFI", unit="a.u.",
                          sidecar=acq.to_bids())
        for name, arr in (("T1", t1), ("PD", pd), ("B1", b1 * body), ("T2s", t2s)):
            w.write_image(f"maps/{name}.nii.gz", (arr * body).astype(np.float32), geom,
                          sidecar={"Description": "ground truth of the sample case"})
        w.write_image("labels.nii.gz", lab.astype(np.int16), geom, quantity="labels", unit="label",
                      sidecar={"labels": {str(k): v[0] for k, v in TISSUES.items()}})
    return out
