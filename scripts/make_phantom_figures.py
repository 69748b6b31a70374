"""PNG mosaics of each phantom (images and maps) and the parameter tables of docs/phantoms.md.

    .venv/bin/python scripts/make_phantom_figures.py
"""
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from q2mri.display import DISPLAY_RANGE, colormap_for  # noqa: E402
from q2mri.phantoms.protocols import get_protocol  # noqa: E402
from q2mri.phantoms.simulate import case_rng, make_case, simulate_images  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"
SETUPS = [("brain", "brain-qiu", dict(slices=3)), ("knee", "knee-vfa", dict(slices=9, matrix=192)),
          ("knee", "knee-t2star", dict(slices=9, matrix=192)), ("liver", "liver-me", dict(slices=5, matrix=160))]
RANGES = {"T1": (0, 2000), "T2": (0, 150), "T2s": (0, 80), "R2s": (0, 300), "PD": (0, 1), "PDFF": (0, 100),
          "B1": (0.6, 1.4), "B0": (-200, 200)}


def mosaic(phantom, protocol, kw, seed=3):
    rng = case_rng(seed, 0)
    case = make_case(phantom, rng, **kw)
    prot = get_protocol(protocol)
    phase0 = np.zeros(case.labels.shape, np.float32)
    imgs = simulate_images(case, prot, 100.0, rng, phase0)
    z = case.labels.shape[0] // 2
    maps = [k for k in ("T1", "T2", "T2s", "R2s", "PD", "PDFF", "B1", "B0") if k in case.maps
            and not (k == "PDFF" and phantom == "brain")]
    panels = [(si.image.name, np.abs(si.data[z]), "gray", None, "") for si in imgs]
    panels += [(k, case.maps[k][z], ListedColormap(colormap_for(k)[1]), RANGES.get(k, DISPLAY_RANGE.get(k)), k) for k in maps]
    panels.append(("labels", case.labels[z], "tab20", (0, 19), ""))
    cols = 6
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.1 * cols, 2.3 * rows), dpi=90)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, (title, arr, cmap, rng_, unitkey) in zip(axes.ravel(), panels):
        kw2 = {} if rng_ is None else {"vmin": rng_[0], "vmax": rng_[1]}
        im = ax.imshow(arr, cmap=cmap, origin="lower", interpolation="nearest", **kw2)
        ax.set_title(title, fontsize=8)
        if unitkey:
            cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
            cb.ax.tick_params(labelsize=6)
    fig.suptitle(f"{phantom} phantom, protocol {protocol} (case seed {seed}, middle slice)", fontsize=9)
    fig.tight_layout()
    path = OUT / f"phantom_{protocol}.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def tissue_tables() -> str:
    """Markdown tables of every tissue distribution, from q2mri.phantoms.tissues."""
    from q2mri.phantoms import tissues as T
    lines = []
    for title, table in (("Brain", T.BRAIN), ("Knee", T.KNEE), ("Liver and abdomen", T.LIVER)):
        lines += [f"**{title}** (3 T; uniform draws per case)", "",
                  "| label | tissue | T1 (ms) | T2 (ms) | T2* (ms) | PD | PDFF (%) | source |", "|---|---|---|---|---|---|---|---|"]
        for lab, t in table.items():
            pd = "coupled: 1/PD = A + B R1" if t.pd is None else f"{t.pd[0]:g}-{t.pd[1]:g}"
            rng_ = lambda r: f"{r[0]:g}-{r[1]:g}"
            lines.append(f"| {lab} | {t.name}{' (lesion)' if t.lesion else ''} | {rng_(t.t1_ms)} | {rng_(t.t2_ms)} | "
                         f"{rng_(t.t2s_ms)} | {pd} | {rng_(t.pdff_pct)} | {t.source} |")
        lines.append("")
    lines.append(f"Liver, per case: PDFF {T.LIVER_PDFF_PCT[0]:g}-{T.LIVER_PDFF_PCT[1]:g} % (uniform), R2* "
                 f"{T.LIVER_R2S_PER_S[0]:g}-{T.LIVER_R2S_PER_S[1]:g} 1/s (log-uniform). PD coupling: A = {T.PD_A}, "
                 f"B = {T.PD_B_S} s, scatter {100 * T.PD_SCATTER:g} % (Fatouros et al. 1991; Gras et al. 2013).")
    return "\n".join(lines)


def write_tables(doc: Path) -> None:
    text = doc.read_text()
    start, end = "<!-- tissue-table:start -->", "<!-- tissue-table:end -->"
    head, rest = text.split(start)
    _, tail = rest.split(end)
    doc.write_text(head + start + "\n" + tissue_tables() + "\n" + end + tail)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for ph, pr, kw in SETUPS:
        print(mosaic(ph, pr, kw))
    write_tables(OUT.parent / "phantoms.md")
    print(OUT.parent / "phantoms.md")
