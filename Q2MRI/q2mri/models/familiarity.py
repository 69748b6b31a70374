"""Is this input like what the network learned? Its answer must not depend on the orientation.

A network asked about an input far from its training answers anyway, often with full
confidence: its ensemble heads agree and the consistency residual stays small (issue
[generalize]: a skull-stripped brain made a head-trained network halve T1 with intervals that
covered none of the truths; a T2-weighted image given as an SPGR gets a T1 map as confident as a
real one). A density on the network's pooled features did not tell these apart here (measured:
a T2-weighted brain, a FLAIR and an unseen abdomen at the same distance as held-out heads). What
does is the invariance the training taught: every sample is flipped and turned at random
(models.bank.Randomization), so on familiar inputs the maps of the slice and of the slice turned
by 180 degrees agree to about 2 % in T1, and on unfamiliar ones they do not (3x that on a
T2-weighted or FLAIR brain). This is test-time augmentation as an uncertainty signal (Wang et al.
2019, Neurocomputing 338:34, "Aleatoric uncertainty estimation with test-time augmentation").

The score of a slice is the median over its mask of |ln(m / m_turned)| of the task's first map;
the limit is MARGIN times its 90th percentile on full slices of the bank's calibration cases
(never trained on), randomized as the training was, stored in the model card: the 99th
percentile there belongs to the most extreme crops and zooms, and 1.5x it let a FLAIR and a
T2-weighted brain given as SPGR pass (they score 2-3.5x a held-out head); a few per cent of
heavily cropped familiar slices are warned about instead. Beyond it a slice
is "unfamiliar": models.predict says so, widens its SD by the score over the limit and marks its
voxels 2 in quality. To keep prediction fast only up to CHECKED slices per volume are turned;
the others take the score of the nearest checked slice.
"""
from __future__ import annotations

import numpy as np
import torch

MARGIN = 1.25        # over the 90th percentile of familiar, randomized calibration slices
CHECKED = 8


def turned_disagreement(net, x: torch.Tensor, acq: torch.Tensor, mask: torch.Tensor,
                        mean: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) median over each slice's mask of |ln(m / m_turned)| of the first map (normalised
    inputs x; mean: the network's own answer on x if already computed)."""
    with torch.no_grad():
        if mean is None:
            mean, _ = net(x, acq)
        turned, _ = net(x.flip(-2, -1), acq)
        turned = turned.flip(-2, -1)
    a, b = mean[:, 0].abs().clamp_min(1e-3), turned[:, 0].abs().clamp_min(1e-3)
    d = (torch.log(a) - torch.log(b)).abs()
    out = torch.zeros(x.shape[0])
    for i in range(x.shape[0]):
        m = mask[i]
        out[i] = d[i][m].median() if bool(m.any()) else 0.0
    return out


def checked_slices(z: int) -> np.ndarray:
    return np.unique(np.linspace(0, z - 1, min(z, CHECKED)).round().astype(int))


def spread_to_all(z: int, checked: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each slice takes the score of its nearest checked slice."""
    nearest = np.abs(np.arange(z)[:, None] - checked[None, :]).argmin(1)
    return scores[nearest]


def fit_familiarity(net, task, bank: str, cal_ids: list[int], *, samples: int = 80, randomize=None,
                    seed: int = 77) -> dict:
    """The limit of the score on full slices of the bank's calibration cases, randomized as in
    training, the optional inputs dropped at random as in training; for the model card."""
    from .bank import NO_RANDOMIZATION, BankDataset
    from .train import _finish_batch
    net.eval()
    rng = np.random.default_rng(seed)
    ds = BankDataset(bank, task, cases=cal_ids, seed=seed, patch=None, flips=True, randomize=randomize or NO_RANDOMIZATION)
    scores = []
    for i in range(samples):
        s = ds[i]
        x, a, _, m = _finish_batch({k: s[k][None] for k in ("inputs", "acq", "targets", "mask")}, task, rng, "cpu")
        scores.append(float(turned_disagreement(net, x, a, m)[0]))
    q = np.quantile(scores, [0.5, 0.9, 0.99])
    return {"limit": float(MARGIN * q[1]), "median": float(q[0]), "p90": float(q[1]), "p99": float(q[2]),
            "slices": samples, "method": "median |ln(T/T_turned)| of the first map between a slice and the slice "
            f"turned by 180 degrees (test-time augmentation); limit {MARGIN} x the 90th percentile on the bank's "
            "calibration cases (randomized as trained)"}
