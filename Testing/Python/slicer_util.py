"""Helpers for the tests of the Slicer module on a real MRML scene (slicer-core, no application)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
MODULE_DIR = ROOT / "Q2MRIModule"
if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))


def new_scene():
    import slicer
    slicer.mrmlScene = slicer.vtkMRMLScene()
    return slicer.mrmlScene


def load_volume(path: Path, name: str):
    """A NIfTI/NRRD file read by Slicer's own archetype storage node (as File > Add Data does)."""
    import slicer
    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    storage = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    node.SetAndObserveStorageNodeID(storage.GetID())
    assert storage.ReadData(node), f"could not read {path}"
    node.CreateDefaultDisplayNodes()
    return node


def volume_from_array(arr: np.ndarray, name: str, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)):
    import slicer
    node = slicer.util.addVolumeFromArray(np.ascontiguousarray(arr), name=name)
    node.SetSpacing(*spacing)
    node.SetOrigin(*origin)
    return node


def ijk_to_ras(node) -> np.ndarray:
    import vtk
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return np.array([[m.GetElement(i, j) for j in range(4)] for i in range(4)])


def scene_state(scene) -> list[tuple[str, str]]:
    return sorted((scene.GetNthNode(i).GetID(), scene.GetNthNode(i).GetClassName()) for i in range(scene.GetNumberOfNodes()))
