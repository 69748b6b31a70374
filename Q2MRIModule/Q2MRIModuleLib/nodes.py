"""MRML helpers: arrays in and out of volume nodes, acquisition parameters of a node, and the
colour tables and display of a map node.

Axis order: slicer.util.arrayFromVolume gives (k, j, i), i.e. (slice, row, column) of the
acquired grid, which is the (z, y, x) order of the core library; so maps are predicted in the
acquisition plane (q2mri.models.predict) and come back on the input's exact IJK-to-RAS.
"""
from __future__ import annotations

import json
import os
from dataclasses import fields

import numpy as np
import slicer
import vtk

from q2mri.acquisition import DICOM_TAGS, Acquisition
from q2mri.errors import Q2MRIError
from q2mri.display import DISPLAY_RANGE, colormap_for
from q2mri.maps import MAP_QUANTITY, map_unit

# Acquisition fields the GUI shows, as node attributes named by DICOM keyword (DICOM units:
# degrees, ms, T); their tags come from the core's one table (q2mri.acquisition.DICOM_TAGS).
DICOM_KEYWORDS = {"flip_angle_deg": "FlipAngle", "tr_ms": "RepetitionTime", "te_ms": "EchoTime",
                  "ti_ms": "InversionTime", "field_strength_t": "MagneticFieldStrength"}
DICOM_TAG = {field: tag.replace("|", ",") for tag, (field, _factor) in DICOM_TAGS.items()}
# UCUM codes for the voxel-value units (vtkMRMLScalarVolumeNode.SetVoxelValueUnits).
UCUM = {"ms": "ms", "1/s": "/s", "Hz": "Hz", "%": "%", "relative": "1", "a.u.": "1"}
# Maps that are > 0 wherever there is tissue (B0 is signed, PDFF is 0 in lean tissue).
POSITIVE_MAPS = {"T1", "T2", "T2s", "R2s", "PD", "B1"}
ACQ_KEYS = tuple(f.name for f in fields(Acquisition) if f.name not in ("sequence", "source"))


def as_acquisition(value) -> Acquisition:
    """An Acquisition from an Acquisition, a plain dict with the record's keys, or None."""
    if value is None:
        return Acquisition()
    if isinstance(value, Acquisition):
        return value
    unknown = set(value) - set(ACQ_KEYS) - {"sequence"}
    if unknown:
        raise Q2MRIError(f"unknown acquisition key(s) {sorted(unknown)}; use {', '.join(ACQ_KEYS)}")
    return Acquisition(**{k: v for k, v in value.items() if v is not None})


def _dicom_value(node, tag: str):
    uids = (node.GetAttribute("DICOM.instanceUIDs") or "").split()
    db = getattr(slicer, "dicomDatabase", None)
    if not uids or db is None:
        return None
    path = db.fileForInstance(uids[0])
    return db.fileValue(path, tag) if path else None


def _sidecar(node) -> dict:
    """The BIDS JSON sidecar beside the file a node was loaded from, if any."""
    storage = node.GetStorageNode() if hasattr(node, "GetStorageNode") else None
    path = storage.GetFileName() if storage is not None else None
    if not path:
        return {}
    stem = path[:-7] if path.endswith(".nii.gz") else os.path.splitext(path)[0]
    try:
        with open(stem + ".json") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def node_acquisition(node) -> Acquisition:
    """Acquisition parameters carried by a node: node attributes (DICOM keyword names, DICOM
    units: degrees, ms, T), else the DICOM tags of the series it was loaded from, else the BIDS
    sidecar beside its file (seconds there)."""
    values: dict = {}
    side = _sidecar(node)
    if side:
        values.update({k: v for k, v in vars(Acquisition.from_bids(side)[0]).items() if v is not None and k in ACQ_KEYS})
        if side.get("Q2MRISequence"):
            values["sequence"] = side["Q2MRISequence"]
    for key, keyword in DICOM_KEYWORDS.items():
        raw = node.GetAttribute(keyword) or node.GetAttribute("DICOM." + keyword) or _dicom_value(node, DICOM_TAG[key])
        if raw not in (None, ""):
            values[key] = float(str(raw).split("\\")[0])
    seq = node.GetAttribute("Q2MRI.Sequence")
    if seq:
        values["sequence"] = seq
    return Acquisition(**values)


def merged_acquisition(node, override) -> Acquisition:
    """The node's own parameters with the given ones (dict or record) taking precedence."""
    base = node_acquisition(node)
    over = as_acquisition(override)
    kw = {k: getattr(over, k) for k in ACQ_KEYS + ("sequence",) if getattr(over, k) is not None}
    return base.with_overrides(**kw) if kw else base


def color_node(map_name: str):
    """The scene's colour table node for a map (built once from cmcrameri's 256-entry table)."""
    cname, table = colormap_for(map_name)
    name = f"Q2MRI {cname}"
    scene = slicer.mrmlScene
    node = scene.GetFirstNodeByName(name)
    if node is not None:
        return node
    node = scene.AddNewNodeByClass("vtkMRMLColorTableNode", name)
    node.SetTypeToUser()
    node.SetNumberOfColors(len(table))
    for i, (r, g, b) in enumerate(table):
        node.SetColor(i, f"{i}", float(r), float(g), float(b), 1.0)
    node.SetAttribute("Category", "Q2MRI")
    node.SetAttribute("Q2MRI.Colormap", cname)
    return node


DERIVED_MAPS = ("consistency", "quality")     # evidence about the maps, not quantities to measure


def quantity_maps(maps: dict) -> dict:
    """The maps that carry a tissue quantity, the ones ROI statistics are about: not the SD maps,
    the consistency residual or the quality flags (which the panels still show)."""
    return {k: v for k, v in maps.items() if not k.endswith("_sd") and k not in DERIVED_MAPS}


def display_range(map_name: str, arr: np.ndarray | None = None) -> tuple[float, float]:
    base = map_name.split("_")[0]
    if map_name.endswith("_sd") or map_name == "consistency":
        vals = arr[np.isfinite(arr) & (arr != 0)] if arr is not None else np.zeros(0)
        return (0.0, float(np.percentile(vals, 98)) if vals.size else 1.0)
    return DISPLAY_RANGE.get(base, (0.0, 1.0))


def new_map_node(arr: np.ndarray, like, map_name: str, node_name: str, *, legend: bool = True):
    """A scalar volume node holding a map, on like's geometry, with quantity and unit
    attributes, its colour table, a tissue window and (optionally) a colour legend."""
    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", node_name)
    ijk = vtk.vtkMatrix4x4()
    like.GetIJKToRASMatrix(ijk)
    node.SetIJKToRASMatrix(ijk)
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(arr, dtype=np.float32))
    unit = "relative" if map_name == "consistency" else map_unit(map_name.split("_")[0])
    node.SetAttribute("Q2MRI.Map", map_name)
    node.SetAttribute("Q2MRI.Quantity", MAP_QUANTITY.get(map_name.split("_")[0], map_name) +
                      (" (uncertainty, SD)" if map_name.endswith("_sd") else ""))
    node.SetAttribute("Q2MRI.Unit", unit)
    node.SetAttribute("Q2MRI.Source", like.GetID())
    units = slicer.vtkCodedEntry()
    units.SetValueSchemeMeaning(UCUM.get(unit, unit), "UCUM", unit)
    node.SetVoxelValueUnits(units)
    node.CreateDefaultDisplayNodes()
    disp = node.GetDisplayNode()
    disp.SetAndObserveColorNodeID(color_node(map_name).GetID())
    lo, hi = display_range(map_name, arr)
    disp.AutoWindowLevelOff()
    disp.SetWindowLevelMinMax(lo, hi)
    # Transparent where there is nothing to show, so the anatomy shows through: outside the body
    # (0 in the positive maps) and at flagged voxels (NaN, which no threshold range contains).
    disp.SetApplyThreshold(True)
    disp.SetLowerThreshold(1e-6 if map_name.split("_")[0] in POSITIVE_MAPS else -3.4e38)
    disp.SetUpperThreshold(3.4e38)
    if legend:
        legend_node = slicer.modules.colors.logic().AddDefaultColorLegendDisplayNode(node)
        if legend_node is not None:
            legend_node.SetTitleText(f"{map_name} [{unit}]")
            legend_node.SetVisibility(True)
    return node


def renew_legend(volume) -> None:
    """Show a volume's colour legend in the views that now show it. The legend manager decides
    a legend's visibility when the legend node is added or changed, and may miss a volume that a
    view shows later; an identical new legend node is seen afresh."""
    colors = slicer.modules.colors.logic()
    old = colors.GetColorLegendDisplayNode(volume) if volume is not None else None
    if old is None:
        return
    title, visible = old.GetTitleText(), old.GetVisibility()
    slicer.mrmlScene.RemoveNode(old)
    new = colors.AddDefaultColorLegendDisplayNode(volume)
    new.SetTitleText(title)
    new.SetVisibility(visible)


def remove_nodes(nodes) -> None:
    for n in nodes:
        if n is not None and n.GetScene() is not None:
            slicer.mrmlScene.RemoveNode(n)


def node_geometry(node):
    """The node's grid as the core library's Geometry (ITK's LPS: RAS with x and y negated)."""
    from q2mri.io.images import Geometry
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    a = np.array([[m.GetElement(i, j) for j in range(4)] for i in range(4)])
    lps = np.diag([-1.0, -1.0, 1.0]) @ a[:3, :3]
    spacing = np.linalg.norm(lps, axis=0)
    dims = node.GetImageData().GetDimensions()
    return Geometry(tuple(int(d) for d in dims), tuple(float(s) for s in spacing),
                    tuple(float(v) for v in np.diag([-1.0, -1.0, 1.0]) @ a[:3, 3]), tuple((lps / spacing).ravel()))


DICOM_SERIES_ATTRIBUTE = "Q2MRI.DICOMSeries"


def dicom_source(node) -> list[str] | str:
    """Where a volume's DICOM files are: the folder the web app or a script recorded in the
    Q2MRI.DICOMSeries attribute, the files of its DICOM.instanceUIDs in Slicer's DICOM database
    (volumes loaded by the DICOM module), or the folder of a DICOM file it was read from."""
    folder = node.GetAttribute(DICOM_SERIES_ATTRIBUTE)
    if folder:
        return folder
    uids = (node.GetAttribute("DICOM.instanceUIDs") or "").split()
    db = getattr(slicer, "dicomDatabase", None)
    if uids and db is not None:
        files = [db.fileForInstance(u) for u in uids]
        if all(files):
            return files
    storage = node.GetStorageNode() if hasattr(node, "GetStorageNode") else None
    path = storage.GetFileName() if storage is not None else None
    if path and path.lower().endswith((".dcm", ".ima")):
        return os.path.dirname(path)
    raise Q2MRIError(f"{node.GetName()} was not loaded from DICOM; load the source series through the DICOM "
                     "module (or choose the volume that was) to export DICOM objects derived from it")


LPS = np.diag([-1.0, -1.0, 1.0])


def transform_to_world(node) -> np.ndarray | None:
    """The 4x4 RAS matrix of the linear transforms a node sits under (None when it sits under none)."""
    tnode = node.GetParentTransformNode() if hasattr(node, "GetParentTransformNode") else None
    if tnode is None:
        return None
    m = vtk.vtkMatrix4x4()
    if not tnode.GetMatrixTransformToWorld(m):
        raise Q2MRIError(f"{node.GetName()} sits under a non-linear transform; harden it first (Data module)")
    return np.array([[m.GetElement(i, j) for j in range(4)] for i in range(4)])


def itk_to_ras_matrix(transform) -> np.ndarray:
    """A rigid/affine ITK transform (fixed -> moving points, LPS) as a 4x4 RAS matrix."""
    r = np.array(transform.GetMatrix()).reshape(3, 3)
    c, t = np.array(transform.GetCenter()), np.array(transform.GetTranslation())
    a = np.eye(4)
    a[:3, :3] = LPS @ r @ LPS
    a[:3, 3] = LPS @ (c + t - r @ c)
    return a


def array_on_grid(node, ref) -> np.ndarray:
    """The node's voxels on ref's grid, through the linear transform the node sits under (e.g. the
    result of Q2MRIModuleLogic.register); the node's own array where it needs neither."""
    import SimpleITK as sitk

    from q2mri.registration import resample_onto
    arr = np.array(slicer.util.arrayFromVolume(node), dtype=np.float32, copy=True)
    to_world = transform_to_world(node)
    g, gref = node_geometry(node), node_geometry(ref)
    if to_world is None and g.matches(gref):
        return arr
    # ITK resampling wants the map from ref (fixed) points to the node's own (moving) points, in LPS
    inv = np.linalg.inv(to_world) if to_world is not None else np.eye(4)
    aff = sitk.AffineTransform(3)
    aff.SetMatrix((LPS @ inv[:3, :3] @ LPS).ravel().tolist())
    aff.SetTranslation((LPS @ inv[:3, 3]).tolist())
    return resample_onto(arr, g, gref, aff).astype(np.float32)
