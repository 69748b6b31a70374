"""Agreement between two measurements: Lin's CCC (with a clustered bootstrap) and Bland-Altman.

CCC (Lin, Biometrics 1989): rho_c = 2 s_xy / (s_x^2 + s_y^2 + (mean_x - mean_y)^2) with
population (1/n) moments. papers/002 reports it with 95 % confidence limits from a
clustered bootstrap (10,000 replicates): whole clusters (subjects) are drawn with
replacement so that correlated regions of one subject stay together.
Bland-Altman (Bland & Altman, Lancet 1986): bias = mean(a - b), limits of agreement
bias +- 1.96 SD(a - b) (sample SD).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import Q2MRIError


def _ccc_from_sums(n, sx, sy, sxx, syy, sxy):
    mx, my = sx / n, sy / n
    vx, vy = sxx / n - mx * mx, syy / n - my * my
    cov = sxy / n - mx * my
    return 2 * cov / (vx + vy + (mx - my) ** 2)


def ccc(x, y) -> float:
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    if x.size != y.size or x.size < 2:
        raise Q2MRIError("CCC needs two paired samples of the same length (2 or more)")
    return float(_ccc_from_sums(x.size, x.sum(), y.sum(), (x * x).sum(), (y * y).sum(), (x * y).sum()))


def ccc_bootstrap(x, y, clusters=None, n_boot: int = 10000, seed: int = 0, level: float = 0.95):
    """(CCC, lower, upper): percentile interval of a clustered bootstrap.

    clusters: one label per pair (e.g. the subject); None treats every pair as a cluster.
    """
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    labels = np.arange(x.size) if clusters is None else np.asarray(clusters).ravel()
    uniq, inv = np.unique(labels, return_inverse=True)
    c = uniq.size
    sums = np.zeros((c, 6))
    for col, v in enumerate((np.ones_like(x), x, y, x * x, y * y, x * y)):
        sums[:, col] = np.bincount(inv, weights=v, minlength=c)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(c, np.full(c, 1.0 / c), size=n_boot).astype(np.float64)  # (B, C)
    agg = counts @ sums                                                                  # (B, 6)
    reps = _ccc_from_sums(*agg.T)
    alpha = (1 - level) / 2
    lo, hi = np.nanquantile(reps, [alpha, 1 - alpha])
    return ccc(x, y), float(lo), float(hi)


@dataclass
class BlandAltman:
    n: int
    bias: float
    sd: float
    loa_lower: float
    loa_upper: float
    relative: bool

    def as_dict(self) -> dict:
        return asdict(self)


def bland_altman(a, b, relative: bool = False) -> BlandAltman:
    """Bias and 95 % limits of agreement of a - b (or of 100 (a - b) / mean(a, b) when relative)."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    if a.size != b.size or a.size < 2:
        raise Q2MRIError("Bland-Altman needs two paired samples of the same length (2 or more)")
    d = a - b
    if relative:
        d = 100.0 * d / ((a + b) / 2.0)
    bias, sd = float(d.mean()), float(d.std(ddof=1))
    return BlandAltman(a.size, bias, sd, bias - 1.96 * sd, bias + 1.96 * sd, relative)


def bland_altman_plot(a, b, path, *, label: str = "", unit: str = "", relative: bool = False, title: str = ""):
    """Write a Bland-Altman PNG (mean on x, difference on y, bias and limits drawn)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    st = bland_altman(a, b, relative)
    mean = (a + b) / 2
    diff = 100 * (a - b) / mean if relative else a - b
    du = "%" if relative else unit
    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=110)
    ax.scatter(mean, diff, s=8, alpha=0.6, color="#3060a0", edgecolors="none")
    for v, ls, txt in ((st.bias, "-", f"bias {st.bias:.3g}"), (st.loa_upper, "--", f"+1.96 SD {st.loa_upper:.3g}"),
                       (st.loa_lower, "--", f"-1.96 SD {st.loa_lower:.3g}")):
        ax.axhline(v, color="#c03030", ls=ls, lw=1)
        ax.text(0.01, v, txt, va="bottom", ha="left", fontsize=7, color="#c03030",
                transform=ax.get_yaxis_transform())
    ax.set_xlabel(f"mean of {label} [{unit}]" if unit else f"mean of {label}")
    ax.set_ylabel(f"difference [{du}]" if du else "difference")
    ax.set_title(title or f"Bland-Altman {label} (n = {st.n})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return st
