"""ROI statistics per label: voxel count, volume, mean, SD, median, p5, p95.

SD is the sample SD (ddof = 1); percentiles use linear interpolation (numpy's default),
the convention of Slicer's Segment Statistics.
"""
from __future__ import annotations

import numpy as np

from ..errors import Q2MRIError

ROI_COLUMNS = ("Segment", "Map", "Unit", "Voxels", "Volume_mL", "Mean", "SD", "Median", "P5", "P95")


def region_statistics(values: np.ndarray, voxel_volume_ml: float) -> dict[str, float]:
    """Statistics of the finite values; Flagged counts the excluded ones (NaN where a fit flagged a
    voxel, q2mri.fitting.quality). Voxels and Volume_mL count what the statistics stand on."""
    v = np.asarray(values, np.float64)
    finite = np.isfinite(v)
    flagged = int((~finite).sum())
    v = v[finite]
    n = int(v.size)
    if n == 0:
        nan = float("nan")
        return {"Voxels": 0, "Volume_mL": 0.0, "Mean": nan, "SD": nan, "Median": nan, "P5": nan, "P95": nan,
                "Flagged": flagged}
    p5, med, p95 = np.percentile(v, [5, 50, 95])
    return {"Voxels": n, "Volume_mL": n * voxel_volume_ml, "Mean": float(v.mean()),
            "SD": float(v.std(ddof=1)) if n > 1 else 0.0, "Median": float(med), "P5": float(p5), "P95": float(p95),
            "Flagged": flagged}


def roi_statistics(maps: dict[str, np.ndarray], labels: np.ndarray, voxel_volume_ml: float,
                   names: dict[int, str] | None = None, units: dict[str, str] | None = None) -> list[dict]:
    """One row per (label, map) with the ROI_COLUMNS keys; label 0 is background."""
    labels = np.asarray(labels)
    rows = []
    ids = [int(i) for i in np.unique(labels) if i != 0]
    if not ids:
        raise Q2MRIError("the label image has no labels other than 0; draw or give at least one ROI")
    for lab in ids:
        sel = labels == lab
        for name, arr in maps.items():
            if arr.shape != labels.shape:
                raise Q2MRIError(f"map {name} has shape {arr.shape} but the labels have {labels.shape}")
            row = {"Segment": (names or {}).get(lab, str(lab)), "Map": name, "Unit": (units or {}).get(name, "")}
            row.update(region_statistics(arr[sel], voxel_volume_ml))
            rows.append(row)
    return rows
