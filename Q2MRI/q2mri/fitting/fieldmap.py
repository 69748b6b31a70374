"""Global B0 field map for water-fat separation by iterative graph cuts (Hernando et al., MRM
2010;63:79-90), on the variable-projection residual of q2mri.fitting.fatwater.

Every voxel has a residual curve r(psi): the least-squares misfit of the water-fat model after
W, F (linear) and R2* (grid) are optimised, for each field psi of a grid of one period 1/dTE
(it repeats with that period). The true field is one of its minima, and so is the water-fat
swapped one, about a fat shift away. The field map f minimises

    E(f) = sum_i r_i(f_i) / |y_i|^2  +  lambda sum_(i,j) w_ij ((f_i - f_j) / (sigma d_ij))^2

over a field range of several periods (the curve is read modulo the period, so f may exceed
it where B0 does, e.g. near air): a data term (the relative residual of each voxel) and a
smoothness term over 6-neighbours, weighted by w_ij = sqrt(m_i m_j) / mean(m) (m the signal
magnitude: noise voxels follow their neighbours, strong ones their data) and by the distance
d_ij (mm). E is minimised by jump moves: for a step D, every voxel either keeps f_i or takes
f_i + D, a binary problem whose pairwise terms are submodular (2 d^2 <= (d - D)^2 + (d + D)^2),
solved exactly by a max-flow / min-cut (PyMaxflow, Boykov and Kolmogorov 2004). Steps run from
a period and the fat shift down to a few grid steps, both signs, for a few rounds; a round
that lowers E by less than 0.01 % stops. Parameters (documented in the README): lambda 0.05,
sigma 25 Hz/mm, 3 rounds.
"""
from __future__ import annotations

import numpy as np

LAMBDA = 0.05
SIGMA_HZ_PER_MM = 25.0
ROUNDS = 3


def neighbour_pairs(mask: np.ndarray, spacing_mm) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, d_mm) of 6-neighbour pairs inside the mask, i and j indexing the masked voxels in C order."""
    idx = -np.ones(mask.shape, np.int64)
    idx[mask] = np.arange(int(mask.sum()))
    ii, jj, dd = [], [], []
    for ax in range(mask.ndim):
        if mask.shape[ax] < 2:
            continue
        a = np.take(idx, range(0, mask.shape[ax] - 1), axis=ax)
        b = np.take(idx, range(1, mask.shape[ax]), axis=ax)
        ok = (a >= 0) & (b >= 0)
        ii.append(a[ok])
        jj.append(b[ok])
        dd.append(np.full(int(ok.sum()), float(spacing_mm[ax])))
    if not ii:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(ii), np.concatenate(jj), np.concatenate(dd)


def _energy(k, cost, step_hz, pi, pj, wp):
    p = cost.shape[1]
    data = cost[np.arange(k.size), k % p].sum()
    d = (k[pi] - k[pj]) * step_hz
    return data + (wp * d * d).sum()


def graph_cut_field(cost: np.ndarray, psi0_hz: float, step_hz: float, mask: np.ndarray, magnitude: np.ndarray,
                    spacing_mm, k_init: np.ndarray, *, fat_shift_hz: float, lam: float | None = None,
                    sigma: float | None = None, rounds: int | None = None) -> tuple[np.ndarray, dict]:
    """Field index per masked voxel (f = psi0 + k step, k any integer) minimising E (module docstring).

    cost: (V, P) relative residual per masked voxel over one period of P grid steps;
    k_init: (V,) starting indices; magnitude: (V,) signal magnitude of the masked voxels."""
    import maxflow
    lam = LAMBDA if lam is None else lam
    sigma = SIGMA_HZ_PER_MM if sigma is None else sigma
    rounds = ROUNDS if rounds is None else rounds
    v, p = cost.shape
    pi, pj, dmm = neighbour_pairs(mask, spacing_mm)
    m = np.asarray(magnitude, np.float64)
    w = np.sqrt(np.maximum(m[pi], 0) * np.maximum(m[pj], 0)) / max(float(m.mean()), 1e-30)
    wp = lam * w / (sigma * dmm) ** 2                                  # per Hz^2
    k = np.asarray(k_init, np.int64).copy()
    rows = np.arange(v)
    period = p * step_hz
    steps_hz = [period, fat_shift_hz, period - fat_shift_hz, fat_shift_hz / 2, period / 4, period / 8, period / 16,
                period / 32]
    steps = sorted({max(1, int(round(s / step_hz))) for s in steps_hz}, reverse=True)
    energy = _energy(k, cost, step_hz, pi, pj, wp)
    history = [energy]
    for _ in range(rounds):
        start = energy
        for s in steps:
            for sign in (1, -1):
                jump = sign * s
                u0 = cost[rows, k % p]                                # keep
                u1 = cost[rows, (k + jump) % p]                       # jump
                d = (k[pi] - k[pj]) * step_hz
                dj = jump * step_hz
                a = wp * d * d                                         # (keep, keep) and (jump, jump)
                b = wp * (d - dj) ** 2                                 # i keeps, j jumps
                c = wp * (d + dj) ** 2                                 # i jumps, j keeps
                # E = A + (C - A) x_i + (A - C) x_j + (B + C - 2A) (1 - x_i) x_j   (D = A)
                un0, un1 = u0.copy(), u1.copy()
                np.add.at(un1, pi, c - a)
                np.add.at(un1, pj, a - c)
                base = np.minimum(un0, un1)
                g = maxflow.Graph[float]()
                nodes = g.add_nodes(v)
                g.add_grid_tedges(nodes, un1 - base, un0 - base)       # source cap = cost of label 1, sink = label 0
                g.add_edges(nodes[pi], nodes[pj], np.maximum(b + c - 2 * a, 0.0), np.zeros(pi.size))
                g.maxflow()
                move = g.get_grid_segments(nodes)                      # True: sink side = label 1 = jump
                if move.any():
                    trial = k + jump * move
                    e = _energy(trial, cost, step_hz, pi, pj, wp)
                    if e < energy:
                        k, energy = trial, e
        history.append(energy)
        if start - energy <= 1e-4 * abs(start):
            break
    return k, {"energy": history, "lambda": lam, "sigma_hz_per_mm": sigma, "steps_hz": [s * step_hz for s in steps]}
