"""A folder of maps, found by file name (T1.nii.gz, PD.nii.gz, B1.nii.gz, ...)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import Q2MRIError
from ..maps import MAP_UNITS
from .images import Geometry, Volume, as_3d, check_intensities, check_same_geometry, read_image

MAP_SUFFIXES = (".nii.gz", ".nii", ".nrrd")


def find_map(folder: Path, name: str) -> Path | None:
    for suf in MAP_SUFFIXES:
        p = folder / f"{name}{suf}"
        if p.exists():
            return p
    return None


def read_maps(folder: str | Path, names: tuple[str, ...] | None = None,
              required: tuple[str, ...] = ()) -> tuple[dict[str, np.ndarray], Geometry]:
    """Read the named maps present in folder (all known maps by default).

    A required map that is missing is an error naming it. All maps must share one grid.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise Q2MRIError(f"maps folder {folder} does not exist; give the folder written by 'q2mri fit' or 'q2mri predict'")
    wanted = tuple(dict.fromkeys((names or tuple(MAP_UNITS)) + tuple(required)))
    vols: dict[str, Volume] = {}
    for name in wanted:
        p = find_map(folder, name)
        if p is None:
            if name in required:
                raise Q2MRIError(f"maps folder {folder} lacks {name}.nii.gz, which this sequence needs; "
                                 f"add it (e.g. from 'q2mri fit') or choose another sequence")
            continue
        v = read_image(p, what=f"{name} map")
        as_3d(v, f"{name} map")
        check_intensities(v, f"{name} map", allow_negative=(name == "B0"), allow_nan=True)   # NaN: flagged voxels
        vols[name] = v
    if not vols:
        raise Q2MRIError(f"maps folder {folder} has no maps (T1.nii.gz, PD.nii.gz, ...)")
    ordered = list(vols.values())
    check_same_geometry(ordered)
    return {k: v.array for k, v in vols.items()}, ordered[0].geometry
