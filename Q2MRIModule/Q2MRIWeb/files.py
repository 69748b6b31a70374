"""Files a user gives the web app: checked, read into volume nodes, never modified.

Accepted: NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr) and a zipped DICOM series (.zip). The
uploads are copied into the app's own temporary folder (removed on exit) and read from there;
a BIDS JSON sidecar given with an image carries its acquisition parameters. Each problem is
one Q2MRIError line that says what is wrong and what to do.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import slicer

from q2mri.errors import Q2MRIError

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr")


def _suffix(name: str) -> str:
    low = name.lower()
    for s in IMAGE_SUFFIXES + (".json", ".zip"):
        if low.endswith(s):
            return s
    return Path(low).suffix


def stage(files: list[tuple[str, bytes]], folder: Path) -> list[Path]:
    """Write uploaded (name, content) pairs into folder; returns the image paths (zips unpacked)."""
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for name, content in files:
        base = Path(name).name
        kind = _suffix(base)
        if kind not in IMAGE_SUFFIXES + (".json", ".zip"):
            raise Q2MRIError(f"{base}: not an image Q2MRI reads; upload NIfTI (.nii/.nii.gz), NRRD or a zipped DICOM series")
        path = folder / base
        path.write_bytes(content)
        if kind == ".zip":
            images.append(_unzip_dicom(path, folder / (base[:-4] + "_dicom")))
        elif kind != ".json":
            images.append(path)
    return images


def _unzip_dicom(path: Path, dest: Path) -> Path:
    try:
        with zipfile.ZipFile(path) as z:
            for member in z.namelist():
                target = (dest / member).resolve()
                if not str(target).startswith(str(dest.resolve())):
                    raise Q2MRIError(f"{path.name}: the zip holds a path outside itself ({member}); re-zip the series folder")
            z.extractall(dest)
    except zipfile.BadZipFile:
        raise Q2MRIError(f"{path.name}: not a valid zip file; zip the DICOM series folder again") from None
    return dest


def _dicom_series_file(folder: Path) -> Path:
    """The series as one NRRD-readable path: SimpleITK reads the series, keeps the tags Q2MRI uses."""
    import SimpleITK as sitk
    ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not ids:
        for sub, _dirs, _files in os.walk(folder):
            ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(sub)
            if ids:
                folder = Path(sub)
                break
    if not ids:
        raise Q2MRIError(f"{folder.name}: no DICOM series in the zip; zip the folder holding the .dcm files")
    names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), ids[0])
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(names)
    reader.MetaDataDictionaryArrayUpdateOn()
    image = reader.Execute()
    out = folder.parent / (folder.name + ".nrrd")
    sitk.WriteImage(image, str(out))
    from q2mri.acquisition import DICOM_TAGS, Acquisition
    from Q2MRIModuleLib.nodes import DICOM_KEYWORDS
    acq = Acquisition.from_dicom({t: reader.GetMetaData(0, t) for t in DICOM_TAGS if reader.HasMetaDataKey(0, t)},
                                 source=folder.name)
    attrs = {kw: getattr(acq, f) for f, kw in DICOM_KEYWORDS.items() if getattr(acq, f) is not None}
    out.with_suffix(".dicom.json").write_text(json.dumps(attrs))
    return out


def read_volume(path: Path, name: str | None = None):
    """A scalar volume node from a file (NIfTI/NRRD or a DICOM folder); attributes from the sidecar."""
    if path.is_dir():
        nrrd = _dicom_series_file(path)
        node = _read(nrrd, name or path.name)
        tags = json.loads(nrrd.with_suffix(".dicom.json").read_text())
        for k, v in tags.items():      # DICOM units (deg, ms, T), as node attributes (Q2MRIModuleLib.nodes)
            node.SetAttribute(k, f"{v:g}")
        # the series the maps derive from, for the DICOM export (Q2MRIModuleLib.nodes.dicom_source)
        node.SetAttribute("Q2MRI.DICOMSeries", str(nrrd.parent / nrrd.name[: -len(".nrrd")]))
        return node
    return _read(path, name)


def _read(path: Path, name: str | None):
    stem = path.name
    for s in IMAGE_SUFFIXES:
        if stem.lower().endswith(s):
            stem = stem[: -len(s)]
    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name or stem)
    storage = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    node.SetAndObserveStorageNodeID(storage.GetID())
    ok = storage.ReadData(node)
    if not ok or node.GetImageData() is None:
        slicer.mrmlScene.RemoveNode(node)
        slicer.mrmlScene.RemoveNode(storage)
        raise Q2MRIError(f"{path.name}: could not be read as an image; check that it is a complete NIfTI/NRRD file")
    if node.GetImageData().GetNumberOfScalarComponents() != 1:
        slicer.mrmlScene.RemoveNode(node)
        raise Q2MRIError(f"{path.name}: has several components per voxel; give one scalar image per file")
    node.CreateDefaultDisplayNodes()
    return node


def same_grid(a, b, tol: float = 1e-3) -> bool:
    """Whether two volumes share dimensions and IJK-to-RAS (what predict and fit need)."""
    import vtk
    if a.GetImageData().GetDimensions() != b.GetImageData().GetDimensions():
        return False
    ma, mb = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
    a.GetIJKToRASMatrix(ma)
    b.GetIJKToRASMatrix(mb)
    return bool(np.allclose([ma.GetElement(i, j) for i in range(4) for j in range(4)],
                            [mb.GetElement(i, j) for i in range(4) for j in range(4)], atol=tol))
