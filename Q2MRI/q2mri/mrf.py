"""MR fingerprinting, the route of papers/002: a FISP schedule, a dictionary of fingerprints over
(T1, T2, B1) from the extended-phase-graph simulator (physics.epg), compressed by SVD
(McGivney et al., IEEE TMI 2014; papers/002 keeps the first singular vectors), and matching by
the maximum normalised inner product (Ma et al., Nature 2013): T1, T2 (and B1 where the
dictionary spans it) of the best atom, PD = <s, d> / <d, d>, and the match (the normalised inner
product, 1 = perfect) per voxel. Fingerprints are also synthesised from maps (papers/002
synthesises MRF from MPRAGE)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import Q2MRIError
from .physics.epg import fisp_epg


@dataclass
class Schedule:
    flip_deg: np.ndarray
    tr_ms: np.ndarray
    te_ms: float = 2.0
    inversion_ti_ms: float | None = 20.0

    def to_json(self) -> dict:
        return {"flip_deg": [float(x) for x in self.flip_deg], "tr_ms": [float(x) for x in self.tr_ms],
                "te_ms": self.te_ms, "inversion_ti_ms": self.inversion_ti_ms}


def default_schedule(n: int = 500, seed: int = 0) -> Schedule:
    """A FISP-MRF train after Jiang et al. 2015: inversion (TI 20 ms), flip angles in half-sine
    lobes of 10-60 deg with a small random jitter, TR 11.5-14.5 ms (Perlin-like smooth variation)."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    lobe = 100
    peaks = np.array([60.0, 40.0, 55.0, 30.0, 50.0] * (n // (5 * lobe) + 1))
    fa = 10.0 + (peaks[i // lobe] - 10.0) * np.sin(np.pi * (i % lobe) / lobe) + rng.uniform(-1, 1, n)
    tr = 13.0 + 1.5 * np.sin(2 * np.pi * i / 250.0) * np.cos(2 * np.pi * i / 90.0)
    return Schedule(np.clip(fa, 1.0, 90.0), tr, 2.0, 20.0)


def read_schedule(path: str) -> Schedule:
    """'default', or a JSON file {"flip_deg": [...], "tr_ms": [...] or one value, "te_ms": 2,
    "inversion_ti_ms": 20 or null}, or a CSV with columns flip_deg,tr_ms."""
    if path == "default":
        return default_schedule()
    p = Path(path)
    if not p.is_file():
        raise Q2MRIError(f"schedule {p} does not exist; give a JSON or CSV file, or 'default'")
    try:
        if p.suffix.lower() == ".csv":
            rows = np.genfromtxt(p, delimiter=",", names=True)
            return Schedule(np.atleast_1d(rows["flip_deg"]).astype(float), np.atleast_1d(rows["tr_ms"]).astype(float))
        d = json.loads(p.read_text())
        fa = np.asarray(d["flip_deg"], float)
        tr = np.broadcast_to(np.asarray(d["tr_ms"], float), fa.shape).copy()
        s = Schedule(fa, tr, float(d.get("te_ms", 2.0)), d.get("inversion_ti_ms", 20.0))
    except (KeyError, ValueError, TypeError, json.JSONDecodeError) as e:
        raise Q2MRIError(f"schedule {p} is not readable ({e}); give flip_deg and tr_ms (ms) lists") from None
    if s.flip_deg.size < 10 or (s.tr_ms <= s.te_ms).any() or (s.flip_deg < 0).any() or (s.flip_deg > 180).any():
        raise Q2MRIError(f"schedule {p}: needs >= 10 pulses, flip angles 0-180 deg and every TR above TE (ms)")
    return s


def simulate(schedule: Schedule, t1_ms, t2_ms, b1=1.0, device=None, chunk: int = 4096) -> np.ndarray:
    """Fingerprints (n, n_TR) complex64 for parameters given per entry (M0 = 1)."""
    t1 = np.array(t1_ms, np.float64).reshape(-1)
    t2 = np.array(np.broadcast_to(np.asarray(t2_ms, np.float64), t1.shape)).reshape(-1)
    b = np.array(np.broadcast_to(np.asarray(b1, np.float64), t1.shape)).reshape(-1)
    out = []
    for a in range(0, t1.size, chunk):
        sl = slice(a, a + chunk)
        out.append(fisp_epg(t1[sl], t2[sl], schedule.flip_deg, schedule.tr_ms, schedule.te_ms, b[sl],
                            schedule.inversion_ti_ms, device=device).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, schedule.flip_deg.size), np.complex64)


def log_grid(lo: float, hi: float, step: float) -> np.ndarray:
    """lo .. hi with a relative step (0.05 = 5 %)."""
    n = int(np.ceil(np.log(hi / lo) / np.log1p(step))) + 1
    return lo * (1 + step) ** np.arange(n)


@dataclass
class Dictionary:
    schedule: Schedule
    params: np.ndarray          # (n_atoms, 3): T1 ms, T2 ms, B1
    basis: np.ndarray           # (n_TR, rank) complex: the SVD's temporal basis
    atoms: np.ndarray           # (n_atoms, rank) complex: the compressed, unit-norm atoms
    norms: np.ndarray           # (n_atoms,) norm of each uncompressed atom (for PD)
    energy: float               # fraction of the dictionary's energy the rank keeps

    def save(self, path: str | Path) -> None:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp.npz")
        np.savez_compressed(tmp, params=self.params, basis=self.basis, atoms=self.atoms, norms=self.norms,
                            energy=self.energy, schedule=json.dumps(self.schedule.to_json()))
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "Dictionary":
        p = Path(path)
        if not p.is_file():
            raise Q2MRIError(f"dictionary {p} does not exist; make one with 'q2mri mrf dictionary'")
        try:
            d = np.load(p, allow_pickle=False)
            sched = json.loads(str(d["schedule"]))
            s = Schedule(np.asarray(sched["flip_deg"]), np.asarray(sched["tr_ms"]), sched["te_ms"], sched["inversion_ti_ms"])
            return cls(s, d["params"], d["basis"], d["atoms"], d["norms"], float(d["energy"]))
        except (KeyError, ValueError, OSError) as e:
            raise Q2MRIError(f"{p} is not a q2mri MRF dictionary ({e}); make one with 'q2mri mrf dictionary'") from None


def build_dictionary(schedule: Schedule, t1_ms: np.ndarray, t2_ms: np.ndarray, b1: np.ndarray = np.array([1.0]),
                     rank: int = 15, device=None) -> Dictionary:
    """Every (T1, T2, B1) with T2 < T1, simulated, then compressed to `rank` singular vectors."""
    g1, g2, gb = np.meshgrid(t1_ms, t2_ms, b1, indexing="ij")
    keep = g2 < g1
    params = np.stack([g1[keep], g2[keep], gb[keep]], 1)
    d = simulate(schedule, params[:, 0], params[:, 1], params[:, 2], device=device)
    norms = np.linalg.norm(d, axis=1)
    dn = d / norms[:, None]
    # temporal basis: right singular vectors of the normalised dictionary (McGivney et al. 2014)
    _, sv, vh = np.linalg.svd(dn, full_matrices=False)
    rank = int(min(rank, vh.shape[0]))
    basis = vh[:rank].conj().T                               # (n_TR, rank)
    atoms = dn @ basis
    energy = float((sv[:rank] ** 2).sum() / (sv ** 2).sum())
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    return Dictionary(schedule, params, basis.astype(np.complex64), atoms.astype(np.complex64), norms.astype(np.float32),
                      energy)


def match(dic: Dictionary, signals: np.ndarray, chunk: int = 4096) -> dict[str, np.ndarray]:
    """Per signal (n, n_TR): T1, T2, B1 of the best atom, PD and the match (normalised inner product)."""
    if signals.shape[-1] != dic.basis.shape[0]:
        raise Q2MRIError(f"the series has {signals.shape[-1]} time points but the dictionary's schedule has "
                         f"{dic.basis.shape[0]}; use the dictionary made for this acquisition")
    n = signals.shape[0]
    out = {k: np.zeros(n, np.float32) for k in ("T1", "T2", "B1", "PD", "match")}
    atoms_h = torch.from_numpy(dic.atoms.conj().T.copy())         # (rank, n_atoms)
    for a in range(0, n, chunk):
        x = torch.from_numpy((signals[a:a + chunk].astype(np.complex64) @ dic.basis))   # (c, rank)
        norm = torch.linalg.norm(x, dim=1).clamp_min(1e-30)
        ip = (x @ atoms_h).abs()                                                         # (c, n_atoms)
        best = ip.argmax(1)
        val = ip.gather(1, best[:, None])[:, 0]
        b = best.numpy()
        out["T1"][a:a + chunk] = dic.params[b, 0]
        out["T2"][a:a + chunk] = dic.params[b, 1]
        out["B1"][a:a + chunk] = dic.params[b, 2]
        # |<x, d>| / |d|^2 with d = norm_d * atom: PD = |<x, atom>| / norm_d
        out["PD"][a:a + chunk] = (val / torch.from_numpy(dic.norms[b])).numpy()
        out["match"][a:a + chunk] = (val / norm).numpy()
    return out
