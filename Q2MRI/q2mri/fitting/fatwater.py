"""Confounder-corrected water-fat separation from three or more complex echoes.

Signal model (physics.gre.gre_complex; Hernando et al., papers/000 ref. 30; Yu et al.
2008): S(t) = (W + F c(t)) exp(-R2* t) exp(i 2 pi psi t), with the multi-peak fat
spectrum c(t) of physics.fat, one R2* shared by water and fat, and complex W and F.

1. Variable projection (Golub & Pereyra; Hernando et al. MRM 2008): for fixed (psi, R2*)
   W and F follow by linear least squares, so the residual depends on (psi, R2*) alone.
   It is evaluated on a grid (psi over one period 1/dTE of the echo spacing, R2* on a
   log-like grid) and minimised over R2*, leaving a residual curve in psi per voxel.
2. B0 regularisation against water/fat swaps: the curve has several local minima
   (the true field and its swap, about one fat shift away). The default chooses the field
   globally by iterative graph cuts (Hernando et al., MRM 2010;63:79; fitting.fieldmap): a
   data term (each voxel's relative residual) plus a smoothness term, minimised by jump
   moves solved exactly by max-flow. The older region growing (after Yu et al., MRM 2005:
   seeds where the best minimum is clearly better than the next, then ring by ring the
   candidate closest to the grown neighbours' field, two re-pick passes) stays available
   (field_map="region-growing"). Both rely on B0 varying smoothly compared with the fat
   shift (434 Hz at 3 T) over a voxel or two. The echo magnitudes add to the data term where
   neighbouring voxels agree on water or fat (coherent_sides, Yu et al. 2011): a field whose
   solution contradicts them costs MAGNITUDE_PENALTY more, so a whole organ cannot settle on
   the swapped smooth field (the liver of ISMRM 2012 case 12, docs/real-scans.md).
3. Levenberg-Marquardt refines (W, F, psi, R2*) per voxel on the complex model.

PDFF = 100 |F| / (|W| + |F|) (magnitude discrimination). It is the signal fat fraction:
with an SPGR readout it carries T1 bias unless the flip angle is small or the optional T1
correction (t1_correction) divides W and F by their SPGR T1 weightings.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from scipy import ndimage

from ..device import resolve_device
from ..errors import Q2MRIError
from ..physics.fat import GAMMA_BAR_MHZ_PER_T, MAIN_PEAK_PPM, fat_phasor
from ..physics.gre import gre_complex
from ..physics.spgr import spgr
from .lm import levenberg_marquardt
from .fatwater_magnitude import FAT, R2S_GRID, WATER, magnitude_sides
from .quality import fatwater_flags, with_quality
from .voxelwise import Progress, default_mask, relative_rms_residual

N_CANDIDATES = 4
MAGNITUDE_PENALTY = 0.1     # relative residual added where the field's side contradicts the magnitudes


def _psi_grid(te_s: np.ndarray, step_hz: float | None, range_hz: float | None) -> np.ndarray:
    dte = float(np.min(np.diff(np.sort(te_s))))
    period = 1.0 / dte
    half = period / 2.0 if range_hz is None else float(range_hz)
    step = step_hz or period / 200.0
    return np.arange(-half, half, step)


def _residual_curves(y: torch.Tensor, te_s: torch.Tensor, c: torch.Tensor, psi: torch.Tensor,
                     r2s: torch.Tensor, chunk: int = 2048):
    """Per voxel: residual over psi (min over R2*), the best R2* at each psi, the signal norm, and
    whether the least-squares fat exceeds the water there (|F| > |W|, the side of the ambiguity)."""
    z = (-r2s[None, :, None] + 2j * math.pi * psi[:, None, None]) * te_s[None, None, :]   # (P, R, E)
    a = torch.exp(z)
    basis = torch.stack([a, a * c], dim=-1)                                                # (P, R, E, 2)
    q, _ = torch.linalg.qr(basis)
    qh = q.conj().reshape(-1, te_s.numel(), 2)                                              # (PR, E, 2)
    pinv = torch.linalg.pinv(basis).reshape(-1, 2, te_s.numel())                            # (PR, 2, E)
    norm = (y.abs() ** 2).sum(-1)
    res, rbest, fat = [], [], []
    n_r = r2s.numel()
    for s in range(0, y.shape[0], chunk):
        yy = y[s:s + chunk]
        proj = torch.einsum("gek,ve->vgk", qh, yy)
        r = norm[s:s + chunk, None] - (proj.abs() ** 2).sum(-1)
        r = r.reshape(yy.shape[0], psi.numel(), n_r)
        val, idx = r.min(-1)
        g = torch.arange(psi.numel(), device=y.device)[None, :] * n_r + idx                 # (v, P) grid points
        wf = torch.einsum("vpke,ve->vpk", pinv[g], yy)
        res.append(val)
        rbest.append(idx)
        fat.append(wf[..., 1].abs() > wf[..., 0].abs())
    return torch.cat(res), torch.cat(rbest), norm, torch.cat(fat)


def _candidates(curve: torch.Tensor, k: int):
    """The k lowest circular local minima of each residual curve (V, P)."""
    left, right = torch.roll(curve, 1, -1), torch.roll(curve, -1, -1)
    is_min = (curve <= left) & (curve <= right)
    masked = torch.where(is_min, curve, torch.full_like(curve, math.inf))
    val, idx = torch.topk(masked, k, dim=-1, largest=False)
    # Where fewer than k minima exist, repeat the best one.
    fill = ~torch.isfinite(val)
    idx = torch.where(fill, idx[:, :1].expand_as(idx), idx)
    val = torch.where(fill, val[:, :1].expand_as(val), val)
    return val, idx


def _neighbour_mean(values: np.ndarray, weights: np.ndarray, size: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    num = ndimage.uniform_filter(values * weights, size=size, mode="constant")
    den = ndimage.uniform_filter(weights, size=size, mode="constant")
    return num, den


def regularise_field(cand_psi: np.ndarray, cand_res: np.ndarray, norm: np.ndarray, mask: np.ndarray,
                     seed_quantile: float = 0.9) -> np.ndarray:
    """Choose one candidate field per voxel by region growing; arrays are image-shaped (+K)."""
    shape = mask.shape
    size3 = tuple(3 if n > 1 else 1 for n in shape)
    size5 = tuple(5 if n > 4 else (3 if n > 1 else 1) for n in shape)
    weight = np.sqrt(np.maximum(norm, 0)) * mask
    second = np.where(np.isfinite(cand_res[..., 1]), cand_res[..., 1], norm)
    conf = np.where(mask, (second - cand_res[..., 0]) / np.maximum(norm, 1e-30), -np.inf)
    best = cand_psi[..., 0]
    chosen = np.zeros(shape, dtype=np.float64)
    done = np.zeros(shape, bool)
    while (mask & ~done).any():
        remaining = mask & ~done
        thr = np.quantile(conf[remaining], seed_quantile)
        seeds = remaining & (conf >= thr)
        chosen[seeds] = best[seeds]
        done |= seeds
        footprint = np.ones(size3, bool)
        while True:
            # Ring membership by dilation: uniform_filter's running sums leave round-off
            # far from the grown region, so den > 0 is not a safe test.
            ring = mask & ~done & ndimage.binary_dilation(done, footprint)
            if not ring.any():
                break
            num, den = _neighbour_mean(chosen, np.maximum(weight, 1e-12) * done, size3)
            if not ring.any():
                break
            pred = num[ring] / den[ring]
            k = np.abs(cand_psi[ring] - pred[:, None]).argmin(-1)
            chosen[ring] = np.take_along_axis(cand_psi[ring], k[:, None], -1)[:, 0]
            done |= ring
    for _ in range(2):  # re-pick voxels that disagree with a wider neighbourhood
        num, den = _neighbour_mean(chosen, weight, size5)
        pred = np.where(den > 0, num / np.maximum(den, 1e-30), chosen)
        k = np.abs(cand_psi - pred[..., None]).argmin(-1)
        chosen = np.where(mask, np.take_along_axis(cand_psi, k[..., None], -1)[..., 0], 0.0)
    return chosen


def coherent_sides(sides: np.ndarray, size: int = 5, agree: float = 0.7, least: int = 6) -> np.ndarray:
    """The magnitudes' sides kept only where the confident voxels around (size x size in plane) mostly say
    the same: noise makes a scattered few voxels look sure of the wrong side, an organ is sure as a whole."""
    from .fatwater_magnitude import UNSURE
    k = (1,) * (sides.ndim - 2) + (size, size)
    n = float(np.prod(k))
    w = ndimage.uniform_filter((sides == WATER).astype(np.float64), k, mode="constant") * n
    f = ndimage.uniform_filter((sides == FAT).astype(np.float64), k, mode="constant") * n
    keep = ((sides == WATER) & (w >= agree * (w + f)) & (w + f >= least)) | \
           ((sides == FAT) & (f >= agree * (w + f)) & (w + f >= least))
    return np.where(keep, sides, UNSURE).astype(sides.dtype)


def _water_fat(y: torch.Tensor, te_ms: torch.Tensor, field_t: float, psi0: torch.Tensor, r0: torch.Tensor) -> torch.Tensor:
    """Complex (W, F) per voxel (V, 2) by linear least squares at a given field and R2* (variable projection)."""
    te_s = te_ms / 1000.0
    c = fat_phasor(te_s, field_t)
    a = torch.exp((-r0[:, None] + 2j * math.pi * psi0[:, None]) * te_s[None, :])
    basis = torch.stack([a, a * c[None, :]], -1)                               # (V, E, 2)
    return torch.linalg.lstsq(basis, y[..., None]).solution[..., 0]


def _refine(y: torch.Tensor, te_ms: torch.Tensor, field_t: float, psi0: torch.Tensor, r0: torch.Tensor,
            half_period: float):
    wf = _water_fat(y, te_ms, field_t, psi0, r0)
    p0 = torch.stack([wf[:, 0].real, wf[:, 0].imag, wf[:, 1].real, wf[:, 1].imag, psi0, r0], 1)

    def factory(index):
        return lambda p: gre_complex(torch.complex(p[:, 0], p[:, 1]), torch.complex(p[:, 2], p[:, 3]),
                                     p[:, 5], p[:, 4], te_ms, field_t)

    inf = math.inf
    lower = torch.tensor([-inf, -inf, -inf, -inf, 0, 0.0], dtype=psi0.dtype, device=psi0.device).repeat(len(psi0), 1)
    upper = torch.tensor([inf, inf, inf, inf, 0, 3000.0], dtype=psi0.dtype, device=psi0.device).repeat(len(psi0), 1)
    lower[:, 4] = psi0 - half_period / 2
    upper[:, 4] = psi0 + half_period / 2
    res = levenberg_marquardt(factory, p0, y, lower, upper)
    p = res.params
    return p, relative_rms_residual(res.cost, y)


def _curves(y, te_s, field_t, psi, r2s):
    return _residual_curves(y, te_s, fat_phasor(te_s, field_t), psi, r2s)


def choose_precession(y: torch.Tensor, te_s: torch.Tensor, field_t: float, psi: torch.Tensor, r2s: torch.Tensor,
                      n: int = 3000) -> tuple[bool, float, float]:
    """Whether the data are conjugated (fat precessing the other way round), from the residuals of
    both conventions on the strongest voxels: the multi-peak fat spectrum is not symmetric, so
    the wrong convention fits fat-containing voxels clearly worse. (conjugate?, rel. residual as
    given, conjugated)."""
    norm = (y.abs() ** 2).sum(-1)
    pick = torch.argsort(norm, descending=True)[: min(n, y.shape[0])]
    sub = y[pick]
    res = []
    for yy in (sub, sub.conj()):
        curve, _, nrm, _ = _curves(yy, te_s, field_t, psi, r2s)
        res.append(float((curve.min(-1).values / nrm.clamp_min(1e-30)).mean()))
    # the wrong convention misfits every fatty voxel; water-only voxels fit both alike, so even a 5 %
    # lower mean residual is the fat speaking (ties keep this model's own convention)
    return res[1] < 0.95 * res[0], res[0], res[1]


def bipolar_phase(echoes: np.ndarray, mask: np.ndarray, readout_axis: int) -> np.ndarray:
    """The echo-alternating phase error theta(x) = a + b x of a bipolar readout (Lu et al. 2008):
    echo k carries (-1)^k theta. Its second difference over three echoes is 4 theta (a monopolar
    signal's phase is linear in TE there, up to fat's chemical shift); the median per readout
    position, fitted by a line weighted by the signal, is theta(x). Returns theta on the grid."""
    d = np.angle(echoes[..., 2] * np.conj(echoes[..., 1]) ** 2 * echoes[..., 0]) / 4.0
    mag = np.abs(echoes[..., 0])
    moved = np.moveaxis(np.where(mask, d, np.nan), readout_axis, -1)
    wmag = np.moveaxis(np.where(mask, mag, 0.0), readout_axis, -1)
    n = moved.shape[-1]
    x = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    flat = moved.reshape(-1, n)
    med = np.array([np.nanmedian(c) if np.isfinite(c).any() else np.nan for c in flat.T])
    wts = wmag.reshape(-1, n).sum(0)
    ok = np.isfinite(med) & (wts > 0)
    if ok.sum() < 2:
        return np.zeros(mask.shape)
    b, a = np.polyfit(x[ok], med[ok], 1, w=np.sqrt(wts[ok]))
    theta = a + b * x
    shape = [1] * mask.ndim
    shape[readout_axis] = n
    return np.broadcast_to(theta.reshape(shape), mask.shape).copy()


def fit_fatwater(echoes: np.ndarray, te_ms: Sequence[float], field_strength_t: float, *,
                 mask: np.ndarray | None = None, psi_step_hz: float | None = None,
                 psi_range_hz: float | None = None,
                 t1_correction: tuple[float, float, float, float] | None = None,
                 device: str = "auto", progress: Progress | None = None, spacing_mm=(1.0, 1.0, 1.0),
                 precession: str = "auto", readout: str = "monopolar", readout_axis: int = -1,
                 field_map: str = "graph-cut", report: dict | None = None) -> dict[str, np.ndarray]:
    """PDFF (%), R2* (1/s), B0 (Hz), water, fat, residual, confidence and quality from complex
    echoes (..., E).

    The field map is global: the variable-projection residual curves give candidates, region
    growing a start, and iterative graph cuts (fitting.fieldmap, Hernando et al. 2010) the
    field; Levenberg-Marquardt refines every voxel. precession: "clockwise" (fat precesses
    below water as this model writes it), "counterclockwise" (data conjugated: the other
    sign) or "auto" (the convention whose residual is clearly lower on the strongest voxels).
    readout: "bipolar" removes the echo-alternating phase error (bipolar_phase) along
    readout_axis first. t1_correction: (flip angle deg, TR ms, T1 water ms, T1 fat ms) to
    remove the SPGR T1 bias of PDFF. report (a dict) receives what was decided.
    """
    from .fieldmap import graph_cut_field
    echoes = np.asarray(echoes)
    report = report if report is not None else {}
    if not np.iscomplexobj(echoes):
        raise Q2MRIError("water-fat separation needs complex echoes: give magnitude and phase images (--phase)")
    if echoes.shape[-1] < 3 or len(te_ms) != echoes.shape[-1]:
        raise Q2MRIError(f"water-fat separation needs 3 or more echoes with one TE each (got {echoes.shape[-1]} echoes, {len(te_ms)} TEs)")
    if len(set(round(float(t), 6) for t in te_ms)) != len(te_ms):
        raise Q2MRIError(f"water-fat separation needs distinct echo times, got {list(te_ms)} ms; check EchoTime or --te")
    if precession not in ("auto", "clockwise", "counterclockwise"):
        raise Q2MRIError(f"--precession {precession!r}: choose clockwise, counterclockwise or auto")
    if readout not in ("monopolar", "bipolar"):
        raise Q2MRIError(f"--readout {readout!r}: choose monopolar or bipolar")
    dev = resolve_device(device)
    shape = echoes.shape[:-1]
    if mask is None:
        mask = default_mask(echoes, 0.05)
    mask = np.asarray(mask, bool).reshape(shape)
    if not mask.any():
        raise Q2MRIError("the water-fat mask selects no voxels; give --mask or check the magnitude images")
    if readout == "bipolar":
        theta = bipolar_phase(echoes, mask, readout_axis)
        sign = np.array([(-1.0) ** k for k in range(echoes.shape[-1])])
        echoes = echoes * np.exp(-1j * theta[..., None] * sign)
        report["bipolar_phase_rad"] = [float(theta.min()), float(theta.max())]
    idx = np.flatnonzero(mask)
    y = torch.from_numpy(echoes.reshape(-1, echoes.shape[-1])[idx].astype(np.complex128)).to(dev)
    te = torch.tensor(list(te_ms), dtype=torch.float64, device=dev)
    te_s = te / 1000.0
    psi = torch.from_numpy(_psi_grid(te_s.cpu().numpy(), psi_step_hz, psi_range_hz)).to(dev)
    r2s = torch.tensor(R2S_GRID, dtype=torch.float64, device=dev)
    conj = precession == "counterclockwise"
    if precession == "auto":
        conj, r_as, r_conj = choose_precession(y, te_s, field_strength_t, psi, r2s)
        report["precession"] = {"chosen": "counterclockwise" if conj else "clockwise",
                                "relative_residual_clockwise": r_as, "relative_residual_counterclockwise": r_conj}
    else:
        report["precession"] = {"chosen": precession}
    if conj:
        y = y.conj()
    if progress:
        progress(0, 4)
    curve, rbest, norm, fat_at = _curves(y, te_s, field_strength_t, psi, r2s)
    cval, cidx = _candidates(curve, N_CANDIDATES)
    if progress:
        progress(1, 4)

    def image(v, fill=0.0) -> np.ndarray:
        v = v.cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
        out = np.full((int(np.prod(shape)),) + tuple(v.shape[1:]), fill, dtype=np.float64)
        out[idx] = v
        return out.reshape(shape + tuple(v.shape[1:]))

    cand_psi = image(psi[cidx])
    chosen = regularise_field(cand_psi, image(cval, np.inf), image(norm), mask)
    step = float(psi[1] - psi[0])
    p_count = psi.numel()
    k0 = np.round((chosen.reshape(-1)[idx] - float(psi[0])) / step).astype(np.int64)
    cost = (curve / norm.clamp_min(1e-30)[:, None]).cpu().numpy()
    fat_shift = abs(MAIN_PEAK_PPM * GAMMA_BAR_MHZ_PER_T * field_strength_t)
    if field_map == "graph-cut":
        # The echo magnitudes say water or fat without any phase (Yu et al. 2011, MRM 66:199: complex and
        # magnitude fitting combined): where they clearly do, a field whose least-squares solution lands on
        # the other side of the ambiguity costs MAGNITUDE_PENALTY more. The graph cut then keeps a liver, a
        # fluid-filled stomach or an arm with no tissue bridge from settling on the swapped smooth field.
        sides = coherent_sides(magnitude_sides(np.abs(echoes), te_ms, field_strength_t, mask))[mask]
        fat_np = fat_at.cpu().numpy()
        wrong = ((sides == WATER)[:, None] & fat_np) | ((sides == FAT)[:, None] & ~fat_np)
        cost = cost + MAGNITUDE_PENALTY * wrong
        report["magnitude_sides"] = {"water": int((sides == WATER).sum()), "fat": int((sides == FAT).sum()),
                                     "penalty": MAGNITUDE_PENALTY}
    if field_map == "graph-cut":
        kf, info = graph_cut_field(cost, float(psi[0]), step, mask, np.sqrt(norm.cpu().numpy()), spacing_mm, k0,
                                   fat_shift_hz=fat_shift)
    elif field_map == "region-growing":                 # the earlier method alone (kept for comparison, docs)
        kf, info = k0, {"method": "region growing only"}
    else:
        raise Q2MRIError(f"field_map {field_map!r}: choose graph-cut or region-growing")
    report["graph_cut"] = info
    # where a voxel's own data clearly reject the field the smoothness chose (the swapped solution a fat
    # shift away fits with under half the residual: steep fields at air boundaries), the data win
    fs_k = int(round(fat_shift / step))
    rows = np.arange(kf.size)
    k_cut = kf.copy()
    r_here = cost[rows, kf % p_count]
    for shift in ((fs_k, -fs_k) if field_map == "graph-cut" else ()):
        r_there = cost[rows, (kf + shift) % p_count]
        better = r_there < 0.5 * r_here
        kf = np.where(better, kf + shift, kf)
        r_here = np.where(better, r_there, r_here)
    report["graph_cut"]["data_overrides"] = int((kf != k_cut).sum())
    psi0 = torch.from_numpy(float(psi[0]) + kf * step).to(dev)
    r0 = r2s[rbest.gather(1, torch.from_numpy(kf % p_count).to(dev)[:, None])[:, 0]]
    if progress:
        progress(2, 4)
    half_period = float(1.0 / np.min(np.diff(np.sort(te_s.cpu().numpy()))) / 2.0)
    p, resid = _refine(y, te, field_strength_t, psi0, r0, half_period)
    water = torch.complex(p[:, 0], p[:, 1]).abs()
    fat = torch.complex(p[:, 2], p[:, 3]).abs()
    if t1_correction is not None:
        fa, tr, t1w, t1f = (float(v) for v in t1_correction)
        water = water / float(spgr(t1w, 1.0, fa, tr))
        fat = fat / float(spgr(t1f, 1.0, fa, tr))
    total = water + fat
    pdff = torch.where(total > 0, 100.0 * fat / total, torch.zeros_like(total))
    if progress:
        progress(3, 4)
    # the solution's own evidence: its residual against the swapped alternative (a fat shift away)
    r_ch = cost[np.arange(kf.size), kf % p_count]
    r_alt = np.minimum(cost[np.arange(kf.size), (kf + fs_k) % p_count], cost[np.arange(kf.size), (kf - fs_k) % p_count])
    confidence = np.clip(1.0 - r_ch / np.maximum(r_alt, 1e-12), 0.0, 1.0)
    out = {"PDFF": pdff, "R2s": p[:, 5], "B0": p[:, 4], "water": water, "fat": fat, "residual": resid}
    maps = {k: image(v).astype(np.float32) for k, v in out.items()}
    maps["confidence"] = image(confidence).astype(np.float32)
    swapped = _swap_suspects(maps["B0"], mask, image(np.sqrt(norm.cpu().numpy())), fat_shift, spacing_mm)
    if field_map == "graph-cut":      # a voxel whose side the magnitudes confirm is no swap suspect
        confirmed = np.zeros(mask.shape, bool)
        fat_side = maps["PDFF"][mask] > 50
        confirmed[mask] = ((sides == WATER) & ~fat_side) | ((sides == FAT) & fat_side)
        swapped &= ~confirmed
    labels, n = ndimage.label(swapped)
    regions = []
    for r in range(1, n + 1):
        size = int((labels == r).sum())
        if size >= max(20, 0.005 * mask.sum()):
            z = int(np.median(np.nonzero(labels == r)[0]))
            regions.append({"voxels": size, "percent_of_mask": 100.0 * size / mask.sum(), "slice": z})
    report["swap_suspects"] = regions
    flags = (fatwater_flags(maps["R2s"], maps["B0"], image(psi0), half_period) | swapped) & mask
    if conj:                                        # B0 of the data as stored (their sign convention)
        maps["B0"] = -maps["B0"]
    if progress:
        progress(4, 4)
    return with_quality(maps, mask, flags)


def _swap_suspects(b0: np.ndarray, mask: np.ndarray, weight: np.ndarray, fat_shift: float, spacing_mm) -> np.ndarray:
    """Voxels whose field departs from a smooth field by more than 40 % of the fat shift: a water-fat
    swap moves the field by about one fat shift, while B0 itself varies smoothly. The smooth
    field is a signal-weighted quadratic in the voxel coordinates, fitted robustly (Tukey
    weights, 4 rounds), so that a swapped region does not pull it."""
    coords = np.stack(np.nonzero(mask), 1).astype(np.float64) * np.asarray(spacing_mm, float)
    if coords.shape[0] < 20:
        return np.zeros(mask.shape, bool)
    c = (coords - coords.mean(0)) / (coords.std(0) + 1e-9)
    cols = [np.ones(len(c))] + [c[:, i] for i in range(3)] + [c[:, i] * c[:, j] for i in range(3) for j in range(i, 3)]
    a = np.stack(cols, 1)
    f = b0[mask].astype(np.float64)
    w = weight[mask].astype(np.float64)
    w = w / max(w.mean(), 1e-30)
    for _ in range(4):
        coef, *_ = np.linalg.lstsq(a * np.sqrt(w)[:, None], f * np.sqrt(w), rcond=None)
        r = f - a @ coef
        u = r / (0.5 * fat_shift)
        w = (weight[mask] / max(weight[mask].mean(), 1e-30)) * np.where(np.abs(u) < 1, (1 - u ** 2) ** 2, 0.0)
    out = np.zeros(mask.shape, bool)
    out[mask] = np.abs(r) > 0.4 * fat_shift
    return out
