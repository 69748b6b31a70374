"""PNG figures of docs/phantoms.md: each phantom (images and ground-truth maps), B1+ at 1.5, 3
and 7 T side by side, the Helmholtz solve against the Bessel solution, and the tissue tables.

    .venv/bin/python scripts/make_phantom_figures.py
"""
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from scipy.special import jv  # noqa: E402

from q2mri.display import DISPLAY_RANGE, colormap_for  # noqa: E402
from q2mri.phantoms.imaging import Readout  # noqa: E402
from q2mri.phantoms.protocols import get_protocol  # noqa: E402
from q2mri.phantoms.simulate import case_rng, make_case, simulate_case  # noqa: E402
from q2mri.phantoms.transmit import BODY_COIL, HEAD_COIL, solve_plane, wavenumber_sq  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"
SETUPS = [("brain", "brain-qiu", dict(slices=3)), ("knee", "knee-vfa", dict(slices=9, matrix=192)),
          ("knee", "knee-t2star", dict(slices=9, matrix=192)), ("liver", "liver-me", dict(slices=5, matrix=160))]
RANGES = {"T1": (0, 2000), "T2": (0, 150), "T2s": (0, 80), "R2s": (0, 300), "PD": (0, 1), "PDFF": (0, 100),
          "B1": (0.5, 1.5), "B0": (-200, 200)}


def mosaic(phantom, protocol, kw, seed=3):
    truth, imgs, _ = simulate_case(phantom, get_protocol(protocol), case_rng(seed, 0), 100.0, readout=Readout(2), **kw)
    z = truth.labels.shape[0] // 2
    maps = [k for k in ("T1", "T2", "T2s", "R2s", "PD", "PDFF", "B1", "B0") if k in truth.maps]
    panels = [(si.image.name, np.abs(si.data[z]), "gray", None, "") for si in imgs]
    panels += [(k, truth.maps[k][z], ListedColormap(colormap_for(k)[1]), RANGES.get(k, DISPLAY_RANGE.get(k)), k) for k in maps]
    panels.append(("labels", truth.labels[z], "tab20", (0, 19), ""))
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
    fig.suptitle(f"{phantom} phantom, protocol {protocol} at 3 T, formed in k-space (case seed {seed}, middle slice)",
                 fontsize=9)
    fig.tight_layout()
    path = OUT / f"phantom_{protocol}.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def b1_by_field():
    """B1+ of the same head, abdomen and knee at 1.5, 3 and 7 T (phantoms.transmit)."""
    fig, axes = plt.subplots(3, 3, figsize=(9, 8.4), dpi=90)
    rows = [("head", "brain", dict(slices=3)), ("abdomen", "liver", dict(slices=3, matrix=120)),
            ("knee (axial)", "knee", dict(slices=36, matrix=96))]
    cmap = ListedColormap(colormap_for("B1")[1])
    for r, (name, ph, kw) in enumerate(rows):
        for c, f in enumerate((1.5, 3.0, 7.0)):
            case = make_case(ph, case_rng(0, 0), field_t=f, **kw)
            b1 = np.where(case.labels > 0, case.maps["B1"], np.nan)
            img = b1[:, b1.shape[1] // 2 + 10, :] if ph == "knee" else b1[b1.shape[0] // 2]
            ax = axes[r, c]
            im = ax.imshow(img, cmap=cmap, vmin=0.4, vmax=1.6, origin="lower", interpolation="nearest",
                           aspect=3.0 / (150 / 96) if ph == "knee" else 1.0)
            ax.set_axis_off()
            ax.set_title(f"{name}, {f:g} T", fontsize=9)
    fig.colorbar(im, ax=axes, fraction=0.025, pad=0.02, label="B1+ (relative)")
    path = OUT / "b1_field_strength.png"
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def bessel_check():
    """|B1+| across a uniform disc (eps_r 60, sigma 0.6 S/m, radius 9 cm): finite differences vs J0(k rho)."""
    fig, ax = plt.subplots(figsize=(5.2, 3.4), dpi=100)
    for field, coil, h, col in ((3.0, BODY_COIL, 0.004, "C0"), (7.0, HEAD_COIL, 0.002, "C3")):
        f = 42.577e6 * field
        n = int(np.ceil(2 * coil.shield_m / h)) + 3
        axis = (np.arange(n) - (n - 1) / 2) * h
        y, x = np.meshgrid(axis, axis, indexing="ij")
        disc = np.hypot(x, y) <= 0.09
        b = np.abs(solve_plane(np.where(disc, 60.0, 1.0), np.where(disc, 0.6, 0.0), h, f, coil))
        row = b[n // 2] / b[n // 2, n // 2]
        inside = np.abs(axis) <= 0.09
        k = np.sqrt(wavenumber_sq(np.array(60.0), np.array(0.6), f))
        rho = np.linspace(-0.09, 0.09, 200)
        ax.plot(rho * 100, np.abs(jv(0, k * np.abs(rho))), color=col, lw=1.2, label=f"|J0(k rho)|, {field:g} T")
        ax.plot(axis[inside] * 100, row[inside], "o", ms=2.5, color=col, label=f"finite differences, {field:g} T")
    ax.set_xlabel("position across the disc (cm)")
    ax.set_ylabel("|B1+| / centre")
    ax.legend(fontsize=7)
    ax.set_title("Uniform disc: the Helmholtz solve reproduces the Bessel solution", fontsize=9)
    fig.tight_layout()
    path = OUT / "b1_bessel_check.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def tissue_tables() -> str:
    """Markdown tables of every tissue distribution, from q2mri.phantoms.tissues."""
    from q2mri.phantoms import tissues as T
    lines = []
    for title, table in (("Head", T.BRAIN), ("Knee", T.KNEE), ("Liver and abdomen", T.LIVER)):
        lines += [f"**{title}** (3 T; uniform draws per case; other fields by the factors below)", "",
                  "| label | tissue | T1 (ms) | T2 (ms) | T2* (ms) | PD | PDFF (%) | dielectric (Gabriel 1996) | field class | source |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for lab, t in table.items():
            pd = "coupled: 1/PD = A + B R1" if t.pd is None else f"{t.pd[0]:g}-{t.pd[1]:g}"
            rng_ = lambda r: f"{r[0]:g}-{r[1]:g}"
            lines.append(f"| {lab} | {t.name}{' (lesion)' if t.lesion else ''} | {rng_(t.t1_ms)} | {rng_(t.t2_ms)} | "
                         f"{rng_(t.t2s_ms)} | {pd} | {rng_(t.pdff_pct)} | {t.dielectric} | {t.relax} | {t.source} |")
        lines.append("")
    lines.append(f"Liver, per case: PDFF {T.LIVER_PDFF_PCT[0]:g}-{T.LIVER_PDFF_PCT[1]:g} % (uniform), R2* "
                 f"{T.LIVER_R2S_PER_S[0]:g}-{T.LIVER_R2S_PER_S[1]:g} 1/s at 3 T (log-uniform). PD coupling: A = {T.PD_A}, "
                 f"B = {T.PD_B_S} s, scatter {100 * T.PD_SCATTER:g} % (Fatouros et al. 1991; Gras et al. 2013).")
    lines += ["", "Field-strength factors (T1, T2) relative to 3 T (`phantoms.tissues.FIELD_SCALING`; between and "
              "beyond the anchors, linear in log B0):", "", "| class | 1.5 T | 7 T |", "|---|---|---|"]
    for k, v in T.FIELD_SCALING.items():
        lines.append(f"| {k} | {v[1.5][0]:g}, {v[1.5][1]:g} | {v[7.0][0]:g}, {v[7.0][1]:g} |")
    from q2mri.phantoms.dielectric import GABRIEL, properties
    lines += ["", "Dielectric properties at the Larmor frequency (Gabriel et al. 1996 four-term Cole-Cole model, "
              "`phantoms.dielectric`): relative permittivity / conductivity (S/m)", "",
              "| tissue | 64 MHz (1.5 T) | 128 MHz (3 T) | 298 MHz (7 T) |", "|---|---|---|---|"]
    for k in GABRIEL:
        lines.append("| " + k + " | " + " | ".join(f"{properties(k, b)[0]:.1f} / {properties(k, b)[1]:.3f}"
                                                  for b in (1.5, 3.0, 7.0)) + " |")
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
    print(b1_by_field())
    print(bessel_check())
    write_tables(OUT.parent / "phantoms.md")
    print(OUT.parent / "phantoms.md")
