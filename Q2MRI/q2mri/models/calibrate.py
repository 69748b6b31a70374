"""Recalibrating a physics network's uncertainty on cases it never trained on.

The predicted Laplace scale is b = sqrt((c1 b_ale)^2 + (c2 b_epi)^2) per map (models.physicsnet):
b_ale from the network's scale head, b_epi the spread of its ensemble heads. After training,
c1 and c2 are chosen on the calibration cases of the bank (the last ones, never trained on)
so that the intervals hold what they claim: P(|y - mu| <= k b) = 1 - exp(-k) for a Laplace
distribution, i.e. 68 % within k = ln(1/0.32) and 95 % within k = ln 20. Among the pairs that
meet both coverages (within 1.5 and 1 point), the one with the largest relative SD on lesions
against the rest of the body is kept: the epistemic term is what should grow where the model
is wrong. The factors are buffers of the network (saved with its weights) and go in the card.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .quantnet import forward_any_size as _forward

K68, K95 = math.log(1 / 0.32), math.log(20.0)


def _components(net, ds, n: int, device) -> dict:
    """Per target: errors, aleatoric and epistemic b (normalised units), lesion flags, over n samples."""
    keep_sd, keep_epi = net.sd_scale.clone(), net.epi_scale.clone()
    out = {t: {"err": [], "ale": [], "epi": [], "les": []} for t in net.cfg.targets}
    net.eval()
    with torch.no_grad():
        for i in range(n):
            s = ds[i]
            x, a = s["inputs"][None].to(device), s["acq"][None].to(device)
            net.sd_scale.fill_(1.0)
            net.epi_scale.fill_(0.0)
            mean, b_ale = _forward(net, x, a)
            net.sd_scale.fill_(0.0)
            net.epi_scale.fill_(1.0)
            _, b_epi = _forward(net, x, a)
            y = s["targets"][None].to(device) / net.scales
            m = s["mask"].numpy().astype(bool)
            les = s["lesion"].numpy().astype(bool)[m]
            for j, t in enumerate(net.cfg.targets):
                out[t]["err"].append((mean - y)[0, j].abs().cpu().numpy()[m])
                out[t]["ale"].append(b_ale[0, j].cpu().numpy()[m])
                out[t]["epi"].append(b_epi[0, j].cpu().numpy()[m])
                out[t]["les"].append(les)
    net.sd_scale.copy_(keep_sd)
    net.epi_scale.copy_(keep_epi)
    return {t: {k: np.concatenate(v) for k, v in d.items()} for t, d in out.items()}


def fit_factors(err: np.ndarray, ale: np.ndarray, epi: np.ndarray, les: np.ndarray, mu: np.ndarray | None = None
                ) -> tuple[float, float, dict]:
    """(c1, c2, report) for one map (see the module docstring); a plain c1 fit when no pair meets both."""
    rng = np.random.default_rng(0)
    if err.size > 200_000:                 # a random subset (all lesion voxels kept) is plenty for two numbers
        pick = np.flatnonzero(les)
        rest = rng.choice(np.flatnonzero(~les), 200_000, replace=False)
        pick = np.concatenate([pick, rest])
        err, ale, epi, les = err[pick], ale[pick], epi[pick], les[pick]
    best, best_score = None, None
    fallback, fb_score = None, None
    for c2 in np.concatenate([[0.0], np.exp(np.linspace(np.log(0.05), np.log(20.0), 40))]):
        # for this c2, the c1 that makes the 68 % coverage exact (coverage grows with c1: bisection)
        lo, hi = 0.0, 100.0
        for _ in range(40):
            c1 = 0.5 * (lo + hi)
            b = np.sqrt((c1 * ale) ** 2 + (c2 * epi) ** 2)
            if np.mean(err <= K68 * b) < 0.68:
                lo = c1
            else:
                hi = c1
        c1 = hi
        b = np.sqrt((c1 * ale) ** 2 + (c2 * epi) ** 2)
        cov68, cov95 = float(np.mean(err <= K68 * b)), float(np.mean(err <= K95 * b))
        miss = abs(cov68 - 0.68) + abs(cov95 - 0.95)
        if fb_score is None or miss < fb_score:
            fallback, fb_score = (c1, c2, cov68, cov95), miss
        if abs(cov95 - 0.95) <= 0.01 and les.sum() > 20 and (~les).sum() > 20:
            ratio = float(np.median(b[les]) / np.median(b[~les]))
            if best_score is None or ratio > best_score:
                best, best_score = (c1, c2, cov68, cov95), ratio
    c1, c2, cov68, cov95 = best if best is not None else fallback
    return float(c1), float(c2), {"coverage68": cov68, "coverage95": cov95, "lesion_b_ratio": best_score}


def calibrate(net, task, bank: str, case_ids: list[int], samples: int = 48, seed: int = 99, device="cpu",
              randomize=None) -> dict:
    """Fit and set net.sd_scale / net.epi_scale on full slices of the bank's calibration cases,
    randomized as the training was (models.bank.Randomization), so that the intervals hold on
    stripped, cropped and coil-shaded inputs as well."""
    from .bank import NO_RANDOMIZATION, BankDataset
    ds = BankDataset(bank, task, cases=case_ids, seed=seed, patch=None, flips=False,
                     randomize=randomize or NO_RANDOMIZATION)
    comp = _components(net, ds, samples, device)
    report = {}
    for j, t in enumerate(net.cfg.targets):
        c = comp[t]
        c1, c2, rep = fit_factors(c["err"], c["ale"], c["epi"], c["les"])
        net.sd_scale[j] = c1
        net.epi_scale[j] = c2
        report[t] = {"aleatoric_factor": c1, "epistemic_factor": c2, **rep}
    return report


RECAL_SEED = 20011       # subjects never drawn by training (bank), evaluation (10007+) or the tests (30011+, 40013+)


def recalibrate_on_subjects(model_dir, task_name: str, cases: int = 3, slices: int = 6, matrix: int = 128) -> dict:
    """Scale each map's uncertainty so that its 68 % Laplace interval holds 68 % of the truths on
    whole simulated subjects formed in k-space (as evaluation and users see them): the bank's
    calibration slices come from the same simulator but are few, and held-out subjects showed
    68 % intervals holding ~55 %. The factor f per map multiplies both sd_scale and epi_scale
    (b = sqrt((c1 b_ale)^2 + (c2 b_epi)^2) scales by f); the weights file and its card's SHA256
    are rewritten. Returns {map: {factor, cumulative_factor, coverage68_before, coverage95_after}};
    cumulative_factor is the product over recalibrations of these same weights since training."""
    import json
    from pathlib import Path

    from safetensors.torch import load_file, save_file

    from ..phantoms.imaging import Readout
    from ..phantoms.protocols import Protocol
    from ..phantoms.simulate import case_rng, simulate_case
    from .predict import predict
    from .registry import sha256
    from .tasks import TASKS
    model_dir = Path(model_dir)
    t = TASKS[task_name]
    imgs = tuple(s.image for s in t.inputs[: len(t.inputs) - t.optional_inputs])
    ratios: dict[str, list] = {k: [] for k in t.targets}
    for ph in t.phantoms:
        for i in range(cases):
            case, sim, _ = simulate_case(ph, Protocol("recal", ph, imgs, "recalibration"), case_rng(RECAL_SEED + i, 0),
                                         100.0, slices=slices, matrix=None if ph == "brain" else matrix,
                                         readout=Readout(2))
            pred = predict(task_name, [s.data for s in sim], [s.image.acq for s in sim], model=str(model_dir),
                           device="cpu", refine_steps=0)
            for k in t.targets:
                mu, sd, truth = pred.maps[k], pred.maps[f"{k}_sd"], case.maps[k]
                m = (case.maps["PD"] > 0) & (mu != 0) & np.isfinite(mu) & np.isfinite(sd) & (sd > 0)
                ratios[k].append(np.abs(mu - truth)[m] / (K68 * sd[m] / math.sqrt(2.0)))
    weights = model_dir / "weights.safetensors"
    card_path = model_dir / "card.json"
    card = json.loads(card_path.read_text())
    # factors compound on weights an earlier recalibration wrote (its record is in their card; the
    # checksum ties card and weights); training writes a fresh card, so a new run starts at 1
    earlier = card.get("recalibration", {}).get("per_map", {})
    state = load_file(str(weights))
    report = {}
    for j, k in enumerate(t.targets):
        r = np.concatenate(ratios[k])
        f = float(np.quantile(r, 0.68))
        before = earlier.get(k, {})
        report[k] = {"factor": f, "cumulative_factor": f * before.get("cumulative_factor", before.get("factor", 1.0)),
                     "coverage68_before": float((r <= 1).mean()),
                     "coverage95_after": float((r / f <= K95 / K68).mean())}
        for name in ("sd_scale", "epi_scale"):
            state[name][j] = state[name][j] * f
    save_file(state, str(weights))
    card["sha256"] = sha256(weights)
    card.setdefault("calibration", {})
    card["recalibration"] = {"subjects": f"{cases} per phantom, seeds {RECAL_SEED}+", "per_map": report}
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return report
