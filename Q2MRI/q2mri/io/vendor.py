"""What vendors do to the numbers, read from the dcm2niix sidecar or the DICOM tags, and undone.

- Philips stores "display values". Its floating-point value (the one proportional to the MR
  signal, comparable between images) is FP = (DV RS + RI) / (RS SS), with DV the stored
  value, RS/RI the rescale slope and intercept (0028,1053)/(0028,1052) and SS the private
  scale slope (2005,100E). A NIfTI from dcm2niix holds DV RS + RI (its scl_slope/scl_inter
  are RS/RI) unless dcm2niix already wrote floating-point values (scl_slope 1 / SS). The
  sidecar's UsePhilipsFloatNotDisplayScaling says which, but real files contradict it (a flag
  of 1 over a header slope equal to RS): the header is what the reader applies, so it decides,
  against the sidecar's PhilipsRescaleSlope and PhilipsScaleSlope; FP = value / (RS SS) for
  display values, and a slope that is neither RS nor 1 / SS is refused. A DICOM folder read
  here comes with RS/RI applied by the reader, and the same division by RS SS gives FP. The
  factor changes between series (and between images of one series), which is what broke VFA
  and IR fits on Philips data: images of one series must be on the FP scale before they are
  compared.
- Siemens and GE magnitude images have no private scaling: within a series the stored values
  are proportional to the signal (dcm2niix applies any standard rescale slope). Their phase
  images use integer encodings, handled by phase_to_radians: Siemens -4096..4095 (12 bit) or
  0..4095, GE and Philips often integer milliradians (+-3142).
- Component images (ImageType MAGNITUDE / PHASE / REAL / IMAGINARY, or dcm2niix's M/P/R/I) are
  recognised from the sidecar's ImageType.
"""
from __future__ import annotations

import json
import math
import numpy as np

from ..errors import Q2MRIError
from .images import Volume, sidecar_path


def read_sidecar(vol: Volume) -> dict | None:
    """The JSON sidecar beside an image, or None."""
    side = sidecar_path(vol.path)
    if not side.exists():
        return None
    try:
        data = json.loads(side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise Q2MRIError(f"cannot read the sidecar {side}: not valid JSON ({e}); fix or remove it") from None
    if not isinstance(data, dict):
        raise Q2MRIError(f"sidecar {side} is not a JSON object; fix or remove it")
    return data


def _per_volume(v, n: int, key: str, path: str) -> list[float]:
    vals = v if isinstance(v, (list, tuple)) else [v] * n
    if len(vals) != n:
        raise Q2MRIError(f"{path}: {key} lists {len(vals)} values for {n} volumes; give one per volume")
    return [float(x) for x in vals]


def philips_fp_factor(vol: Volume, sidecar: dict | None) -> tuple[list[float] | None, str]:
    """Per-volume factors that turn the values read into Philips floating-point values, and the
    note to print (None when nothing is to be done)."""
    n = vol.array.shape[0] if vol.is_4d else 1
    if sidecar is not None:
        flag = int(sidecar.get("UsePhilipsFloatNotDisplayScaling", 0) or 0) == 1
        if "PhilipsScaleSlope" not in sidecar:
            return None, ""
        ss = _per_volume(sidecar["PhilipsScaleSlope"], n, "PhilipsScaleSlope", vol.path)
        rs = _per_volume(sidecar.get("PhilipsRescaleSlope", 1.0), n, "PhilipsRescaleSlope", vol.path)
        slope = nifti_slope(vol.path)
        if slope is None:                 # not a NIfTI: only the sidecar's flag can tell
            return (None, "") if flag else _factors(rs, ss, vol.path)
        # What the reader applies decides (issue [realscans]): a header slope equal to RS means the
        # voxels read are display values DV RS + RI; equal to 1 / SS, dcm2niix already wrote FP.
        display, floating = _close(slope, rs[0]), _close(slope, 1.0 / ss[0]) if ss[0] else False
        if display and not floating:
            f, note = _factors(rs, ss, vol.path)
            if flag:
                note += (f"; its sidecar says UsePhilipsFloatNotDisplayScaling = 1, but the NIfTI header's scl_slope "
                         f"{slope:g} is the rescale slope RS: the voxels hold display values, so the header was followed")
            return f, note
        if floating:
            if not flag:
                return None, (f"{vol.path}: the NIfTI header's scl_slope {slope:g} is 1 / PhilipsScaleSlope: the voxels are "
                              f"already floating-point values, although the sidecar does not set "
                              f"UsePhilipsFloatNotDisplayScaling; the header was followed")
            return None, ""
        raise Q2MRIError(f"{vol.path}: cannot tell the Philips scaling: the NIfTI header's scl_slope {slope:g} is neither "
                         f"the rescale slope RS {rs[0]:g} (display values) nor 1 / the scale slope SS {ss[0]:g} "
                         f"(floating-point values); convert the DICOM again with dcm2niix")
    tags = vol.tags or {}
    ss_tag = tags.get("2005|100e")
    if ss_tag not in (None, ""):
        try:
            ss = [float(str(ss_tag).split("\\")[0])] * n
            rs = [float(str(tags.get("0028|1053", "1")).split("\\")[0] or 1.0)] * n
        except ValueError:
            raise Q2MRIError(f"{vol.path}: the Philips scale tags are not numbers; check the DICOM export") from None
        return _factors(rs, ss, vol.path)
    return None, ""


def nifti_slope(path: str) -> float | None:
    """The scl_slope a NIfTI reader applies (1 where the header leaves it unset), or None for
    other formats."""
    if not str(path).lower().endswith((".nii", ".nii.gz")):
        return None
    import nibabel as nib
    try:
        # nibabel moves scl_slope into the array proxy on loading (the header then reads NaN)
        slope = float(getattr(nib.load(str(path)).dataobj, "slope", 1.0))
    except Exception:          # unreadable headers are reported by the image reader itself
        return None
    return 1.0 if not math.isfinite(slope) or slope == 0 else slope


def _close(a: float, b: float, rel: float = 1e-3) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-30)


def _factors(rs: list[float], ss: list[float], path: str) -> tuple[list[float], str]:
    for a, b in zip(rs, ss):
        if not (math.isfinite(a) and math.isfinite(b)) or a == 0 or b == 0:
            raise Q2MRIError(f"{path}: Philips scaling RS {a}, SS {b} cannot be undone (zero or not finite)")
    f = [1.0 / (a * b) for a, b in zip(rs, ss)]
    desc = ", ".join(f"RS {a:g} SS {b:g}" for a, b in list(zip(rs, ss))[:3]) + (" ..." if len(rs) > 3 else "")
    return f, (f"{path}: Philips display values converted to floating-point values, FP = (DV x RS + RI) / (RS x SS) "
               f"({desc})")


def apply_vendor_scaling(vol: Volume, sidecar: dict | None) -> tuple[np.ndarray, str]:
    """The volume's array on the vendor's true (floating-point) scale, and the note to print once."""
    factors, note = philips_fp_factor(vol, sidecar)
    if factors is None:
        return vol.array, note
    arr = np.asarray(vol.array, np.float64)
    if vol.is_4d:
        arr = arr * np.asarray(factors)[:, None, None, None]
    else:
        arr = arr * factors[0]
    return arr.astype(np.float32), note


def image_type(sidecar: dict | None, tags: dict | None = None) -> str | None:
    """MAGNITUDE, PHASE, REAL or IMAGINARY from the sidecar's ImageType (or DICOM (0008,0008))."""
    raw = None
    if sidecar and "ImageType" in sidecar:
        raw = sidecar["ImageType"]
    elif tags and tags.get("0008|0008"):
        raw = str(tags["0008|0008"]).split("\\")
    if raw is None:
        return None
    words = {str(w).strip().upper() for w in (raw if isinstance(raw, (list, tuple)) else [raw])}
    for name, codes in (("PHASE", {"PHASE", "P"}), ("REAL", {"REAL", "R"}), ("IMAGINARY", {"IMAGINARY", "I"}),
                        ("MAGNITUDE", {"MAGNITUDE", "M"})):
        if words & codes:
            return name
    return None


# Integer phase encodings: (name, test on the range found, scale to radians, offset)
PHASE_ENCODINGS = (
    ("radians", lambda lo, hi: lo >= -math.pi - 1e-3 and hi <= math.pi + 1e-3, 1.0, 0.0),
    ("radians 0..2 pi", lambda lo, hi: lo >= -1e-3 and hi <= 2 * math.pi + 1e-3, 1.0, 0.0),
    ("integer milliradians (+-3142)", lambda lo, hi: lo >= -3142.5 and hi <= 3142.5 and hi - lo > 5500, 1e-3, 0.0),
    ("12-bit signed (-4096..4095, Siemens)", lambda lo, hi: lo >= -4096.5 and hi <= 4096.5 and hi - lo > 7000,
     math.pi / 4096.0, 0.0),
    ("12-bit unsigned (0..4095)", lambda lo, hi: lo >= -0.5 and hi <= 4095.5 and hi - lo > 3500,
     2 * math.pi / 4096.0, -math.pi),
)


def phase_to_radians(p: np.ndarray, path: str, scale: float | None = None) -> tuple[np.ndarray, str]:
    """Phase in radians and a note (empty for radians). With ``scale`` given (radians per stored
    unit, --phase-scale) it is applied as is; otherwise the encoding is recognised from the range."""
    p = np.asarray(p, np.float64)
    if scale is not None:
        return p * float(scale), f"{path}: phase multiplied by --phase-scale {scale:g}"
    finite = p[np.isfinite(p)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    for name, test, factor, offset in PHASE_ENCODINGS:
        if test(lo, hi):
            if factor == 1.0 and offset == 0.0:
                return p, ""
            return p * factor + offset, f"{path}: phase stored as {name} (range {lo:.0f}..{hi:.0f}), rescaled to radians"
    raise Q2MRIError(f"phase image {path} spans {lo:.4g}..{hi:.4g}, which is not radians nor a known integer encoding "
                     "(+-3142 milliradians, -4096..4095, 0..4095); give --phase-scale (radians per stored unit)")

