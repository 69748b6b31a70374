"""Benchmark: VFA T1 of a 256x256x100 four-flip-angle volume, against per-voxel curve_fit.

    .venv/bin/python benchmarks/fit_vfa.py

Prints, from one run: the project's time for the whole volume as `q2mri fit vfa` runs it
(default automatic body mask) and with every voxel fitted (background noise included),
the per-voxel scipy.optimize.curve_fit time measured on a subset and scaled to the
volume, the ratio, and the T1 error of both on the same noisy voxels. The baseline's
model is plain numpy, written out here, so that it pays no torch overhead.
"""
import argparse
import time

import numpy as np
import torch
from scipy.optimize import curve_fit

from _phantom import knee_volume, rician
from q2mri.fitting.vfa import fit_vfa
from q2mri.physics import spgr

FA = np.array([5.0, 10.0, 20.0, 30.0])
TR = 20.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", type=int, default=100)
    ap.add_argument("--subset", type=int, default=2000, help="voxels for the curve_fit baseline")
    ap.add_argument("--snr", type=float, default=100.0)
    a = ap.parse_args()
    torch.set_num_threads(2)
    rng = np.random.default_rng(1)
    lab, t1, pd, _, b1 = knee_volume(a.slices)
    b1 = np.where(b1 > 0, b1, 1.0).astype(np.float32)  # a measured B1 map covers the background too
    clean = np.stack([spgr(t1, pd, fa, TR, b1=b1) for fa in FA], -1).astype(np.float32)
    sigma = float(clean[lab > 0].max()) / a.snr
    imgs = rician(clean, sigma, rng)
    n = imgs[..., 0].size
    everything = np.ones(lab.shape, bool)
    fit_vfa(imgs[:2], FA, TR, b1=b1[:2], mask=everything[:2])  # warm-up
    t0 = time.perf_counter()
    out = fit_vfa(imgs, FA, TR, b1=b1)  # default mask, as the command line runs it
    t_ours = time.perf_counter() - t0
    fitted = int((out["T1"] > 0).sum())
    t0 = time.perf_counter()
    fit_vfa(imgs, FA, TR, b1=b1, mask=everything)
    t_all = time.perf_counter() - t0

    tissue = np.flatnonzero((lab > 0).ravel())
    pick = rng.choice(tissue, a.subset, replace=False)
    y = imgs.reshape(-1, 4)[pick].astype(np.float64)
    bb = b1.ravel()[pick].astype(np.float64)
    ref = np.empty(a.subset)
    t0 = time.perf_counter()
    for i in range(a.subset):
        def f(fa, p, t, b=bb[i]):
            a = np.radians(fa) * b
            e1 = np.exp(-TR / t)
            return p * np.sin(a) * (1 - e1) / (1 - np.cos(a) * e1)
        p, _ = curve_fit(f, FA, y[i], p0=(y[i].max() * 5, 1000.0), maxfev=2000)
        ref[i] = p[1]
    t_cf = (time.perf_counter() - t0) / a.subset * n
    truth = t1.ravel()[pick]
    ours = out["T1"].ravel()[pick]
    err = lambda e: (100 * np.median(np.abs(e / truth - 1)), 100 * np.mean(e / truth - 1))
    print(f"volume: {lab.shape[2]}x{lab.shape[1]}x{lab.shape[0]} x {len(FA)} flip angles = {n} voxels, "
          f"Rician SNR {a.snr:g}, {torch.get_num_threads()} threads")
    print(f"q2mri fit vfa (DESPOT1 + batched LM, float32), default body mask ({fitted} voxels): {t_ours:.2f} s")
    print(f"q2mri fit vfa, every voxel including background noise ({n} voxels): {t_all:.2f} s")
    print(f"scipy curve_fit per voxel: {1e3 * t_cf / n:.3f} ms/voxel -> {t_cf / 60:.1f} min for the volume (scaled from {a.subset})")
    print(f"speed-up: {t_cf / t_ours:.0f}x (default mask), {t_cf / t_all:.0f}x (every voxel)")
    print(f"T1 error on the same {a.subset} tissue voxels: q2mri median |err| {err(ours)[0]:.2f} %, bias {err(ours)[1]:+.2f} %; "
          f"curve_fit median |err| {err(ref)[0]:.2f} %, bias {err(ref)[1]:+.2f} %")
    print(f"q2mri vs curve_fit, median |difference|: {100 * np.median(np.abs(ours / ref - 1)):.4f} %")


if __name__ == "__main__":
    main()
