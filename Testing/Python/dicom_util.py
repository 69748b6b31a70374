"""Writing a real DICOM MR series with SimpleITK (GDCM), for the DICOM tests."""
from pathlib import Path

import numpy as np
import SimpleITK as sitk


def write_dicom_series(folder: Path, volume: np.ndarray, spacing, origin, direction, tags: dict[str, str],
                       series_uid: str) -> Path:
    """volume (z, y, x) as uint16 slices with patient geometry and MR acquisition tags."""
    folder.mkdir(parents=True, exist_ok=True)
    d = np.array(direction).reshape(3, 3)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(volume.shape[0]):
        sl = sitk.GetImageFromArray(volume[k].astype(np.uint16))
        sl.SetSpacing((spacing[0], spacing[1]))  # GDCM writes PixelSpacing from the image
        pos = np.array(origin) + d[:, 2] * spacing[2] * k
        meta = {
            "0008|0060": "MR", "0008|0008": "ORIGINAL\\PRIMARY", "0010|0010": "Phantom^Q2MRI",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1", "0020|000e": series_uid, "0020|0052": f"{series_uid}.0",
            "0020|0013": str(k + 1), "0020|0032": "\\".join(f"{v:.6f}" for v in pos),
            "0020|0037": "\\".join(f"{v:.6f}" for v in list(d[:, 0]) + list(d[:, 1])),
            "0028|0030": f"{spacing[1]:.6f}\\{spacing[0]:.6f}", "0018|0050": f"{spacing[2]:.6f}",
            "0008|0018": f"{series_uid}.{k + 1}",
        }
        meta.update(tags)
        for key, val in meta.items():
            sl.SetMetaData(key, val)
        writer.SetFileName(str(folder / f"IM{k + 1:04d}.dcm"))
        writer.Execute(sl)
    return folder
