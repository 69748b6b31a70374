"""A benchmark-sized phantom: the sample knee slab's tissues on a large grid."""
import numpy as np

from q2mri.sample import TISSUES, knee_labels


def knee_volume(nz=100, ny=256, nx=256, seed=0):
    """Labels and T1 (ms), PD, T2* (ms), B1 maps of shape (nz, ny, nx)."""
    rng = np.random.default_rng(seed)
    lab = knee_labels(ny, nx, nz)
    t1, pd, t2s = (np.zeros(lab.shape, np.float32) for _ in range(3))
    for k, (_, a, b, c) in TISSUES.items():
        sel = lab == k
        t1[sel], t2s[sel], pd[sel] = a, b, c
    t1 *= rng.uniform(0.95, 1.05, t1.shape).astype(np.float32)
    z, y, x = np.meshgrid(np.linspace(-1, 1, nz), np.linspace(-1, 1, ny), np.linspace(-1, 1, nx), indexing="ij")
    b1 = (0.9 + 0.18 * np.exp(-(x ** 2 + y ** 2) / 0.5) + 0.08 * x).astype(np.float32)
    return lab, t1, pd, t2s, b1


def rician(s, sigma, rng):
    noise = sigma * (rng.standard_normal(s.shape, dtype=np.float32) + 1j * rng.standard_normal(s.shape, dtype=np.float32))
    return np.abs(s + noise).astype(np.float32)
