"""Solid shapes in millimetre coordinates for the procedural phantoms."""
from __future__ import annotations

import numpy as np
from scipy import ndimage


class Frame:
    """World coordinates (mm) of a grid's voxel centres, as broadcastable arrays."""

    def __init__(self, shape: tuple[int, int, int], voxel_mm: tuple[float, float, float]):
        self.shape = shape
        self.voxel_mm = voxel_mm
        self.axes = [((np.arange(n, dtype=np.float32) - (n - 1) / 2.0) * d).reshape([-1 if i == j else 1 for j in range(3)])
                     for i, (n, d) in enumerate(zip(shape, voxel_mm))]

    @classmethod
    def square(cls, slices: int, matrix: int, fov_mm: float, slice_mm: float) -> "Frame":
        """A grid of ``slices`` square slices of matrix x matrix voxels over fov_mm."""
        d = fov_mm / matrix
        return cls((slices, matrix, matrix), (slice_mm, d, d))

    def geometry(self, direction: tuple[float, ...]):
        """The grid's Geometry (centred on the origin) for a direction matrix of the array axes."""
        from ..io.images import Geometry
        n, d = self.shape, self.voxel_mm
        return Geometry((n[2], n[1], n[0]), (d[2], d[1], d[0]),
                        tuple(-(k - 1) / 2.0 * s for k, s in zip((n[2], n[1], n[0]), (d[2], d[1], d[0]))), direction)

    def rotated(self, angle_deg: float, plane: tuple[int, int], centre: tuple[float, float, float]) -> list[np.ndarray]:
        """Coordinates rotated by angle in the plane of two axes about a centre (full arrays)."""
        a, b = plane
        c = [ax - ce for ax, ce in zip(self.axes, centre)]
        full = [np.broadcast_to(x, self.shape) for x in c]
        th = np.radians(angle_deg)
        out = [f + ce for f, ce in zip(full, centre)]
        out[a] = np.cos(th) * full[a] - np.sin(th) * full[b] + centre[a]
        out[b] = np.sin(th) * full[a] + np.cos(th) * full[b] + centre[b]
        return out


def ellipsoid(coords, centre, radii) -> np.ndarray:
    return sum(((c - ce) / r) ** 2 for c, ce, r in zip(coords, centre, radii)) <= 1.0


def cylinder(coords, axis: int, centre, radii) -> np.ndarray:
    """Infinite elliptic cylinder along ``axis``; centre and radii for the other two axes."""
    others = [i for i in range(3) if i != axis]
    inside = sum(((coords[i] - ce) / r) ** 2 for i, ce, r in zip(others, centre, radii)) <= 1.0
    return np.broadcast_to(inside, np.broadcast_shapes(*[np.shape(c) for c in coords]))


def segment_tube(coords, p0, p1, radius: float) -> np.ndarray:
    """Points within radius of the segment p0-p1."""
    p0, p1 = np.asarray(p0, np.float32), np.asarray(p1, np.float32)
    d = p1 - p0
    L2 = float(d @ d)
    t = sum((c - a) * b for c, a, b in zip(coords, p0, d)) / L2
    t = np.clip(t, 0.0, 1.0)
    dist2 = sum((c - (a + t * b)) ** 2 for c, a, b in zip(coords, p0, d))
    return dist2 <= radius ** 2


def distance_outside_mm(mask: np.ndarray, voxel_mm) -> np.ndarray:
    """Distance (mm) from each voxel outside mask to the mask; 0 inside."""
    return ndimage.distance_transform_edt(~mask, sampling=voxel_mm).astype(np.float32)


def distance_inside_mm(mask: np.ndarray, voxel_mm) -> np.ndarray:
    """Distance (mm) from each voxel inside mask to its surface; 0 outside."""
    return ndimage.distance_transform_edt(mask, sampling=voxel_mm).astype(np.float32)
