"""The reference series a derived object belongs to: its datasets in slice order and its grid."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom

from ..errors import Q2MRIError
from ..io.images import Geometry

TYPE2_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID",
                "AccessionNumber", "ReferringPhysicianName")


def read_reference(folder: str | Path | list) -> list[pydicom.Dataset]:
    """The single-frame images of one series (a folder, or a list of its files), sorted along the
    slice normal (the order ITK/GDCM give the volume read from the same folder, so map slice k is
    dataset k)."""
    if isinstance(folder, (list, tuple)):
        paths = [Path(p) for p in folder]
        folder = paths[0].parent if paths else Path(".")
    else:
        folder = Path(folder)
        if not folder.is_dir():
            raise Q2MRIError(f"reference series {folder} is not a folder; give the DICOM folder the maps were computed from")
        paths = sorted(folder.rglob("*"))
    found: dict[str, list[pydicom.Dataset]] = {}
    for p in paths:
        if not p.is_file():
            continue
        try:
            ds = pydicom.dcmread(p)
        except Exception:
            continue
        if "PixelData" in ds and "ImagePositionPatient" in ds and "SeriesInstanceUID" in ds:
            found.setdefault(ds.SeriesInstanceUID, []).append(ds)
    if not found:
        raise Q2MRIError(f"{folder} holds no DICOM images with a position; give the folder of the source series")
    if len(found) > 1:
        raise Q2MRIError(f"{folder} holds {len(found)} DICOM series; give a folder with only the source series")
    dss = next(iter(found.values()))
    if any(int(getattr(d, "NumberOfFrames", 1) or 1) > 1 for d in dss):
        raise Q2MRIError(f"{folder} holds an enhanced (multi-frame) image; export needs the classic single-frame series")
    for d in dss:
        # type 2 attributes (present, may be empty) of the patient and study modules that the
        # derived objects copy; anonymisers often drop them. Only the in-memory copy changes.
        for key in TYPE2_COPIED:
            if key not in d:
                setattr(d, key, "")
    if not getattr(dss[0], "FrameOfReferenceUID", ""):
        raise Q2MRIError(f"the series in {folder} has no Frame of Reference UID (0020,0052), so derived objects "
                         "cannot be placed on it; export from the series as the scanner wrote it")
    normal = np.cross(*np.reshape(np.array(dss[0].ImageOrientationPatient, float), (2, 3)))
    dss.sort(key=lambda d: float(np.dot(normal, np.array(d.ImagePositionPatient, float))))
    return dss


def reference_geometry(dss: list[pydicom.Dataset]) -> Geometry:
    """The grid in ITK's LPS convention (DICOM patient coordinates are LPS)."""
    iop = np.array(dss[0].ImageOrientationPatient, float)
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    dy, dx = (float(v) for v in dss[0].PixelSpacing)        # PixelSpacing: between rows, between columns
    pos = np.array([np.array(d.ImagePositionPatient, float) for d in dss])
    dz = float(np.dot(pos[-1] - pos[0], normal) / (len(dss) - 1)) if len(dss) > 1 else float(
        getattr(dss[0], "SpacingBetweenSlices", None) or getattr(dss[0], "SliceThickness", 1.0) or 1.0)
    direction = np.stack([row, col, normal], axis=1)
    return Geometry((int(dss[0].Columns), int(dss[0].Rows), len(dss)), (dx, dy, dz), tuple(float(v) for v in pos[0]),
                    tuple(direction.ravel()))
