"""Extended phase graphs (Weigel, JMRI 2015;41:266) of a FISP-type MR fingerprinting sequence
(Jiang et al., MRM 2015;74:1621; the MRF route of papers/002): an optional inversion, then a train
of RF pulses with varying flip angles and TRs, each TR ending with an unbalanced gradient that
dephases the transverse magnetisation by one full cycle across the voxel (the shift of the
configuration states) and ideal RF spoiling absent (FISP: phase 0 on every pulse).

States per voxel: F_k, F_(-k)^* (transverse, Weigel's pair) and Z_k (longitudinal), k = 0..K. Per TR:
  1. RF rotation by alpha = B1 * alpha_nominal about x (Weigel eq. 15);
  2. the echo at TE: s = F+_0 exp(-TE/T2);
  3. relaxation over TR: F *= E2, Z *= E1, Z_0 += M0 (1 - E1);
  4. dephasing: F+ shifts up one state, F- down one, F+_0 = conj(F-_0).
Everything is vectorised over voxels (or dictionary entries) in torch, complex64.
"""
from __future__ import annotations

import math

import torch


def _as(x, n: int, dtype=torch.float32, device=None) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=dtype, device=device)
    return t.expand(n) if t.ndim == 0 else t


def fisp_epg(t1_ms, t2_ms, flip_deg, tr_ms, te_ms: float = 2.0, b1=1.0, inversion_ti_ms: float | None = None,
             states: int | None = None, device=None) -> torch.Tensor:
    """Signal (n_voxels, n_TR) complex, M0 = 1, of the FISP MRF train flip_deg/tr_ms (length n_TR).

    t1_ms, t2_ms, b1: per voxel (n_voxels,) or scalars. inversion_ti_ms: a perfect inversion that
    long before the first pulse (None: no inversion). states: configuration states kept
    (default: all, n_TR + 1)."""
    t1 = torch.as_tensor(t1_ms, dtype=torch.float64, device=device).reshape(-1)
    n = t1.numel()
    t2 = _as(t2_ms, n, torch.float64, device).reshape(-1)
    b1v = _as(b1, n, torch.float64, device).reshape(-1)
    fa = torch.as_tensor(flip_deg, dtype=torch.float64, device=device).reshape(-1)
    tr = _as(tr_ms, fa.numel(), torch.float64, device).reshape(-1)
    nt = fa.numel()
    k = (nt + 1) if states is None else int(states)
    fp = torch.zeros(n, k, dtype=torch.complex128, device=device)
    fm = torch.zeros_like(fp)
    z = torch.zeros_like(fp)
    z[:, 0] = 1.0
    if inversion_ti_ms is not None:
        # a perfect inversion, then free recovery for TI
        e1 = torch.exp(-float(inversion_ti_ms) / t1)
        z[:, 0] = -1.0 * e1 + (1.0 - e1)
    out = torch.empty(n, nt, dtype=torch.complex128, device=device)
    e2te = torch.exp(-float(te_ms) / t2)
    for i in range(nt):
        a = torch.deg2rad(fa[i]) * b1v                                   # (n,)
        c, s = torch.cos(a / 2) ** 2, torch.sin(a / 2) ** 2
        sa = torch.sin(a)
        ca = torch.cos(a)
        # Weigel 2015 eq. 15, phase 0 (rotation about x)
        # fm holds Weigel's second component, F_(-k)^*, so the matrix applies as written
        nfp = c[:, None] * fp + s[:, None] * fm - 1j * sa[:, None] * z
        nfm = s[:, None] * fp + c[:, None] * fm + 1j * sa[:, None] * z
        nz = -0.5j * sa[:, None] * fp + 0.5j * sa[:, None] * fm + ca[:, None] * z
        fp, fm, z = nfp, nfm, nz
        out[:, i] = fp[:, 0] * e2te
        e1 = torch.exp(-tr[i] / t1)[:, None]
        e2 = torch.exp(-tr[i] / t2)[:, None]
        fp, fm = fp * e2, fm * e2
        z = z * e1
        z[:, 0] = z[:, 0] + (1.0 - e1[:, 0])
        # dephasing by one cycle: F+_k -> F+_(k+1), F-_k -> F-_(k-1); F+_0 from the new F-_0
        fp = torch.cat([torch.zeros_like(fp[:, :1]), fp[:, :-1]], dim=1)
        fm = torch.cat([fm[:, 1:], torch.zeros_like(fm[:, :1])], dim=1)
        fp[:, 0] = torch.conj(fm[:, 0])
    return out.to(torch.complex64)


def fisp_isochromats(t1_ms: float, t2_ms: float, flip_deg, tr_ms, te_ms: float = 2.0, b1: float = 1.0,
                     inversion_ti_ms: float | None = None, n_iso: int = 720) -> torch.Tensor:
    """The same sequence by Bloch simulation of n_iso isochromats spread over one dephasing cycle
    (the independent check of fisp_epg): rotation about x, relaxation, then precession by the
    isochromat's phase 2 pi j / n_iso at the end of each TR; the echo is the mean transverse
    magnetisation at TE (decay only, as the gradient dephasing is rewound to the centre at TE)."""
    fa = torch.as_tensor(flip_deg, dtype=torch.float64).reshape(-1)
    tr = _as(tr_ms, fa.numel(), torch.float64).reshape(-1)
    phi = 2 * math.pi * torch.arange(n_iso, dtype=torch.float64) / n_iso
    m = torch.zeros(n_iso, 3, dtype=torch.float64)
    m[:, 2] = 1.0
    if inversion_ti_ms is not None:
        e1 = math.exp(-inversion_ti_ms / t1_ms)
        m[:, 2] = -e1 + (1 - e1)
    out = torch.empty(fa.numel(), dtype=torch.complex128)
    e2te = math.exp(-te_ms / t2_ms)
    for i in range(fa.numel()):
        a = float(torch.deg2rad(fa[i])) * b1
        ca, sa = math.cos(a), math.sin(a)
        my = ca * m[:, 1] - sa * m[:, 2]          # rotation about x by a (clockwise convention: Mz -> -My ... )
        mz = sa * m[:, 1] + ca * m[:, 2]
        m = torch.stack([m[:, 0], my, mz], 1)
        mxy = torch.complex(m[:, 0], m[:, 1])
        out[i] = mxy.mean() * e2te
        e1 = math.exp(-float(tr[i]) / t1_ms)
        e2 = math.exp(-float(tr[i]) / t2_ms)
        mxy = mxy * e2 * torch.exp(1j * phi)
        m = torch.stack([mxy.real, mxy.imag, m[:, 2] * e1 + (1 - e1)], 1)
    return out.to(torch.complex64)
