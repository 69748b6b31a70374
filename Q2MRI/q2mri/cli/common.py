"""What every subcommand shares: reading an input series with its acquisition records,
parsing number lists, masks, progress bars."""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..acquisition import Acquisition
from ..errors import Q2MRIError
from ..io.acquisition_io import read_acquisitions
from ..io.images import Geometry, Volume, as_3d, check_intensities, check_same_geometry, read_image


def number_list(text: str) -> list[float]:
    """'5,10,20,30' -> [5.0, 10.0, 20.0, 30.0] (an argparse type)."""
    try:
        vals = [float(t) for t in text.replace(" ", "").split(",") if t != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not vals:
        raise argparse.ArgumentTypeError("give at least one number")
    return vals


@dataclass
class Series:
    """A stack of 3D images on one grid: data (z, y, x, M) and one acquisition per image."""

    data: np.ndarray
    acquisitions: list[Acquisition]
    geometry: Geometry
    paths: list[str]
    any_4d: bool

    def values(self, field: str, override: Sequence[float] | None, flag: str) -> list[float]:
        """Per-image values of an acquisition field, from the flag if given, else the records."""
        m = self.data.shape[-1]
        if override is not None:
            if len(override) == 1 and m > 1 and field in ("tr_ms", "field_strength_t"):
                return list(override) * m
            if len(override) != m:
                raise Q2MRIError(f"{flag} has {len(override)} value(s) but there are {m} images; give one per image")
            return [float(v) for v in override]
        vals = [getattr(a, field) for a in self.acquisitions]
        for a, v in zip(self.acquisitions, vals):
            if v is None:
                a.require(field)  # raises the one-line message naming the field and how to give it
        return [float(v) for v in vals]


def load_series(paths: Sequence[str], phases: Sequence[str] | None = None, *, resample: bool = False,
                what: str = "input") -> Series:
    """Read the inputs (3D files, 4D files or DICOM folders), with phases if given."""
    if not paths:
        raise Q2MRIError("no --input given")
    vols = [read_image(p, what) for p in paths]
    for v in vols:
        check_intensities(v, what, allow_negative=False)
    phase_vols = None
    if phases:
        if len(phases) != len(paths):
            raise Q2MRIError(f"{len(phases)} --phase image(s) for {len(paths)} --input image(s); give one phase per magnitude")
        phase_vols = [read_image(p, "phase image") for p in phases]
        for v in phase_vols:
            check_intensities(v, "phase image", allow_negative=True)
    everything = vols + (phase_vols or [])
    everything = check_same_geometry(everything, resample)
    vols = everything[: len(vols)]
    phase_vols = everything[len(vols):] if phase_vols else None
    arrays, acqs = [], []
    for i, v in enumerate(vols):
        a = read_acquisitions(v)
        mags = v.volumes()
        if phase_vols is not None:
            ph = phase_vols[i].volumes()
            if len(ph) != len(mags):
                raise Q2MRIError(f"{phase_vols[i].path} has {len(ph)} volume(s) but {v.path} has {len(mags)}")
            mags = [m * np.exp(1j * _phase_radians(p, phase_vols[i].path)) for m, p in zip(mags, ph)]
        arrays += mags
        acqs += a
    data = np.stack(arrays, axis=-1)
    return Series(data, acqs, vols[0].geometry, [v.path for v in vols], any(v.is_4d for v in vols))


def _phase_radians(p: np.ndarray, path: str) -> np.ndarray:
    """Phase in radians; vendor integer phase (Siemens -4096..4095) is rescaled to +-pi."""
    lo, hi = float(p.min()), float(p.max())
    if lo >= -np.pi - 1e-3 and hi <= np.pi + 1e-3:
        return p.astype(np.float64)
    if lo >= -4096 and hi <= 4096:
        return p.astype(np.float64) * (np.pi / 4096.0)
    raise Q2MRIError(f"phase image {path} spans {lo:.4g}..{hi:.4g}: give the phase in radians (-pi..pi) "
                     "or in the scanner's -4096..4095 scaling")


def load_3d(path: str | None, geometry: Geometry, what: str, resample: bool = False) -> np.ndarray | None:
    """An optional 3D companion image (mask, B1 map, T1 map) on the series' grid."""
    if path is None:
        return None
    v = read_image(path, what)
    as_3d(v, what)
    check_intensities(v, what)
    if not v.geometry.matches(geometry):
        ref = Volume(np.zeros(1), geometry, "the inputs")
        v = check_same_geometry([ref, v], resample)[1]
    return v.array


def load_mask(path: str | None, geometry: Geometry, resample: bool = False) -> np.ndarray | None:
    m = load_3d(path, geometry, "mask", resample)
    if m is None:
        return None
    mask = m > 0.5
    if not mask.any():
        raise Q2MRIError(f"mask {path} selects no voxels; give a mask with 1 inside the region")
    return mask


def progress_bar(desc: str, quiet: bool = False) -> Callable[[int, int], None]:
    """A tqdm bar on stderr (shown on terminals), driven as callback(done, total)."""
    from tqdm import tqdm

    state: dict[str, object] = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
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
