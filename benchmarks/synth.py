"""Benchmark: contrast synthesis speed (the GUI slider's hot path).

    .venv/bin/python benchmarks/synth.py
"""
import time

import numpy as np
import torch

from q2mri import Acquisition
from q2mri.synthesis import synthesize

PROTOCOLS = {
    "spgr": Acquisition(flip_angle_deg=15, tr_ms=20),
    "gre": Acquisition(flip_angle_deg=16, tr_ms=28, te_ms=8.8),
    "se": Acquisition(tr_ms=3000, te_ms=80),
    "ir": Acquisition(tr_ms=5000, ti_ms=400),
    "flair": Acquisition(tr_ms=9000, ti_ms=2500, te_ms=120),
    "mprage": Acquisition(flip_angle_deg=9, tr_ms=1900, ti_ms=900, te_ms=2.93, echo_spacing_ms=7, n_excitations=176),
}


def timed(fn, reps):
    fn()
    best = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(best))


def main():
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    shape = (100, 256, 256)
    maps = {"T1": rng.uniform(300, 3000, shape), "PD": rng.uniform(0.5, 1, shape), "T2": rng.uniform(30, 200, shape),
            "T2s": rng.uniform(10, 80, shape), "B1": rng.uniform(0.7, 1.3, shape)}
    maps = {k: v.astype(np.float32) for k, v in maps.items()}
    sl = {k: np.ascontiguousarray(v[50]) for k, v in maps.items()}
    print(f"{'sequence':8s} {'256x256 slice':>14s} {'256x256x100':>12s}  (median ms, float32 numpy in/out, 2 threads)")
    for seq, acq in PROTOCOLS.items():
        t_sl = timed(lambda: synthesize(sl, seq, acq), 50)
        t_vol = timed(lambda: synthesize(maps, seq, acq), 5)
        print(f"{seq:8s} {t_sl:14.2f} {t_vol:12.1f}")


if __name__ == "__main__":
    main()
