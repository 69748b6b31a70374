"""Reading the acquisition record of an image: BIDS sidecar first, then DICOM tags."""
from __future__ import annotations

from ..acquisition import Acquisition
from ..errors import Q2MRIError
from .images import Volume, sidecar_path
from .vendor import read_sidecar


def read_acquisitions(vol: Volume, sidecar: dict | None = None) -> list[Acquisition]:
    """One record per 3D volume of ``vol`` (4D images may carry list-valued fields); the
    sidecar, when the caller has read it already, is passed in."""
    n = vol.array.shape[0] if vol.is_4d else 1
    side = sidecar_path(vol.path)
    data = sidecar if sidecar is not None else (read_sidecar(vol) if side.exists() else None)
    if data is not None:
        acqs = Acquisition.from_bids(data, source=str(vol.path))
    elif vol.tags:
        acqs = [Acquisition.from_dicom(vol.tags, source=str(vol.path))]
    else:
        acqs = [Acquisition(source=str(vol.path))]
    if len(acqs) == 1 and n > 1:
        acqs = acqs * n
    if len(acqs) != n:
        raise Q2MRIError(f"{side} lists {len(acqs)} values per field but {vol.path} has {n} volumes; give one per volume")
    return acqs
