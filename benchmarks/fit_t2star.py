"""Benchmark: T2*/R2* of a 256x256x100 six-echo volume (knee-t2star protocol), against
per-voxel curve_fit.

    .venv/bin/python benchmarks/fit_t2star.py
"""
import argparse
import time

import numpy as np
import torch
from scipy.optimize import curve_fit

from _phantom import knee_volume, rician
from q2mri.fitting.relaxation import fit_t2star

TE = np.array([0.032, 4.4, 8.8, 13.2, 17.6, 22.0])  # papers/000 A.1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", type=int, default=100)
    ap.add_argument("--subset", type=int, default=2000)
    ap.add_argument("--snr", type=float, default=100.0)
    a = ap.parse_args()
    torch.set_num_threads(2)
    rng = np.random.default_rng(2)
    lab, _, pd, t2s, _ = knee_volume(a.slices)
    t2s = np.where(lab > 0, t2s, 1.0).astype(np.float32)
    clean = (pd[..., None] * np.exp(-TE / t2s[..., None])).astype(np.float32)
    imgs = rician(clean, float(clean.max()) / a.snr, rng)
    n = lab.size
    fit_t2star(imgs[:2], TE, mask=np.ones(lab[:2].shape, bool))
    t0 = time.perf_counter()
    out = fit_t2star(imgs, TE)
    t_ours = time.perf_counter() - t0
    fitted = int((out["T2s"] > 0).sum())
    t0 = time.perf_counter()
    fit_t2star(imgs, TE, mask=np.ones(lab.shape, bool))
    t_all = time.perf_counter() - t0
    tissue = np.flatnonzero(((lab > 0) & (lab != 4)).ravel())  # cortical bone (T2* 0.5 ms) has no signal past TE 1
    pick = rng.choice(tissue, a.subset, replace=False)
    y = imgs.reshape(-1, TE.size)[pick].astype(np.float64)
    ref = np.empty(a.subset)
    t0 = time.perf_counter()
    for i in range(a.subset):
        p, _ = curve_fit(lambda te, s0, t: s0 * np.exp(-te / t), TE, y[i], p0=(y[i][0], 20.0), maxfev=2000)
        ref[i] = p[1]
    t_cf = (time.perf_counter() - t0) / a.subset * n
    truth, ours = t2s.ravel()[pick], out["T2s"].ravel()[pick]
    err = lambda e: (100 * np.median(np.abs(e / truth - 1)), 100 * np.mean(e / truth - 1))
    print(f"volume: {lab.shape[2]}x{lab.shape[1]}x{lab.shape[0]} x {TE.size} echoes = {n} voxels, Rician SNR {a.snr:g}")
    print(f"q2mri fit t2star, default body mask ({fitted} voxels): {t_ours:.2f} s; every voxel: {t_all:.2f} s")
    print(f"scipy curve_fit per voxel: {1e3 * t_cf / n:.3f} ms/voxel -> {t_cf / 60:.1f} min for the volume")
    print(f"speed-up: {t_cf / t_ours:.0f}x (default mask), {t_cf / t_all:.0f}x (every voxel)")
    print(f"T2* error on {a.subset} tissue voxels: q2mri median |err| {err(ours)[0]:.2f} %, bias {err(ours)[1]:+.2f} %; "
          f"curve_fit median |err| {err(ref)[0]:.2f} %, bias {err(ref)[1]:+.2f} %")
    print(f"q2mri vs curve_fit, median |difference|: {100 * np.median(np.abs(ours / ref - 1)):.4f} %")


if __name__ == "__main__":
    main()
