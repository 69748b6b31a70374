"""Q2MRIModuleLogic: everything the module does, on an MRML scene, with no Qt.

Headless use (tests, the web app, scripts), with only the slicer-core wheel:

    import slicer
    slicer.mrmlScene = slicer.vtkMRMLScene()
    from Q2MRIModuleLib import Q2MRIModuleLogic
    logic = Q2MRIModuleLogic()        # makes the application-logic pieces it needs (headless.py)

Data flow (STYLE: one direction): input nodes + acquisition -> arrays -> q2mri (predict, fit,
synthesize) -> new map nodes -> display, measurement, synthesis. Input nodes are only read.
Long work reports progress through progress(done, total) and stops when cancelled() turns
true; nodes are added to the scene only once the work has finished, and removed again if
adding them fails, so a cancel or an error leaves the scene as it was.

Each step is also available in two halves for a GUI that computes in a worker thread:
read the arrays here (main thread), compute with computePrediction/computeFit (any thread),
then publishMaps (main thread).
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, Mapping, Sequence

import numpy as np
import slicer
import vtk

from q2mri.acquisition import Acquisition
from q2mri.errors import Q2MRIError
from q2mri.maps import map_unit
from q2mri.metrics.roi import ROI_COLUMNS, region_statistics

from . import nodes as N
from .headless import ensure_logics, has_application

try:  # inside the Slicer application
    from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic as _LogicBase
except ImportError:  # slicer-core wheel only
    _LogicBase = object

FIT_MODELS = ("vfa", "t2star", "t2", "t1-ir", "b1-afi", "b1-dam", "dixon", "fatwater")
# The ROI table of q2mri.metrics.roi, plus the count of flagged (NaN) voxels the statistics excluded.
STAT_COLUMNS = ROI_COLUMNS + ("Flagged",)


class Cancelled(Exception):
    """The user cancelled; nothing was added to the scene."""


def _watch(progress, cancelled) -> Callable[[int, int], None]:
    def cb(done: int, total: int) -> None:
        if cancelled is not None and cancelled():
            raise Cancelled()
        if progress is not None:
            progress(done, total)
    return cb


def _table_node(name: str, columns: dict):
    """A table node with one double column per entry."""
    table = vtk.vtkTable()
    for key, values in columns.items():
        arr = vtk.vtkDoubleArray()
        arr.SetName(key)
        for v in values:
            arr.InsertNextValue(float(v))
        table.AddColumn(arr)
    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", name)
    node.SetAndObserveTable(table)
    return node


def _voxel_volume_ml(node) -> float:
    return float(np.prod(node.GetSpacing())) / 1000.0


class Q2MRIModuleLogic(_LogicBase):
    def __init__(self, parent=None):
        if _LogicBase is not object:
            _LogicBase.__init__(self, parent)
        ensure_logics()
        self.lastWarnings: list[str] = []
        self.lastConsistency: float | None = None

    # ---- reading -------------------------------------------------------------------
    @staticmethod
    def arrayOf(node) -> np.ndarray:
        """A copy of a volume's voxels as float32 (z, y, x); the node stays untouched."""
        return np.array(slicer.util.arrayFromVolume(node), dtype=np.float32, copy=True)

    @staticmethod
    def acquisitionsFor(inputNodes: Sequence, acquisition=None) -> list[Acquisition]:
        """One record per node: the node's own parameters, overridden by acquisition (one
        record or dict for all nodes, or a list with one per node)."""
        if isinstance(acquisition, (list, tuple)):
            if len(acquisition) != len(inputNodes):
                raise Q2MRIError(f"give one acquisition per input node ({len(inputNodes)}), got {len(acquisition)}")
            return [N.merged_acquisition(n, a) for n, a in zip(inputNodes, acquisition)]
        return [N.merged_acquisition(n, acquisition) for n in inputNodes]

    def rangeWarnings(self, task: str, inputNodes, acquisition=None) -> list[str]:
        """The model's notes on these inputs' protocol (outside the trained range, impossible
        values), as the user picks nodes and edits parameters; reads no voxels."""
        from q2mri.models.predict import check_acquisitions
        from q2mri.models.tasks import TASKS
        inputNodes = list(inputNodes)
        if task not in TASKS or not inputNodes:
            return []
        t = TASKS[task]
        if t.complex_inputs:                      # magnitudes first, then phases
            inputNodes = inputNodes[: max(1, len(inputNodes) // 2)]
            if isinstance(acquisition, (list, tuple)):
                acquisition = list(acquisition)[: len(inputNodes)]
        return check_acquisitions(t, self.acquisitionsFor(inputNodes, acquisition)[: len(t.inputs)])

    @staticmethod
    def listModels(task: str | None = None) -> list[dict]:
        from q2mri.models.registry import list_models
        return [m for m in list_models() if task is None or m.get("task") == task]

    @staticmethod
    def deviceInfo() -> list[tuple[str, str]]:
        """(value, label) for the device chooser: auto, cpu, and each CUDA GPU with free memory."""
        import torch
        out = [("auto", "auto"), ("cpu", "CPU")]
        if torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            out.append(("cuda", f"GPU: {torch.cuda.get_device_name(0)} ({free / 2**30:.1f} of {total / 2**30:.1f} GiB free)"))
        return out

    # ---- prediction ----------------------------------------------------------------
    def computePrediction(self, task: str, images: list[np.ndarray], acquisitions: list[Acquisition], *,
                          device: str = "auto", model: str | None = None, progress=None, cancelled=None):
        """Thread-safe: no scene access."""
        from q2mri.models.predict import predict as core_predict
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pred = core_predict(task, images, acquisitions, model=model, device=device,
                                progress=_watch(progress, cancelled))
        self.lastWarnings = [str(w.message) for w in caught]
        self.lastConsistency = pred.consistency
        return pred

    def predict(self, inputNodes, task: str, acquisition=None, device: str = "auto", *, model: str | None = None,
                progress=None, cancelled=None) -> dict:
        """Map nodes (T1, PD, ..., <MAP>_sd, consistency) predicted from the input nodes."""
        inputNodes = list(inputNodes)
        from q2mri.models.tasks import TASKS
        images, acqs = self.inputsFor(inputNodes, task in TASKS and TASKS[task].complex_inputs, acquisition)
        pred = self.computePrediction(task, images, acqs, device=device, model=model, progress=progress,
                                      cancelled=cancelled)
        return self.publishMaps(pred.maps, inputNodes[0], task=task)

    def inputsFor(self, inputNodes, complex_inputs: bool, acquisition=None) -> tuple[list[np.ndarray], list[Acquisition]]:
        """The arrays and acquisition records of the input nodes (main thread): magnitudes, or for
        complex inputs the echoes made from magnitude nodes then phase nodes."""
        inputNodes = list(inputNodes)
        if not complex_inputs:
            # an input under a transform (register) is read through it onto the first input's grid
            arrays = [self.arrayOf(inputNodes[0])] + [N.array_on_grid(n, inputNodes[0]) for n in inputNodes[1:]]
            return arrays, self.acquisitionsFor(inputNodes, acquisition)
        images = self.complexImages(inputNodes)
        if isinstance(acquisition, (list, tuple)):
            acquisition = list(acquisition)[: len(images)]
        return images, self.acquisitionsFor(inputNodes[: len(images)], acquisition)

    def complexImages(self, inputNodes) -> list[np.ndarray]:
        """Complex echoes from nodes given as magnitudes then phases (radians), in the same order."""
        if len(inputNodes) % 2:
            raise Q2MRIError("complex inputs: give each echo's magnitude node, then each echo's phase node")
        k = len(inputNodes) // 2
        ref = inputNodes[0]
        return [N.array_on_grid(m, ref) * np.exp(1j * N.array_on_grid(p, ref)) for m, p in zip(inputNodes[:k], inputNodes[k:])]

    # ---- registration -------------------------------------------------------------
    def register(self, fixedNode, movingNode, *, progress=None, cancelled=None):
        """Rigidly register movingNode onto fixedNode (q2mri.registration: Mattes mutual information,
        3 levels) and return a new linear transform node that puts the moving volume onto the fixed
        one; the moving node is placed under it (nothing is resampled: the user sees the transform,
        can edit it in the Transforms module, and predict/fit read the moving input through it)."""
        from q2mri.registration import register_rigid
        fixed = self.arrayOf(fixedNode)
        moving = np.array(slicer.util.arrayFromVolume(movingNode), dtype=np.float32, copy=True)
        r = register_rigid(fixed, N.node_geometry(fixedNode), moving, N.node_geometry(movingNode),
                           progress=_watch(progress, cancelled))
        # ITK maps fixed -> moving points; the node's transform to parent maps moving -> fixed (world)
        to_parent = np.linalg.inv(N.itk_to_ras_matrix(r.transform))
        tnode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLinearTransformNode", f"{movingNode.GetName()} to "
                                                   f"{fixedNode.GetName()} (Q2MRI rigid)")
        m = vtk.vtkMatrix4x4()
        for i in range(4):
            for j in range(4):
                m.SetElement(i, j, float(to_parent[i, j]))
        tnode.SetMatrixTransformToParent(m)
        tnode.SetAttribute("Q2MRI.RotationDeg", " ".join(f"{x:.4f}" for x in r.rotation_deg))
        tnode.SetAttribute("Q2MRI.TranslationMm", " ".join(f"{x:.4f}" for x in r.translation_mm))
        movingNode.SetAndObserveTransformNodeID(tnode.GetID())
        return tnode

    def publishMaps(self, maps: Mapping[str, np.ndarray], like, suffix: str = "", task: str = "") -> dict:
        """Add one volume node per map, named '<input> T1 [ms]'; all or none. task (the network
        task or fit) is kept in the Q2MRI.Task attribute for the DICOM series description."""
        made: dict = {}
        base = like.GetName()
        try:
            for name, arr in maps.items():
                unit = "relative" if name == "consistency" else map_unit(name.split("_")[0])
                label = name if not name.endswith("_sd") else f"{name[:-3]} SD"
                made[name] = N.new_map_node(arr, like, name, f"{base} {label}{suffix} [{unit}]")
                if task:
                    made[name].SetAttribute("Q2MRI.Task", task)
        except Exception:
            N.remove_nodes(made.values())
            raise
        return made

    # ---- model-based fitting -------------------------------------------------------
    def computeFit(self, model: str, images: list[np.ndarray], acqs: list[Acquisition], *, device="auto",
                   progress=None, cancelled=None) -> dict[str, np.ndarray]:
        """Thread-safe: the q2mri fit of a series whose last axis is the image index."""
        from q2mri.fitting.afi import fit_b1_afi
        from q2mri.fitting.dam import fit_b1_dam
        from q2mri.fitting.dixon import fit_dixon_two_point
        from q2mri.fitting.fatwater import fit_fatwater
        from q2mri.fitting.inversion_recovery import fit_t1_ir
        from q2mri.fitting.relaxation import fit_t2, fit_t2star
        from q2mri.fitting.vfa import fit_vfa
        if model not in FIT_MODELS:
            raise Q2MRIError(f"unknown fit model {model!r}; choose one of {', '.join(FIT_MODELS)}")
        cb = _watch(progress, cancelled)
        data = np.stack(images, -1)

        def need(key: str) -> list[float]:
            vals = [getattr(a, key) for a in acqs]
            if any(v is None for v in vals):
                raise Q2MRIError(f"fit {model}: the {key} of every input is needed; enter it in Acquisition")
            return [float(v) for v in vals]

        if model == "vfa":       # one TR, or one per image (MPM/MTsat, Helms 2008)
            tr = need("tr_ms")
            return fit_vfa(data, need("flip_angle_deg"), tr[0] if len(set(tr)) == 1 else tr, device=device, progress=cb)
        if model == "t2star":
            return fit_t2star(data, need("te_ms"), device=device, progress=cb)
        if model == "t2":
            return fit_t2(data, need("te_ms"), device=device, progress=cb)
        if model == "t1-ir":
            return fit_t1_ir(data, need("ti_ms"), need("tr_ms")[0], device=device, progress=cb)
        if model == "b1-afi":
            tr = need("tr_ms")
            return {"B1": fit_b1_afi(data[..., 0], data[..., 1], need("flip_angle_deg")[0], tr[0], tr[1])["B1"]}
        if model == "b1-dam":
            fa = need("flip_angle_deg")
            if abs(fa[1] - 2.0 * fa[0]) > 0.01 * fa[0]:
                raise Q2MRIError(f"fit b1-dam: the second image must be at twice the first's flip angle, got "
                                 f"{fa[0]:g} and {fa[1]:g} deg")
            return {"B1": fit_b1_dam(data[..., 0], data[..., 1], fa[0])["B1"]}
        if model == "dixon":
            return fit_dixon_two_point(np.abs(data[..., 0]), np.abs(data[..., 1]))
        fs = acqs[0].field_strength_t or 3.0
        return fit_fatwater(data, need("te_ms"), fs, device=device, progress=cb)

    def fit(self, inputNodes, model: str, acquisition=None, *, device: str = "auto", progress=None,
            cancelled=None) -> dict:
        """Reference maps by model-based fitting of a series (fatwater: magnitudes then phases)."""
        inputNodes = list(inputNodes)
        images, acqs = self.inputsFor(inputNodes, model == "fatwater", acquisition)
        maps = self.computeFit(model, images, acqs, device=device, progress=progress, cancelled=cancelled)
        keep = {k: v for k, v in maps.items() if k in ("T1", "PD", "B1", "T2", "T2s", "R2s", "B0", "PDFF")}
        return self.publishMaps(keep, inputNodes[0], suffix=" fit", task=f"fit {model}")

    # ---- measurement ---------------------------------------------------------------
    @staticmethod
    def _map_items(mapNodes) -> list[tuple[str, object]]:
        if isinstance(mapNodes, Mapping):
            return list(mapNodes.items())
        return [(n.GetAttribute("Q2MRI.Map") or n.GetName(), n) for n in mapNodes]

    def segmentMask(self, segmentationNode, segmentId: str, mapNode) -> np.ndarray:
        """The segment as a boolean array on the map's grid (resampled if drawn elsewhere)."""
        arr = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, segmentId, mapNode)
        return np.asarray(arr) > 0

    def measure(self, segmentationNode, mapNodes, tableNode=None):
        """A table with one row per segment and map: Segment, Map, Unit, Voxels, Volume_mL,
        Mean, SD (sample SD, n - 1), Median, P5, P95 over the finite voxels of the segment
        (q2mri.metrics.roi), and Flagged: the voxels excluded because a fit flagged them (NaN)."""
        rows = []
        seg = segmentationNode.GetSegmentation()
        for i in range(seg.GetNumberOfSegments()):
            sid = seg.GetNthSegmentID(i)
            sname = seg.GetSegment(sid).GetName()
            for name, node in self._map_items(mapNodes):
                arr = slicer.util.arrayFromVolume(node)
                mask = self.segmentMask(segmentationNode, sid, node)
                st = region_statistics(np.asarray(arr)[mask], _voxel_volume_ml(node))
                rows.append((sname, name, node.GetAttribute("Q2MRI.Unit") or "",
                             *[st[c] for c in ROI_COLUMNS[3:]], st["Flagged"]))
        if tableNode is None:
            tableNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", f"{segmentationNode.GetName()} Q2MRI statistics")
        table = vtk.vtkTable()
        for j, col in enumerate(STAT_COLUMNS):
            arr = vtk.vtkStringArray() if j < 3 else (vtk.vtkIntArray() if col in ("Voxels", "Flagged") else vtk.vtkDoubleArray())
            arr.SetName(col)
            for r in rows:
                arr.InsertNextValue(r[j])
            table.AddColumn(arr)
        tableNode.SetAndObserveTable(table)
        for col, unit in (("Volume_mL", "mL"),):
            tableNode.SetColumnUnitLabel(col, unit)
        return tableNode

    # ---- DICOM --------------------------------------------------------------------
    def exportDicom(self, mapNodes, referenceVolumeNode, outDir: str, segmentationNode=None, tableNode=None, *,
                    progress=None, cancelled=None) -> list[str]:
        """DICOM Parametric Maps of the map nodes, derived from the DICOM series the reference
        volume was loaded from, plus a SEG of the segmentation and a TID 1500 report of its
        statistics (tableNode: a measure() table; computed when not given). The core writer
        (q2mri.dicom.export) writes all files into outDir or none. Maps on another grid than the
        series (e.g. slices in another order) are resampled onto it. Returns the written files."""
        from q2mri.dicom.export import export_dicom
        items = [(n, node) for n, node in self._map_items(mapNodes)]
        if not items:
            raise Q2MRIError("choose at least one map to export")
        first = items[0][1]
        geom = N.node_geometry(first)
        maps = {}
        for name, node in items:
            if not N.node_geometry(node).matches(geom):
                raise Q2MRIError(f"map {node.GetName()} is on another grid than {first.GetName()}; export maps of one grid")
            maps[name] = np.array(slicer.util.arrayFromVolume(node), dtype=np.float32, copy=True)
        labels = names = None
        if segmentationNode is not None:
            seg = segmentationNode.GetSegmentation()
            labels = np.zeros(maps[items[0][0]].shape, np.int64)
            names = {}
            scene = slicer.mrmlScene
            had = {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}
            for i in range(seg.GetNumberOfSegments()):
                sid = seg.GetNthSegmentID(i)
                labels[self.segmentMask(segmentationNode, sid, first) & (labels == 0)] = i + 1
                names[i + 1] = seg.GetSegment(sid).GetName()
            # slicer.util's labelmap export leaves display nodes behind: an export only reads the scene
            for node in [scene.GetNthNode(i) for i in range(scene.GetNumberOfNodes())]:
                if node.GetID() not in had:
                    scene.RemoveNode(node)
        rows = None
        if tableNode is not None:
            t = tableNode.GetTable()
            cols = [t.GetColumnName(j) for j in range(t.GetNumberOfColumns())]
            rows = [{c: t.GetValue(r, j).ToString() for j, c in enumerate(cols)} for r in range(t.GetNumberOfRows())]
        model = first.GetAttribute("Q2MRI.Task") or ""
        res = export_dicom(maps, geom, N.dicom_source(referenceVolumeNode), outDir, labels=labels, label_names=names,
                           table=rows, model=model, resample=True, progress=_watch(progress, cancelled))
        return [str(p) for p in res.files]

    @staticmethod
    def exportTable(tableNode, path: str) -> str:
        """Write a table node as CSV (comma-separated, header row)."""
        storage = slicer.vtkMRMLTableStorageNode()
        storage.SetFileName(str(path))
        storage.SetAutoFindSchema(False) if hasattr(storage, "SetAutoFindSchema") else None
        if not storage.WriteData(tableNode):
            raise Q2MRIError(f"could not write {path}; choose a writable folder")
        return str(path)

    def blandAltman(self, nodeA, nodeB, segmentationNode=None, segmentId: str | None = None):
        """A Slicer plot of the Bland-Altman analysis of two maps (e.g. predicted vs fitted) over
        a segment (or every voxel where both are non-zero): the points, the bias and the 95%
        limits of agreement (q2mri.metrics.agreement). Returns the plot chart node."""
        from q2mri.metrics.agreement import bland_altman
        a = np.asarray(slicer.util.arrayFromVolume(nodeA), dtype=np.float64)
        b = np.asarray(slicer.util.arrayFromVolume(nodeB), dtype=np.float64)
        if a.shape != b.shape:
            raise Q2MRIError("the two maps have different grids; resample one onto the other first")
        mask = np.isfinite(a) & np.isfinite(b) & (a != 0) & (b != 0)
        if segmentationNode is not None:
            sid = segmentId or segmentationNode.GetSegmentation().GetNthSegmentID(0)
            mask &= self.segmentMask(segmentationNode, sid, nodeA)
        if mask.sum() < 3:
            raise Q2MRIError("fewer than 3 voxels where both maps have values; draw a larger segment")
        x, y = a[mask], b[mask]
        ba = bland_altman(x, y)            # on every voxel; the plot shows at most 20,000 of them
        if x.size > 20000:   # a plot of every voxel of a volume is unreadable and slow
            idx = np.random.default_rng(0).choice(x.size, 20000, replace=False)
            x, y = x[idx], y[idx]
        mean, diff = (x + y) / 2, x - y
        name = f"Bland-Altman {nodeA.GetName()} vs {nodeB.GetName()}"
        lo, hi = float(mean.min()), float(mean.max())
        tnode = _table_node(name + " data", {"Mean": mean, "Difference": diff})
        lnode = _table_node(name + " lines", {"x": np.array([lo, hi]), "Bias": np.full(2, ba.bias),
                                              "LoA low": np.full(2, ba.loa_lower), "LoA high": np.full(2, ba.loa_upper)})
        chart = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLPlotChartNode", name)
        unit = nodeA.GetAttribute("Q2MRI.Unit") or ""
        chart.SetTitle(f"{name}: bias {ba.bias:.3g}, LoA {ba.loa_lower:.3g} to {ba.loa_upper:.3g} {unit}")
        chart.SetXAxisTitle(f"mean of the two [{unit}]")
        chart.SetYAxisTitle(f"{nodeA.GetName()} - {nodeB.GetName()} [{unit}]")
        pts = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", name + " points")
        pts.SetAndObserveTableNodeID(tnode.GetID())
        pts.SetXColumnName("Mean")
        pts.SetYColumnName("Difference")
        pts.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter)
        pts.SetLineStyle(slicer.vtkMRMLPlotSeriesNode.LineStyleNone)
        chart.AddAndObservePlotSeriesNodeID(pts.GetID())
        for col, style in (("Bias", slicer.vtkMRMLPlotSeriesNode.LineStyleSolid),
                           ("LoA low", slicer.vtkMRMLPlotSeriesNode.LineStyleDash),
                           ("LoA high", slicer.vtkMRMLPlotSeriesNode.LineStyleDash)):
            s = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", f"{name} {col}")
            s.SetAndObserveTableNodeID(lnode.GetID())
            s.SetXColumnName("x")
            s.SetYColumnName(col)
            s.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeLine)
            s.SetLineStyle(style)
            s.SetMarkerStyle(slicer.vtkMRMLPlotSeriesNode.MarkerStyleNone)
            chart.AddAndObservePlotSeriesNodeID(s.GetID())
        chart.SetAttribute("Q2MRI.Bias", repr(ba.bias))
        chart.SetAttribute("Q2MRI.LoA", f"{ba.loa_lower!r} {ba.loa_upper!r}")
        return chart

    # ---- synthesis -----------------------------------------------------------------
    def _synth_inputs(self, mapNodes: Mapping, sequence: str, params, index=None, contrast=None):
        from q2mri.synthesis import required_maps
        acq = N.as_acquisition(params)
        maps = {}
        for k in set(required_maps(sequence.lower(), acq)) | ({"B1"} & set(mapNodes)):
            if k not in mapNodes:
                continue
            arr = slicer.util.arrayFromVolume(mapNodes[k])
            maps[k] = np.array(arr[index] if index is not None else arr, dtype=np.float32)
        if contrast:
            maps = self._with_contrast(maps, mapNodes, contrast, index)
        return maps, acq

    def _with_contrast(self, maps, mapNodes, contrast: Mapping, index=None):
        """Virtual contrast in one segment (q2mri.contrast, papers/000 Discussion): contrast holds
        segmentation, segment (ID), and either T1 (ms; also T2, T2s, PD) or agent, concentration_mM and
        field_strength_t (relaxivities of Rohrer et al. 2005)."""
        from q2mri.contrast import with_agent
        like = mapNodes.get("T1") or next(iter(mapNodes.values()))
        key = (contrast["segmentation"].GetID(), contrast["segment"], like.GetID())
        cache = getattr(self, "_maskCache", {})
        if key not in cache:            # the segment on the maps' grid, once per drag (slices are ms each)
            scene = slicer.mrmlScene
            had = {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}
            cache = {key: self.segmentMask(contrast["segmentation"], contrast["segment"], like)}
            for node in [scene.GetNthNode(i) for i in range(scene.GetNumberOfNodes())]:
                if node.GetID() not in had:
                    scene.RemoveNode(node)
            self._maskCache = cache
        where = cache[key][index] if index is not None else cache[key]
        if contrast.get("agent"):
            return with_agent(maps, where, contrast["agent"], float(contrast.get("concentration_mM", 0.0)),
                              float(contrast.get("field_strength_t", 3.0)))
        out = dict(maps)
        for k in ("T1", "T2", "T2s", "PD"):
            if contrast.get(k) is not None and k in out:
                out[k] = np.array(out[k], copy=True)
                out[k][where] = float(contrast[k])
        return out

    def synthesize(self, mapNodes: Mapping, sequence: str, params, outputNode=None, contrast=None):
        """A new contrast from the maps with the sequence's signal equation (q2mri.synthesis,
        papers/000 A.4); into outputNode when given (its voxels replaced), else a new node.
        contrast: a virtual contrast in one segment first (see _with_contrast)."""
        from q2mri.synthesis import synthesize as core_synth
        self._maskCache = {}            # a full synthesis re-reads the segment (it may have been edited)
        maps, acq = self._synth_inputs(mapNodes, sequence, params, contrast=contrast)
        img = np.asarray(core_synth(maps, sequence, acq), dtype=np.float32)
        like = mapNodes.get("T1") or next(iter(mapNodes.values()))
        if outputNode is None:
            outputNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", f"synthetic {sequence} {self.describe(acq)}")
            ijk = vtk.vtkMatrix4x4()
            like.GetIJKToRASMatrix(ijk)
            outputNode.SetIJKToRASMatrix(ijk)
            slicer.util.updateVolumeFromArray(outputNode, img)
            outputNode.CreateDefaultDisplayNodes()
        else:
            slicer.util.updateVolumeFromArray(outputNode, img)
        outputNode.SetAttribute("Q2MRI.Synthetic", sequence)
        outputNode.SetAttribute("Q2MRI.Parameters", self.describe(acq))
        return outputNode

    def synthesizeSlice(self, mapNodes: Mapping, sequence: str, params, outputNode, k: int, contrast=None):
        """Only slice k (the visible one, while a slider is dragged): a few ms per slice."""
        from q2mri.synthesis import synthesize as core_synth
        maps, acq = self._synth_inputs(mapNodes, sequence, params, index=k, contrast=contrast)
        out = slicer.util.arrayFromVolume(outputNode)
        out[k] = np.asarray(core_synth(maps, sequence, acq), dtype=np.float32)
        slicer.util.arrayFromVolumeModified(outputNode)
        return outputNode

    @staticmethod
    def describe(acq: Acquisition) -> str:
        parts = [("FA", acq.flip_angle_deg, "deg"), ("TR", acq.tr_ms, "ms"), ("TE", acq.te_ms, "ms"),
                 ("TI", acq.ti_ms, "ms")]
        return " ".join(f"{k} {v:g} {u}" for k, v, u in parts if v is not None)

    # ---- display -------------------------------------------------------------------
    @staticmethod
    def showMap(mapNode, backgroundNode=None, opacity: float = 0.6) -> None:
        """The map as the foreground over its input in every slice view."""
        bg = backgroundNode or slicer.mrmlScene.GetNodeByID(mapNode.GetAttribute("Q2MRI.Source") or "")
        for comp in slicer.util.getNodesByClass("vtkMRMLSliceCompositeNode"):
            if bg is not None:
                comp.SetBackgroundVolumeID(bg.GetID())
            comp.SetForegroundVolumeID(mapNode.GetID())
            comp.SetForegroundOpacity(opacity)
        if has_application():
            slicer.util.setSliceViewerLayers(foreground=mapNode, foregroundOpacity=opacity)
