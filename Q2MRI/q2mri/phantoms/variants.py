"""What the scanner and the field of view change, and the tissue does not.

The same tissue is imaged with another field of view (a skull-stripped brain, a slab that
misses the scalp), another receive coil (surface arrays: up to 3x brighter at the surface),
another resolution (k-space truncated), another noise level (parallel imaging: a g-factor
map) and another transmit field. A network must answer the same T1 for all of them. These
functions make such variants of one image, deterministically from their arguments, so the
training can randomize them per sample (models.bank: SynthSeg's domain randomization,
Billot et al. 2023, MedIA 86:102789, with images that always come from the Bloch equations of
the drawn maps) and the invariance tests can apply each one alone (models.invariance).

Arrays are (..., Y, X): the in-plane axes last.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

# Intracranial labels of the brain phantom (phantoms.tissues.BRAIN): CSF, GM, WM, deep grey,
# lesions. A skull-stripping tool keeps these (and the CSF around the brain).
INTRACRANIAL = (1, 2, 3, 4, 5, 6, 7)


def brain_mask(labels: np.ndarray, margin_vox: int = 0) -> np.ndarray:
    """The skull-stripped brain: intracranial labels, grown (margin > 0) or eroded (< 0) in plane
    by |margin| voxels, as stripping tools of different aggressiveness leave it."""
    m = np.isin(labels, INTRACRANIAL)
    if margin_vox == 0:
        return m
    # in plane only (slices are stripped one by one): a 2D cross, singleton along leading axes
    struct = ndimage.generate_binary_structure(2, 1).reshape((1,) * (m.ndim - 2) + (3, 3))
    op = ndimage.binary_dilation if margin_vox > 0 else ndimage.binary_erosion
    return op(m, struct, iterations=abs(margin_vox))


def surface_receive(shape: tuple[int, int], amplitude: float, angle_rad: float, length: float = 0.5) -> np.ndarray:
    """A surface coil's receive profile over the slice (Y, X): 1 far from the coil, ``amplitude``
    at the field of view's edge on the side the angle points to, falling off over ``length``
    (a fraction of the half-width). Phased arrays give up to about 3x at the surface."""
    h, w = shape
    yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    u = np.cos(angle_rad) * xx + np.sin(angle_rad) * yy            # 1 at the coil's side
    return (1.0 + (amplitude - 1.0) * np.exp(-(1.0 - u).clip(0) / max(length, 1e-3))).astype(np.float32)


def smooth_field(shape: tuple[int, int], coef: np.ndarray) -> np.ndarray:
    """exp of a quadratic in the normalised in-plane coordinates: a smooth positive field (a
    transmit perturbation, a g-factor map). coef: 5 numbers for y, x, y^2, x^2, xy."""
    h, w = shape
    yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    p = coef[0] * yy + coef[1] * xx + coef[2] * (yy ** 2 - 1 / 3) + coef[3] * (xx ** 2 - 1 / 3) + coef[4] * yy * xx
    return np.exp(p).astype(np.float32)


def truncate_kspace(img: np.ndarray, factor_y: float, factor_x: float) -> np.ndarray:
    """The image at a coarser resolution on the same grid: only the central 1/factor of k-space
    along each axis is kept (zero-filled, as a scanner reconstructs a lower acquired matrix).
    Complex in, complex out; a magnitude image is treated as real."""
    if factor_y <= 1.0 and factor_x <= 1.0:
        return img
    k = np.fft.fft2(img, axes=(-2, -1))
    for ax, f in ((-2, factor_y), (-1, factor_x)):
        n = img.shape[ax]
        keep = np.abs(np.fft.fftfreq(n)) <= 0.5 / max(f, 1.0) + 1e-9
        shape = [1] * img.ndim
        shape[ax] = n
        k = k * keep.reshape(shape)
    out = np.fft.ifft2(k, axes=(-2, -1))
    return out.astype(np.complex64) if np.iscomplexobj(img) else out.real.astype(np.float32)


def crop_box(mask: np.ndarray, frac_y: float, frac_x: float, pos_y: float, pos_x: float) -> tuple[slice, slice]:
    """An in-plane window of frac of the field of view along each axis, placed at pos (0 = start,
    1 = end) inside the bounding box of the mask (a slab that misses part of the anatomy)."""
    h, w = mask.shape[-2:]
    any_y = np.flatnonzero(mask.reshape(-1, h, w).any((0, 2)))
    any_x = np.flatnonzero(mask.reshape(-1, h, w).any((0, 1)))
    sl = []
    for n, idx, f, p in ((h, any_y, frac_y, pos_y), (w, any_x, frac_x, pos_x)):
        lo, hi = (int(idx[0]), int(idx[-1]) + 1) if idx.size else (0, n)
        size = max(8, int(round(f * n)))
        start = lo + int(round(p * max(0, (hi - lo) - size)))
        start = min(max(0, start), max(0, n - size))
        sl.append(slice(start, start + size))
    return sl[0], sl[1]
