"""What every subcommand shares: reading an input series with its acquisition records,
parsing number lists, masks, progress bars."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..acquisition import LABEL, Acquisition
from ..errors import Q2MRIError
from ..io.acquisition_io import read_acquisitions
from ..io.images import (Geometry, Volume, as_3d, check_intensities, check_same_geometry, clear_rounding_negatives,
                         read_image)
from ..io.vendor import apply_vendor_scaling, image_type, phase_to_radians, read_sidecar
from .args import add_common, number_list, progress_bar  # noqa: F401 (shared helpers, re-exported)


@dataclass
class Series:
    """A stack of 3D images on one grid: data (z, y, x, M) and one acquisition per image."""

    data: np.ndarray
    acquisitions: list[Acquisition]
    geometry: Geometry
    paths: list[str]
    any_4d: bool
    image_paths: list[str] = field(default_factory=list)      # the file of each of the M images
    uniform_4d: list[str] = field(default_factory=list)       # 4D inputs whose sidecar gives one acquisition for all
    notes: list[str] = field(default_factory=list)            # what was corrected, said once
    registrations: list = field(default_factory=list)         # (input path, registration.Registration) per moved input

    def values(self, field: str, override: Sequence[float] | None, flag: str) -> list[float]:
        """Per-image values of an acquisition field, from the flag if given, else the records."""
        m = self.data.shape[-1]
        if override is not None:
            if len(override) == 1 and m > 1 and field in ("tr_ms", "field_strength_t"):
                return list(override) * m
            if len(override) != m:
                raise Q2MRIError(f"{flag} has {len(override)} value(s) but there are {m} images; give one per image")
            return [float(v) for v in override]
        if self.uniform_4d and field in SERIES_FIELDS and field != "tr_ms":
            p = self.uniform_4d[0]
            raise Q2MRIError(f"{p} is 4D but its sidecar gives one acquisition for all its volumes (no list of "
                             f"{SERIES_FIELDS[field]}): if the volumes are components (magnitude, real, imaginary), pick "
                             f"one with --component K (0-based); if they form the series, list {SERIES_FIELDS[field]} in "
                             f"the sidecar or give {flag}")
        vals = [getattr(a, field) for a in self.acquisitions]
        for a, v in zip(self.acquisitions, vals):
            if v is None:
                a.require(field)  # raises the one-line message naming the field and how to give it
        return [float(v) for v in vals]

    def check_fixed(self, fields: Sequence[str], fit: str, allow_mixed: bool = False) -> None:
        """Images of one series must share these acquisition fields (e.g. TE in VFA): one line
        naming the image and both values, or a warning with --allow-mixed."""
        for f in fields:
            known = [(p, getattr(a, f)) for p, a in zip(self.image_paths, self.acquisitions) if getattr(a, f) is not None]
            if len(known) < 2:
                continue
            p0, v0 = known[0]
            for p, v in known[1:]:
                if abs(v - v0) > 1e-6 * max(1.0, abs(v0)):
                    msg = (f"{p} has {LABEL[f]} {v:g} {UNIT[f]} but {p0} has {v0:g} {UNIT[f]}; a {fit} series needs one "
                           f"{LABEL[f]}")
                    if not allow_mixed:
                        raise Q2MRIError(msg + " (pass --allow-mixed to fit anyway)")
                    self.notes.append("warning: " + msg + "; fitting anyway (--allow-mixed)")
                    break


SERIES_FIELDS = {"flip_angle_deg": "FlipAngle", "te_ms": "EchoTime", "ti_ms": "InversionTime", "tr_ms": "RepetitionTime"}
UNIT = {"flip_angle_deg": "deg", "tr_ms": "ms", "te_ms": "ms", "ti_ms": "ms", "field_strength_t": "T"}


def _components(vol: Volume, acqs: list[Acquisition], sidecar: dict | None, component: int | None):
    """The 3D volumes of an input and their records; a 4D input whose sidecar gives one
    acquisition for all is reduced to --component K where given."""
    vols = vol.volumes()
    if sidecar is not None:
        uniform = vol.is_4d and not any(isinstance(sidecar.get(k), list) for k in SERIES_FIELDS.values())
    else:
        uniform = vol.is_4d and len(set(acqs)) <= 1
    if component is not None and vol.is_4d:
        if not uniform:
            raise Q2MRIError(f"--component picks a volume of a 4D file of components; {vol.path} is a series "
                             "(its sidecar lists per-volume values)")
        if not 0 <= component < len(vols):
            raise Q2MRIError(f"--component {component} is outside 0..{len(vols) - 1} for {vol.path}")
        return [vols[component]], [acqs[component]], False
    return vols, acqs, uniform


def load_series(paths: Sequence[str], phases: Sequence[str] | None = None, *, resample: bool = False,
                what: str = "input", component: int | None = None, phase_scale: float | None = None,
                register: bool = False, progress: Callable[[int, int], None] | None = None) -> Series:
    """Read the inputs (3D files, 4D files or DICOM folders), with phases if given, on the
    vendors' true scale (io.vendor): Philips display values become floating-point values,
    integer phase becomes radians, REAL + IMAGINARY images become complex; each correction
    is noted once (Series.notes). register: each input (with its phase) is rigidly registered
    onto the first (q2mri.registration) and resampled onto its grid; the transforms are kept
    (Series.registrations)."""
    if not paths:
        raise Q2MRIError("no --input given")
    vols = [read_image(p, what) for p in paths]
    sides = [read_sidecar(v) for v in vols]
    early: list[str] = []
    for i, (v, sd) in enumerate(zip(vols, sides)):
        signed = image_type(sd, v.tags) in ("REAL", "IMAGINARY")
        if not signed:
            vols[i], note = clear_rounding_negatives(v)
            if note:
                early.append(note)
        check_intensities(vols[i], what, allow_negative=signed)
    phase_vols = None
    if phases:
        if len(phases) != len(paths):
            raise Q2MRIError(f"{len(phases)} --phase image(s) for {len(paths)} --input image(s); give one phase per magnitude")
        phase_vols = [read_image(p, "phase image") for p in phases]
        for v in phase_vols:
            check_intensities(v, "phase image", allow_negative=True)
    if phase_vols:       # a phase image always on its magnitude's grid
        phase_vols = [check_same_geometry([v, pv], resample)[1] for v, pv in zip(vols, phase_vols)]
    if not register:
        everything = vols + (phase_vols or [])
        everything = check_same_geometry(everything, resample)
        vols = everything[: len(vols)]
        phase_vols = everything[len(vols):] if phase_vols else None
    notes: list[str] = early
    arrays, acqs, img_paths, uniform = [], [], [], []
    registrations: list = []
    if register and any(image_type(sd, v.tags) in ("REAL", "IMAGINARY") for v, sd in zip(vols, sides)):
        raise Q2MRIError("--register works on magnitude (+ phase) inputs; combine REAL/IMAGINARY images first")
    i = 0
    while i < len(vols):
        v, side = vols[i], sides[i]
        kind = image_type(side, v.tags)
        if kind == "PHASE":
            raise Q2MRIError(f"{v.path} is a phase image (ImageType in its sidecar); pass it with --phase")
        if kind == "IMAGINARY":
            raise Q2MRIError(f"{v.path} is an imaginary-part image; give it right after its real part (--input REAL "
                             "--input IMAGINARY)")
        data, note = apply_vendor_scaling(v, side)
        if note:
            notes.append(note)
        v = Volume(data, v.geometry, v.path, v.tags)
        a = read_acquisitions(v, side)
        mags, a, uni = _components(v, a, side, component)
        if uni:
            uniform.append(v.path)
        if kind == "REAL":
            if i + 1 >= len(vols) or image_type(sides[i + 1], vols[i + 1].tags) != "IMAGINARY":
                raise Q2MRIError(f"{v.path} is a real-part image: give its imaginary part right after it")
            w = vols[i + 1]
            imag, _ = apply_vendor_scaling(w, sides[i + 1])
            iv, _, _ = _components(Volume(imag, w.geometry, w.path, w.tags), a * len(w.volumes()), sides[i + 1], component)
            mags = [r + 1j * m for r, m in zip(mags, iv)]
            notes.append(f"{v.path} + {w.path}: real and imaginary parts combined into complex echoes")
            i += 1
        elif phase_vols is not None:
            pv = phase_vols[i]
            pside = read_sidecar(pv)
            ph, _, _ = _components(pv, a * len(pv.volumes()), pside, component)
            if len(ph) != len(mags):
                raise Q2MRIError(f"{pv.path} has {len(ph)} volume(s) but {v.path} has {len(mags)}")
            if image_type(pside, pv.tags) == "IMAGINARY":
                mags = [m + 1j * q for m, q in zip(mags, ph)]
                notes.append(f"{v.path} + {pv.path}: real and imaginary parts combined into complex echoes")
            else:
                rad = []
                for q in ph:
                    r, note3 = phase_to_radians(q, pv.path, phase_scale)
                    rad.append(r)
                    if note3 and note3 not in notes:
                        notes.append(note3)
                mags = [m * np.exp(1j * r) for m, r in zip(mags, rad)]
        if register and i > 0:
            from ..registration import register_rigid, resample_onto
            ref = vols[0]
            r = register_rigid(arrays[0], ref.geometry, mags[0], v.geometry, progress=progress)
            mags = [resample_onto(m, v.geometry, ref.geometry, r.transform) for m in mags]
            registrations.append((v.path, r))
            notes.append(f"{v.path} registered onto {ref.path}: rotation "
                         f"{', '.join(f'{x:.2f}' for x in r.rotation_deg)} deg, translation "
                         f"{', '.join(f'{x:.2f}' for x in r.translation_mm)} mm")
        arrays += mags
        acqs += a
        img_paths += [v.path] if len(mags) == 1 else [f"{v.path} (volume {k})" for k in range(len(mags))]
        i += 1
    data = np.stack(arrays, axis=-1)
    return Series(data, acqs, vols[0].geometry, [v.path for v in vols], any(v.is_4d for v in vols), img_paths,
                  uniform, notes, registrations)


def load_3d(path: str | None, geometry: Geometry, what: str, resample: bool = False) -> np.ndarray | None:
    """An optional 3D companion image (mask, B1 map, T1 map) on the series' grid."""
    if path is None:
        return None
    v = read_image(path, what)
    as_3d(v, what)
    check_intensities(v, what, allow_nan=what != "mask")     # maps may hold NaN where a fit flagged voxels
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
