"""Offscreen rendering of a Slicer slice view without the application (slicer-core + VTK).

The slice logic reslices the background and foreground volumes of its composite node and
blends them through each volume's colour node into one RGBA image; a 2D actor shows it. The
colour legend is drawn by Slicer's own ColorLegend displayable manager from the map's
vtkMRMLColorLegendDisplayNode, so the picture is what the Red view of Slicer shows. VTK
picks EGL (Mesa llvmpipe on a machine without a GPU); no X server is needed.
"""
from __future__ import annotations

import os

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

import numpy as np  # noqa: E402
import slicer  # noqa: E402
import vtk  # noqa: E402
from vtk.util.numpy_support import vtk_to_numpy  # noqa: E402

from .headless import ensure_logics  # noqa: E402
from .nodes import renew_legend  # noqa: E402

MANAGERS = ("vtkMRMLColorLegendDisplayableManager", "vtkMRMLSegmentationsDisplayableManager2D",
            "vtkMRMLOrientationMarkerDisplayableManager", "vtkMRMLRulerDisplayableManager")


class SliceViewRenderer:
    """One slice view ("Red" by default) on the current scene, rendered to arrays or PNG."""

    def __init__(self, name: str = "Red", size: tuple[int, int] = (512, 512)):
        ensure_logics()
        app = getattr(slicer.modules, "_q2mri_app_logic", None)
        if app is None:   # inside Slicer: the application's own logic
            app = slicer.app.applicationLogic()
        self.size = size
        self.window = vtk.vtkRenderWindow()
        self.window.SetOffScreenRendering(1)
        self.window.SetMultiSamples(0)
        self.window.SetSize(*size)
        self.renderer = vtk.vtkRenderer()
        self.renderer.GetActiveCamera().ParallelProjectionOn()
        self.window.AddRenderer(self.renderer)
        self.interactor = vtk.vtkRenderWindowInteractor()
        self.interactor.SetRenderWindow(self.window)
        self.interactor.Initialize()
        # The blended slice is 8-bit RGBA already windowed by the display nodes.
        self.mapper = vtk.vtkImageMapper()
        self.mapper.SetColorWindow(255)
        self.mapper.SetColorLevel(127.5)
        self.actor = vtk.vtkActor2D()
        self.actor.SetMapper(self.mapper)
        self.actor.GetProperty().SetDisplayLocationToBackground()
        self.renderer.AddViewProp(self.actor)
        self.logic = slicer.vtkMRMLSliceLogic()
        self.logic.SetMRMLApplicationLogic(app)
        self.logic.SetMRMLScene(slicer.mrmlScene)
        self.slice_node = self.logic.AddSliceNode(name)
        # The colour legend manager asks the application logic which slice logic shows the volume.
        logics = app.GetSliceLogics()
        if logics is None:
            logics = vtk.vtkCollection()
            app.SetSliceLogics(logics)
        logics.AddItem(self.logic)
        factory = slicer.vtkMRMLSliceViewDisplayableManagerFactory.GetInstance()
        factory.SetMRMLApplicationLogic(app)
        for m in MANAGERS:
            if not factory.IsDisplayableManagerRegistered(m):
                factory.RegisterDisplayableManager(m)
        self.managers = slicer.vtkMRMLDisplayableManagerGroup()
        self.managers.Initialize(factory, self.renderer)
        for i in range(self.managers.GetDisplayableManagerCount()):
            # Not always passed on by the factory; the legend manager needs it to find this view's slice logic.
            self.managers.GetNthDisplayableManager(i).SetMRMLApplicationLogic(app)
        self.managers.SetMRMLDisplayableNode(self.slice_node)

    @property
    def composite(self):
        return self.logic.GetSliceCompositeNode()

    def show(self, background, foreground=None, opacity: float = 0.6, k: int | None = None):
        """Background (anatomy) with a map over it, on the volume's own axes, at slice k
        (default: the middle one)."""
        comp = self.composite
        comp.SetBackgroundVolumeID(background.GetID() if background is not None else None)
        comp.SetForegroundVolumeID(foreground.GetID() if foreground is not None else None)
        comp.SetForegroundOpacity(opacity)
        self.logic.ResizeSliceNode(*self.size)
        dims = background.GetImageData().GetDimensions()
        k = dims[2] // 2 if k is None else k
        m = vtk.vtkMatrix4x4()
        background.GetIJKToRASMatrix(m)
        axis = lambda j: np.array([m.GetElement(i, j) for i in range(3)]) / np.linalg.norm([m.GetElement(i, j) for i in range(3)])
        centre = m.MultiplyPoint([(dims[0] - 1) / 2, (dims[1] - 1) / 2, k, 1.0])[:3]
        # The acquisition plane: normal along K, the row (I) axis across the view.
        self.slice_node.SetSliceToRASByNTP(*axis(2), *axis(0), *centre, 0)
        self.logic.FitSliceToBackground()
        self.slice_node.JumpSliceByCentering(*centre)
        self.mapper.SetInputConnection(self.logic.GetImageDataConnection())
        for vol in (background, foreground):
            renew_legend(vol)
        return self

    def render(self) -> np.ndarray:
        """The view as an (H, W, 3) uint8 array, top row first."""
        self.logic.GetImageDataConnection().GetProducer().Update()
        self.managers.RequestRender() if hasattr(self.managers, "RequestRender") else None
        self.window.Render()
        grab = vtk.vtkWindowToImageFilter()
        grab.SetInput(self.window)
        grab.SetInputBufferTypeToRGB()
        grab.ReadFrontBufferOff()
        grab.Update()
        img = grab.GetOutput()
        w, h, _ = img.GetDimensions()
        arr = vtk_to_numpy(img.GetPointData().GetScalars()).reshape(h, w, -1)
        return np.ascontiguousarray(arr[::-1, :, :3])

    def save_png(self, path) -> np.ndarray:
        arr = self.render()
        from PIL import Image
        Image.fromarray(arr).save(str(path))
        return arr
