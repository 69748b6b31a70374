"""Random smooth fields, anatomical warps and system imperfections for the phantoms.

Everything is deterministic given a numpy Generator. Coordinates are in mm on the
phantom grid, arrays are (z, y, x) like the rest of Q2MRI.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

GAMMA_BAR_HZ_PER_T = 42.577e6


def smooth_field(rng: np.random.Generator, shape: tuple[int, ...], coarse: int | tuple[int, ...] = 5) -> np.ndarray:
    """A smooth random field with zero mean and unit SD: coarse Gaussian noise (``coarse``
    nodes per axis, or one count per axis) upsampled by cubic interpolation to an
    intermediate grid, then (cheaply) by linear interpolation."""
    import torch
    nodes = coarse if isinstance(coarse, tuple) else (coarse,) * len(shape)
    grid = rng.standard_normal(tuple(max(2, min(c, s)) for c, s in zip(nodes, shape)))
    mid = tuple(min(s, 3 * g) for s, g in zip(shape, grid.shape))
    # cubic for the few nodes of a large-scale field; linear is as good (and 10x cheaper) for fine texture
    grid = ndimage.zoom(grid, [m / g for m, g in zip(mid, grid.shape)], order=3 if grid.size < 4096 else 1, mode="nearest")
    t = torch.from_numpy(np.ascontiguousarray(grid, dtype=np.float32))[None, None]
    f = torch.nn.functional.interpolate(t, size=tuple(shape), mode="trilinear", align_corners=True)[0, 0].numpy()
    f = f - f.mean()
    sd = f.std()
    return f / sd if sd > 0 else f


def normalised_coords(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z, y, x in -1..1 across the grid (a singleton axis gives 0), as broadcastable arrays."""
    axes = [np.linspace(-1, 1, n, dtype=np.float32) if n > 1 else np.zeros(1, np.float32) for n in shape]
    return tuple(a.reshape([-1 if i == j else 1 for j in range(3)]) for i, a in enumerate(axes))


def receive_bias(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """Receive-coil sensitivity (relative, mean 1 in the grid): brighter near the surface."""
    z, y, x = normalised_coords(shape)
    r2 = x ** 2 + y ** 2
    bias = 1.0 + rng.uniform(0.1, 0.35) * r2 + rng.uniform(-0.15, 0.15) * x + rng.uniform(-0.15, 0.15) * y
    bias = bias * np.exp(0.05 * smooth_field(rng, shape, 4))
    return bias / bias.mean()


def dipole_field_hz(chi_ppm: np.ndarray, voxel_mm: tuple[float, float, float], field_t: float,
                    b0_axis: int = 0) -> np.ndarray:
    """Off-resonance (Hz) of a susceptibility distribution (ppm) with B0 along ``b0_axis``.

    Fourier-domain dipole kernel D(k) = 1/3 - kz^2/|k|^2 (Salomir et al. 2003; Marques &
    Bowtell 2005), zero-padded to reduce wrap-around: dB/B0 = F^-1[D F(chi)].
    """
    from scipy import fft
    pad = [(n // 4 + 1, n // 4 + 1) for n in chi_ppm.shape]
    chi = np.pad((chi_ppm - np.median(chi_ppm)).astype(np.float32), pad, mode="edge")
    freqs = [fft.fftfreq(n, d) for n, d in zip(chi.shape[:-1], voxel_mm[:-1])] + [fft.rfftfreq(chi.shape[-1], voxel_mm[-1])]
    k = [f.astype(np.float32).reshape([-1 if i == j else 1 for j in range(3)]) for i, f in enumerate(freqs)]
    k2 = k[0] ** 2 + k[1] ** 2 + k[2] ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        kernel = np.where(k2 > 0, 1.0 / 3.0 - k[b0_axis] ** 2 / k2, 0.0).astype(np.float32)
    db = fft.irfftn(kernel * fft.rfftn(chi, workers=2), s=chi.shape, workers=2)
    db = db[tuple(slice(p[0], p[0] + n) for p, n in zip(pad, chi_ppm.shape))]
    return db * 1e-6 * GAMMA_BAR_HZ_PER_T * field_t


def b0_field(rng: np.random.Generator, shape: tuple[int, int, int], voxel_mm, field_t: float,
             air: np.ndarray | None = None, bone: np.ndarray | None = None, smooth_hz: float = 200.0,
             b0_axis: int = 0) -> np.ndarray:
    """B0 (Hz): a smooth shim-residual field within +-smooth_hz (given at 3 T; it scales with
    the field, as every susceptibility and shim term does) plus the susceptibility field
    of air (chi +9.4 ppm relative to tissue) and bone (-2.2 ppm relative, cortical)."""
    z, y, x = normalised_coords(shape)
    poly = (rng.uniform(-1, 1) * x + rng.uniform(-1, 1) * y + rng.uniform(-0.5, 0.5) * z
            + rng.uniform(-0.5, 0.5) * x * y + rng.uniform(-0.5, 0.5) * (x ** 2 - y ** 2))
    poly += 0.3 * smooth_field(rng, shape, 3)
    poly *= smooth_hz * field_t / 3.0 / max(np.abs(poly).max(), 1e-9) * rng.uniform(0.5, 1.0)
    chi = np.zeros(shape, np.float32)
    if air is not None:
        chi += 9.4 * np.asarray(air, np.float32)      # boolean masks or volume fractions
    if bone is not None:
        chi += -2.2 * np.asarray(bone, np.float32)
    sus = dipole_field_hz(chi, voxel_mm, field_t, b0_axis) if (air is not None or bone is not None) else 0.0
    if air is not None:
        # The scanner tunes its centre frequency to the tissue: remove the tissue median.
        tissue = np.asarray(air, np.float32) < 0.5
        sus = sus - np.median(sus[tissue]) if tissue.any() else sus
    return (poly + sus).astype(np.float32)


def block_mean(a: np.ndarray, os: int) -> np.ndarray:
    """In-plane os x os block averages of a (z, y, x) array (the acquisition voxel's footprint)."""
    if os == 1:
        return np.asarray(a, np.float32)
    z, y, x = a.shape
    return np.asarray(a, np.float32).reshape(z, y // os, os, x // os, os).mean((2, 4))


def upsample_inplane(a: np.ndarray, os: int) -> np.ndarray:
    """Bilinear in-plane upsampling by os with pixel centres aligned (fine j <- coarse (j + 0.5)/os - 0.5)."""
    import torch
    if os == 1:
        return np.asarray(a, np.float32)
    t = torch.from_numpy(np.ascontiguousarray(a, np.float32))[:, None]
    return torch.nn.functional.interpolate(t, scale_factor=os, mode="bilinear", align_corners=False)[:, 0].numpy()


def b0_oversampled(rng: np.random.Generator, air: np.ndarray, bone: np.ndarray, voxel_mm, field_t: float, os: int,
                   smooth_hz: float = 200.0, b0_axis: int = 0) -> np.ndarray:
    """b0_field for a grid oversampled os times in-plane: the dipole field is computed from the
    air and bone fractions of the acquisition voxels (it is smooth inside tissue) and
    interpolated back to the fine grid, at a sixteenth of the FFT cost."""
    coarse_vox = (voxel_mm[0], voxel_mm[1] * os, voxel_mm[2] * os)
    a, b = block_mean(air, os), block_mean(bone, os)
    b0 = b0_field(rng, a.shape, coarse_vox, field_t, air=a, bone=b, smooth_hz=smooth_hz, b0_axis=b0_axis)
    # A voxel partly filled with air carries the air's own (Lorentz) offset in the dipole
    # model, which its tissue spins do not feel: such voxels take the field of the nearest
    # voxel free of air (the tissue side of the interface).
    part = a > 0.02
    if part.any() and (~part).any():
        _, idx = ndimage.distance_transform_edt(part, sampling=coarse_vox, return_indices=True)
        b0 = b0[tuple(idx)]
    return upsample_inplane(b0, os)


def random_warp(rng: np.random.Generator, shape: tuple[int, int, int], voxel_mm, *, rot_deg: float = 8.0,
                scale: float = 0.08, shift_mm: float = 5.0, elastic_mm: float = 3.0, coarse: int = 5) -> np.ndarray:
    """Sampling coordinates (3, *shape) in voxel units of the source: affine plus smooth elastic.

    Output voxel p maps to source position A (p - c) + c + t + u(p), with A a random
    rotation-and-scaling, t a shift and u a smooth displacement field.
    """
    angles = np.radians(rng.uniform(-rot_deg, rot_deg, 3))
    cz, cy, cx = np.cos(angles)
    sz, sy, sx = np.sin(angles)
    rz = np.array([[1, 0, 0], [0, cz, -sz], [0, sz, cz]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[cx, -sx, 0], [sx, cx, 0], [0, 0, 1]])
    a = rz @ ry @ rx @ np.diag(rng.uniform(1 - scale, 1 + scale, 3))
    centre = (np.array(shape) - 1) / 2.0
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"))
    rel = grid.reshape(3, -1) - centre[:, None]
    src = (a @ rel).reshape(3, *shape) + centre[:, None, None, None]
    vox = np.asarray(voxel_mm, float)
    src += (rng.uniform(-shift_mm, shift_mm, 3) / vox)[:, None, None, None]
    for i in range(3):
        src[i] += elastic_mm / vox[i] * smooth_field(rng, shape, coarse)
    return src


def rician(rng: np.random.Generator, signal: np.ndarray, sigma: float) -> np.ndarray:
    """Magnitude of the signal plus complex Gaussian noise of SD sigma per channel."""
    return np.abs(signal + sigma * (rng.standard_normal(signal.shape) + 1j * rng.standard_normal(signal.shape)))


def complex_noise(rng: np.random.Generator, signal: np.ndarray, sigma: float) -> np.ndarray:
    return signal + sigma * (rng.standard_normal(signal.shape) + 1j * rng.standard_normal(signal.shape))
