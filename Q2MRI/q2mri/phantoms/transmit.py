"""Transmit field B1+ from the electromagnetics of the body (not drawn).

Model (2D, transverse magnetic; the classical infinite-cylinder picture of body-coil
transmission, e.g. Glover et al. 1985, Collins et al. 2005): in each axial plane the
coil's axial electric field E_z obeys the Helmholtz equation

    laplacian(E_z) + k^2 E_z = i w mu0 J_z,     k^2 = w^2 mu0 eps0 eps_r - i w mu0 sigma,

with eps_r and sigma of the tissue in every voxel at the Larmor frequency (Gabriel et al.
1996, phantoms.dielectric; air outside the body). The source J_z is a shielded birdcage:
rung currents cos(phi) and sin(phi) on a circle of radius R_coil driven in quadrature,
and E_z = 0 on the RF shield (radius R_shield). The transverse field follows from
Faraday's law, -i w B = curl E, and the co-rotating (transmit) component is

    B1+ = (dE_z/dx + i dE_z/dy) / (2 w)      for the drive cos(phi) - i sin(phi).

Inside a homogeneous disc the only regular solution of the drive's angular order is
E_z = A J1(k rho) exp(-i phi), which gives B1+ = -k A J0(k rho) / (2 w): the Bessel
solution (b1_bessel), which the finite-difference solve reproduces (a test checks it).
At 64 MHz the wavelength in tissue (about 50 cm) is far larger than a head and B1+ is
nearly flat; at 128 MHz (about 27 cm) it brightens the centre of a head and the abdomen;
at 298 MHz (about 13 cm) the centre is much brighter and the periphery (the temporal lobes)
dark. The equation is solved on a coarse grid (a few mm; the field varies on the scale of
the wavelength) with a sparse LU factorisation, once per plane at a few planes along the
magnet axis, and interpolated in between.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse.linalg import splu

from .dielectric import EPS0, MU0, larmor_hz


@dataclass(frozen=True)
class Coil:
    """A shielded quadrature birdcage: rung radius and shield radius (m), and the solver's
    grid spacing (mm; 20 or more points per wavelength in tissue up to 7 T)."""
    name: str
    radius_m: float
    shield_m: float
    solver_h_mm: float


BODY_COIL = Coil("body", 0.30, 0.34, 6.0)      # whole-body transmit coil of 1.5 and 3 T systems
HEAD_COIL = Coil("head", 0.14, 0.16, 3.0)      # transmit head coil of 7 T systems
KNEE_COIL = Coil("knee", 0.095, 0.11, 2.5)     # transmit-receive knee birdcage


def wavenumber_sq(eps_r: np.ndarray, sigma: np.ndarray, f_hz: float) -> np.ndarray:
    """k^2 = w^2 mu0 eps0 eps_r - i w mu0 sigma (1/m^2), time convention exp(i w t)."""
    w = 2.0 * math.pi * f_hz
    return w * w * MU0 * EPS0 * np.asarray(eps_r, np.float64) - 1j * w * MU0 * np.asarray(sigma, np.float64)


def b1_bessel(rho_m: np.ndarray, eps_r: float, sigma: float, f_hz: float) -> np.ndarray:
    """|B1+| inside a homogeneous lossy cylinder, relative to its centre: |J0(k rho)| / |J0(0)|."""
    from scipy.special import jv
    k = np.sqrt(wavenumber_sq(np.array(eps_r), np.array(sigma), f_hz))
    return np.abs(jv(0, k * np.asarray(rho_m)))


def _laplacian(inside: np.ndarray, h: float) -> tuple[sparse.csr_matrix, np.ndarray]:
    """5-point Laplacian over the nodes of ``inside`` with E = 0 on every other node."""
    idx = -np.ones(inside.shape, np.int64)
    n = int(inside.sum())
    idx[inside] = np.arange(n)
    rows, cols, vals = [np.arange(n)], [np.arange(n)], [np.full(n, -4.0 / h ** 2)]
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        nb = np.roll(idx, (-dy, -dx), axis=(0, 1))
        ok = inside & (nb >= 0)
        rows.append(idx[ok])
        cols.append(nb[ok])
        vals.append(np.full(int(ok.sum()), 1.0 / h ** 2))
    lap = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    return lap, idx


def solve_plane(eps_r: np.ndarray, sigma: np.ndarray, h_m: float, f_hz: float, coil: Coil,
                centre_m: tuple[float, float] = (0.0, 0.0), drive: complex = -1j) -> np.ndarray:
    """Complex B1+ (arbitrary scale) on the coil's grid for one axial plane.

    eps_r, sigma: (N, N) maps on a square grid of spacing h_m covering the shield, coil
    axis at the grid centre; drive: the sin(phi) channel relative to the cos(phi) one
    (-i is ideal quadrature; a case may carry an amplitude/phase imbalance).
    """
    n = eps_r.shape[0]
    ax = (np.arange(n) - (n - 1) / 2.0) * h_m
    y, x = np.meshgrid(ax - centre_m[0], ax - centre_m[1], indexing="ij")
    rho, phi = np.hypot(x, y), np.arctan2(y, x)
    inside = rho < coil.shield_m - h_m
    lap, idx = _laplacian(inside, h_m)
    k2 = wavenumber_sq(eps_r, sigma, f_hz)[inside]
    a = (lap + sparse.diags(k2)).tocsc()
    ring = inside & (np.abs(rho - coil.radius_m) < h_m / 2)
    # A surface current on the ring, discretised as a line source of density 1/h.
    current = np.where(ring, (np.cos(phi) + drive * np.sin(phi)) / h_m, 0.0)
    w = 2.0 * math.pi * f_hz
    rhs = 1j * w * MU0 * current[inside]
    ez = np.zeros(inside.shape, np.complex128)
    # The operator is complex symmetric: SuperLU's symmetric mode (minimum-degree ordering on A+A^T,
    # no row pivoting) factors it 20-140x faster than the default COLAMD with partial pivoting, to
    # the same solution within 1e-14 (checked against the Bessel solution, test_realism).
    lu = splu(a, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    ez[inside] = lu.solve(rhs.astype(np.complex128))
    dy, dx = np.gradient(ez, h_m)
    return (dx + 1j * dy) / (2.0 * w)


def plane_field(eps_r: np.ndarray, sigma: np.ndarray, pixel_m: tuple[float, float], f_hz: float, coil: Coil,
                drive: complex, solver_h_m: float) -> np.ndarray:
    """|B1+| (arbitrary scale) on a plane's own pixels: the plane (rows, cols) is centred in
    the coil, averaged onto the solver grid, solved, and interpolated back."""
    ny, nx = eps_r.shape
    n = int(math.ceil(2 * coil.shield_m / solver_h_m)) + 3
    ax = (np.arange(n) - (n - 1) / 2.0) * solver_h_m
    # solver-grid node -> plane pixel coordinate (pixel centres at (i - (ny-1)/2) * pixel)
    py = ax / pixel_m[0] + (ny - 1) / 2.0
    px = ax / pixel_m[1] + (nx - 1) / 2.0
    gy, gx = np.meshgrid(py, px, indexing="ij")
    # Anti-alias the fine plane to about the solver spacing before sampling it.
    sig = (max(0.0, 0.5 * solver_h_m / pixel_m[0] - 0.5), max(0.0, 0.5 * solver_h_m / pixel_m[1] - 0.5))
    e_s = ndimage.map_coordinates(ndimage.gaussian_filter(eps_r, sig), [gy, gx], order=1, mode="constant", cval=1.0)
    s_s = ndimage.map_coordinates(ndimage.gaussian_filter(sigma, sig), [gy, gx], order=1, mode="constant", cval=0.0)
    b = solve_plane(e_s, s_s, solver_h_m, f_hz, coil, drive=drive)
    # back: plane pixel -> solver-grid coordinate
    iy = ((np.arange(ny) - (ny - 1) / 2.0) * pixel_m[0]) / solver_h_m + (n - 1) / 2.0
    ix = ((np.arange(nx) - (nx - 1) / 2.0) * pixel_m[1]) / solver_h_m + (n - 1) / 2.0
    qy, qx = np.meshgrid(iy, ix, indexing="ij")
    mag = np.abs(b)
    return ndimage.map_coordinates(mag, [qy, qx], order=1, mode="nearest")


def transmit_field(eps_r: np.ndarray, sigma: np.ndarray, body: np.ndarray, voxel_mm: tuple[float, float, float],
                   si_axis: int, field_t: float, coil: Coil, rng: np.random.Generator, *,
                   plane_step_mm: float = 10.0, solver_h_mm: float | None = None, imbalance: float = 0.1,
                   imbalance_deg: float = 10.0, calibration_sd: float = 0.02, residual_sd: float = 0.02) -> tuple[np.ndarray, dict]:
    """Relative B1+ (1 = nominal flip angle) over a (z, y, x) volume, and what was drawn.

    Per case: a quadrature drive imbalance (amplitude +-imbalance, phase +-imbalance_deg)
    breaks the symmetry; the scanner's transmit calibration sets the mean flip angle in the
    central region of the body (voxels at least half the largest depth from its surface)
    to nominal within calibration_sd; a smooth residual of residual_sd (relative) stands
    for what the 2D model leaves out (coil ends, the rest of the body).
    """
    from .fields import smooth_field
    f_hz = larmor_hz(field_t)
    solver_h_mm = solver_h_mm or coil.solver_h_mm
    amp = 1.0 + rng.uniform(-imbalance, imbalance)
    ph = np.radians(rng.uniform(-imbalance_deg, imbalance_deg))
    drive = -1j * amp * np.exp(1j * ph)
    eps_m = np.moveaxis(eps_r, si_axis, 0)
    sig_m = np.moveaxis(sigma, si_axis, 0)
    vox = [voxel_mm[i] for i in range(3) if i != si_axis]
    n_si = eps_m.shape[0]
    step = max(1, int(round(plane_step_mm / voxel_mm[si_axis])))
    planes = sorted(set(list(range(0, n_si, step)) + [n_si - 1]))
    solved = np.stack([plane_field(eps_m[p], sig_m[p], (vox[0] / 1000.0, vox[1] / 1000.0), f_hz, coil, drive,
                                   solver_h_mm / 1000.0) for p in planes])
    if len(planes) > 1:
        pos = np.interp(np.arange(n_si), planes, np.arange(len(planes)))
        lo = np.floor(pos).astype(int).clip(0, len(planes) - 1)
        hi = np.minimum(lo + 1, len(planes) - 1)
        t = (pos - lo)[:, None, None]
        mag = (1 - t) * solved[lo] + t * solved[hi]
    else:
        mag = np.repeat(solved, n_si, axis=0)
    mag = np.moveaxis(mag, 0, si_axis)
    # calibration region: the central part of the body on the solved planes (depth below the
    # surface at least half the largest depth)
    body_m = np.moveaxis(body, si_axis, 0)
    depth = np.stack([ndimage.distance_transform_edt(body_m[p], sampling=vox) for p in planes])
    centre = (depth >= 0.5 * depth.max()) & body_m[planes] if depth.max() > 0 else np.ones(depth.shape, bool)
    mag_p = np.moveaxis(mag, si_axis, 0)[planes]
    gain = (1.0 + calibration_sd * rng.standard_normal()) / float(mag_p[centre].mean())
    b1 = mag * gain * np.exp(residual_sd * smooth_field(rng, body.shape, 4))
    drawn = {"field_t": field_t, "coil": coil.name, "drive_amplitude": float(amp), "drive_phase_deg": float(np.degrees(ph)),
             "calibration_gain": float(gain)}
    return b1.astype(np.float32), drawn


def planar_depth(body: np.ndarray, voxel_mm, si_axis: int) -> np.ndarray:
    """Depth (mm) of every body voxel below the body surface within its own axial plane (the
    plane B1+ is solved in; a thin slab's top and bottom are not a surface)."""
    b = np.moveaxis(body, si_axis, 0)
    vox = tuple(voxel_mm[i] for i in range(3) if i != si_axis)
    d = np.stack([ndimage.distance_transform_edt(p, sampling=vox) if p.any() else np.zeros(p.shape) for p in b])
    return np.moveaxis(d, 0, si_axis).astype(np.float32)


def centre_periphery_ratio(b1: np.ndarray, body: np.ndarray, voxel_mm, si_axis: int = 0) -> float:
    """Mean B1+ where the in-plane depth below the body surface is at least 60 % of the
    largest depth, over the mean within the outer 25 % of that depth (centre-periphery contrast)."""
    depth = planar_depth(body, voxel_mm, si_axis)
    dmax = depth.max()
    centre = body & (depth >= 0.6 * dmax)
    rim = body & (depth <= 0.25 * dmax)
    return float(b1[centre].mean() / b1[rim].mean())
