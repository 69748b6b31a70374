"""The application-logic pieces the Logic needs, made here when the Slicer application is absent.

Inside Slicer, slicer.app.applicationLogic() and slicer.modules.<name>.logic() exist. With only
the slicer-core wheel (tests, the web app) they do not, and slicer.util helpers such as
addVolumeFromArray and arrayFromSegmentBinaryLabelmap look for them. ensure_logics() creates a
vtkSlicerApplicationLogic (which owns the colour logic), the volumes, segmentations and colour
module logics, and exposes them as slicer.modules.volumes/segmentations/colors.logic(), so the
same Logic code runs in both places. The caller only has to set slicer.mrmlScene first.
"""
from __future__ import annotations

import os
import tempfile
import types

import slicer


def has_application() -> bool:
    return hasattr(slicer, "app")


def ensure_logics(app_logic=None) -> None:
    """Idempotent per scene; a no-op inside the Slicer application. app_logic: an existing
    application logic on slicer.mrmlScene to build on (the web app's), else one is made."""
    if has_application():
        return
    scene = getattr(slicer, "mrmlScene", None)
    if scene is None:
        raise RuntimeError("set slicer.mrmlScene to a vtkMRMLScene before creating Q2MRIModuleLogic")
    modules = getattr(slicer, "modules", None)
    if modules is None:
        modules = slicer.modules = types.SimpleNamespace()
    if getattr(modules, "_q2mri_scene", None) is scene:
        return
    app = app_logic
    if app is None:
        app = slicer.vtkSlicerApplicationLogic()
        app.SetMRMLScene(scene)
    if not app.GetHomeDirectory():
        # No colour files ship with the wheel; a home directory stops the colour logic asking for one.
        home = os.path.join(tempfile.gettempdir(), "q2mri-slicer-home")
        os.makedirs(os.path.join(home, "share", "ColorFiles"), exist_ok=True)
        app.SetHomeDirectory(home)
        app.SetShareDirectory("share")
    colors = slicer.vtkSlicerColorLogic()
    colors.SetMRMLApplicationLogic(app)
    colors.SetMRMLScene(scene)
    if scene.GetFirstNodeByName("Grey") is None:
        colors.AddDefaultColorNodes()

    def module_logic(name, cls):
        existing = app.GetModuleLogic(name)
        if existing is not None:
            return existing
        logic = cls()
        logic.SetMRMLScene(scene)
        logic.SetMRMLApplicationLogic(app)
        app.SetModuleLogic(name, logic)
        return logic

    # The volumes logic finds the colour module logic through the application logic.
    if app.GetModuleLogic("Colors") is None or not app.GetModuleLogic("Colors").IsA("vtkSlicerColorLogic"):
        app.SetModuleLogic("Colors", colors)
    volumes = module_logic("Volumes", slicer.vtkSlicerVolumesLogic)
    segmentations = module_logic("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic)
    for name, logic in (("volumes", volumes), ("segmentations", segmentations), ("colors", colors)):
        setattr(modules, name, types.SimpleNamespace(logic=(lambda lg=logic: lg)))
    modules._q2mri_app_logic = app
    modules._q2mri_scene = scene
