"""Argument helpers every subcommand shares; light (no numpy, torch or SimpleITK), because
they run while the parser is built."""
from __future__ import annotations

import argparse
import sys
from typing import Callable


def number_list(text: str) -> list[float]:
    """'5,10,20,30' -> [5.0, 10.0, 20.0, 30.0] (an argparse type)."""
    try:
        vals = [float(t) for t in text.replace(" ", "").split(",") if t != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not vals:
        raise argparse.ArgumentTypeError("give at least one number")
    return vals


def progress_bar(desc: str, quiet: bool = False) -> Callable[[int, int], None]:
    """A tqdm bar on stderr (shown on terminals), driven as callback(done, total)."""
    state: dict[str, object] = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            from tqdm import tqdm
            bar = tqdm(total=total, desc=desc, unit="vox" if total > 100 else "step", file=sys.stderr,
                       disable=True if quiet else None, leave=False, dynamic_ncols=True)
            state["bar"] = bar
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update


def add_common(p: argparse.ArgumentParser, *, mask: bool = True, device: bool = True) -> None:
    if mask:
        p.add_argument("--mask", help="mask image (non-zero = fit); default: voxels above 2%% of the robust maximum")
    if device:
        p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where torch runs (default auto)")
    p.add_argument("--resample", action="store_true", help="resample inputs of another geometry onto the first input")
    p.add_argument("--format", default="nii.gz", choices=("nii.gz", "nrrd"), help="output format (default nii.gz)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--register", action="store_true",
                   help="rigidly register every input (with its phase) onto the first before fitting (SimpleITK, "
                        "Mattes mutual information); the transforms are written beside the outputs")


def write_registrations(w, series) -> list[str]:
    """transform_<k>.tfm (fixed -> moving, ITK convention) and registration.json for each registered input."""
    rows = []
    for k, (path, r) in enumerate(getattr(series, "registrations", []), start=1):
        name = f"transform_input{k + 1}.tfm"
        w.write_transform(name, r.transform)
        rows.append({"Input": path, "Transform": name, "RotationDeg": [float(x) for x in r.rotation_deg],
                     "TranslationMm": [float(x) for x in r.translation_mm], "MattesMI": r.metric})
    if rows:
        w.write_json("registration.json", {"Fixed": series.paths[0], "Registrations": rows,
                                           "Method": "rigid (Euler 3D), Mattes mutual information, 3 levels (SimpleITK)"})
    return [r["Transform"] for r in rows]


def write_quality(w, filename: str, quality, geometry, sidecar: dict, inside: str, flagged: str) -> None:
    """quality (0 outside the mask, 1 inside, 2 flagged) as a label image whose sidecar says so."""
    import numpy as np
    values = {"0": "outside the mask", "1": inside, "2": flagged}
    w.write_image(filename, np.asarray(quality).astype(np.uint8), geometry, quantity="quality", unit="label",
                  sidecar={"Values": values, **sidecar})


def print_flagged(quality) -> None:
    from ..fitting.quality import FLAGGED
    n_bad, n_in = int((quality == FLAGGED).sum()), int((quality > 0).sum())
    print(f"  flagged {n_bad} of {n_in} voxels ({100.0 * n_bad / max(n_in, 1):.2g} %): 2 in quality (see its sidecar)")
