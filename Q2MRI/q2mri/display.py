"""How each map is shown: colour table, display range and legend text.

Colour maps follow the ISMRM relaxometry recommendation (Fuderer et al., MRM 2025):
lipari for T1 (and R1), navia for T2, T2* and R2*. B0 is signed, so it gets a diverging
map (vik); PDFF a sequential one (lajolla: dark at 0 %, bright for fat); B1 and PD the
perceptually uniform batlow. The 256-entry tables come from the cmcrameri package files,
not from hand-typed values. Ranges are typical tissue ranges at 3 T.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

from .maps import map_unit

COLORMAP = {"T1": "lipari", "T2": "navia", "T2s": "navia", "R2s": "navia", "B0": "vik",
            "PDFF": "lajolla", "B1": "batlow", "PD": "batlow"}
DISPLAY_RANGE = {"T1": (0.0, 2000.0), "T2": (0.0, 150.0), "T2s": (0.0, 80.0), "R2s": (0.0, 200.0),
                 "B0": (-200.0, 200.0), "PDFF": (0.0, 40.0), "B1": (0.6, 1.4), "PD": (0.0, 1.0)}


@lru_cache(maxsize=None)
def colormap_table(name: str) -> np.ndarray:
    """(256, 3) RGB in 0..1 from cmcrameri's table; a '_r' suffix reverses it."""
    base, rev = (name[:-2], True) if name.endswith("_r") else (name, False)
    text = resources.files("cmcrameri").joinpath("cmaps", f"{base}.txt").read_text()
    table = np.loadtxt(text.splitlines())
    return table[::-1].copy() if rev else table


def colormap_for(map_name: str) -> tuple[str, np.ndarray]:
    base = map_name.split("_")[0]
    name = COLORMAP.get(base, "batlow")
    return name, colormap_table(name)


def legend_title(map_name: str) -> str:
    return f"{map_name} [{map_unit(map_name)}]"


def overlay_png(background: np.ndarray, qmap: np.ndarray, map_name: str, path: str, *,
                mask: np.ndarray | None = None, vrange: tuple[float, float] | None = None,
                alpha: float = 0.85, title: str = "") -> None:
    """A 2D map over its anatomy with a colour legend, written as PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    cname, table = colormap_for(map_name)
    lo, hi = vrange or DISPLAY_RANGE.get(map_name.split("_")[0], (float(np.nanmin(qmap)), float(np.nanmax(qmap))))
    fig, ax = plt.subplots(figsize=(4.2, 3.6), dpi=110)
    ax.imshow(background, cmap="gray", origin="lower", interpolation="nearest")
    shown = np.ma.masked_where(~mask if mask is not None else qmap == 0, qmap)
    im = ax.imshow(shown, cmap=ListedColormap(table, name=cname), vmin=lo, vmax=hi, alpha=alpha,
                   origin="lower", interpolation="nearest")
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cb.set_label(legend_title(map_name))
    ax.set_axis_off()
    ax.set_title(title or f"{map_name} ({cname})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
