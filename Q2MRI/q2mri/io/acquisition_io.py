"""Reading the acquisition record of an image: BIDS sidecar first, then DICOM tags."""
from __future__ import annotations

import json

from ..acquisition import Acquisition
from ..errors import Q2MRIError
from .images import Volume, sidecar_path


def read_acquisitions(vol: Volume) -> list[Acquisition]:
    """One record per 3D volume of ``vol`` (4D images may carry list-valued fields)."""
    n = vol.array.shape[0] if vol.is_4d else 1
    side = sidecar_path(vol.path)
    if side.exists():
        try:
            data = json.loads(side.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise Q2MRIError(f"cannot read the sidecar {side}: not valid JSON ({e}); fix or remove it") from None
        if not isinstance(data, dict):
            raise Q2MRIError(f"sidecar {side} is not a JSON object; fix or remove it")
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
