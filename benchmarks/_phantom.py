"""Benchmark-sized knee from the phantoms: 100 sagittal slices of 256 x 256."""
from q2mri.phantoms.simulate import case_rng, make_case


def knee_volume(nz=100, ny=256, nx=256, seed=0):
    """Labels and T1 (ms), PD, T2* (ms), B1 maps of shape (nz, ny, nx)."""
    assert ny == nx
    case = make_case("knee", case_rng(seed, 0), slices=nz, matrix=ny)
    m = case.maps
    return case.labels, m["T1"], m["PD"], m["T2s"], m["B1"]


def rician(s, sigma, rng):
    import numpy as np
    noise = sigma * (rng.standard_normal(s.shape, dtype=np.float32) + 1j * rng.standard_normal(s.shape, dtype=np.float32))
    return np.abs(s + noise).astype(np.float32)
