"""Q2MRI in the browser: a trame-slicer server over the same Q2MRIModuleLogic as the Slicer module.

    q2mri app [FILES...] [--host 127.0.0.1] [--port 8080]      (or ./run app ...)

trame-slicer supplies the MRML scene, the slice and 3D views (rendered on the server and
streamed as images) and the segment editor; this file wires the Q2MRI panel (ui.py) to the
Logic: predict with progress and Cancel, the map overlay with its colour legend, ROI statistics
after every stroke, contrast synthesis while a slider moves, and downloads. Every action runs
inside a guard that turns an error into a message on the page, so no action takes the server
down; the work itself runs in a worker thread so the page stays live.
"""
from __future__ import annotations

import asyncio
import atexit
import io
import shutil
import tempfile
import threading
import time
import traceback
import zipfile
from pathlib import Path

import numpy as np
import slicer
import vtk

from q2mri.errors import Q2MRIError

from Q2MRIModuleLib import Cancelled, Q2MRIModuleLogic
from Q2MRIModuleLib.headless import ensure_logics
from Q2MRIModuleLib.nodes import DICOM_KEYWORDS, quantity_maps, renew_legend

from . import files as F

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "Resources" / "SampleData" / "knee-vfa" / "case-0000"
SAMPLE_FILES = [SAMPLE / f"spgr_fa{fa}.nii.gz" for fa in ("30", "05", "10", "20")]
TASK_INPUTS = {
    "spgr-t1": ["SPGR image", "second SPGR image (optional)"],
    "t2star": ["T1w SPGR", "T2*w GRE echo"],
    "fatwater-ipop": ["in-phase magnitude", "out-of-phase magnitude", "in-phase phase (rad)", "out-of-phase phase (rad)"],
    "brain-t1t2": ["MPRAGE", "GRE (optional)", "FLAIR (optional)"],
}
ACQ_FIELDS = tuple(DICOM_KEYWORDS)          # flip_angle_deg, tr_ms, te_ms, ti_ms, field_strength_t
SLOTS = 4


class Q2MRIWebApp:
    def __init__(self, server=None, files: list[str] | None = None):
        from trame.app import get_server
        from trame_slicer import module as trame_slicer_module
        from trame_slicer.app.logic import SegmentEditorLogic
        from trame_slicer.core import LayoutManager, SlicerApp
        from trame_slicer.rca_view import register_rca_factories

        self.server = get_server(server, client_type="vue3")
        self.server.enable_module(trame_slicer_module)
        self.state, self.ctrl = self.server.state, self.server.controller
        self.tmp = Path(tempfile.mkdtemp(prefix="q2mri-app-"))
        atexit.register(shutil.rmtree, self.tmp, True)

        self.sapp = SlicerApp()
        slicer.mrmlScene = self.sapp.scene
        ensure_logics(self.sapp.app_logic)
        self.logic = Q2MRIModuleLogic()
        self.maps: dict = {}
        self.synth_node = None
        self.stats_table = None
        self._job = None
        self._init_state()
        # Data first, views after: views made on a loaded scene render once, not at every change.
        first = self._read_paths([Path(f) for f in files] if files else SAMPLE_FILES)
        register_rca_factories(self.sapp.view_manager, self.server)
        self.layout_manager = LayoutManager(self.sapp.scene, self.sapp.view_manager, self.server)
        self.layout_manager.register_layout_dict(LayoutManager.default_grid_configuration())
        self.segment_logic = SegmentEditorLogic(self.server, self.sapp)        # after the views: it edits in them
        self.sapp.segmentation_editor.segmentation_modified.connect(self._on_roi_changed)
        from .ui import build_ui
        self.ui = build_ui(self)
        self.segment_logic.set_ui(self.ui.segment_editor)
        self.layout_manager.set_layout("Quad View")
        self._bind()
        self._on_task(self.state.q2_task)
        self._after_load(first)
        for view in self._slice_views():       # the slice planes in the 3D view
            view.set_visible_in_3d(True)
        self.sapp.display_manager.reset_views()
        self.ctrl.on_server_ready.add(self._guard(self._warm_up))

    def _warm_up(self, **_) -> None:
        """torch and the networks load in a worker thread once the server is up, so the first page
        and its slices do not wait for them; then the device list and the range checks fill in."""
        from trame_server.utils.asynchronous import create_task

        async def warm():
            await asyncio.get_running_loop().run_in_executor(None, _import_networks)
            with self.state:
                self.state.q2_devices = [{"value": v, "title": t} for v, t in self.logic.deviceInfo()]
                self._networks_ready = True
                self._check_ranges()
        create_task(warm())

    # ---- state -----------------------------------------------------------------------
    def _init_state(self) -> None:
        s = self.state
        s.trame__title = "Q2MRI"
        s.q2_tasks = list(TASK_INPUTS)
        s.q2_task = "spgr-t1"
        s.q2_models, s.q2_model = [], None
        s.q2_devices = [{"value": "auto", "title": "auto"}, {"value": "cpu", "title": "CPU"}]
        s.q2_device = "auto"
        s.q2_volumes = []
        s.q2_slot_labels = TASK_INPUTS["spgr-t1"]
        for i in range(SLOTS):
            s[f"q2_in_{i}"] = None
            for f in ACQ_FIELDS:
                s[f"q2_acq_{i}_{f}"] = ""
        s.q2_warning = ""
        s.q2_running, s.q2_progress, s.q2_status = False, 0, ""
        s.q2_message, s.q2_show_message = "", False
        s.q2_map_names, s.q2_map, s.q2_opacity = [], None, 0.6
        s.q2_sequences = ["spgr", "gre", "se", "ir", "flair", "mprage"]
        s.q2_seq, s.q2_fa, s.q2_tr, s.q2_te, s.q2_ti = "spgr", 20.0, 20.0, 0.0, 900.0
        s.q2_show_synth = False
        s.q2_synth_seconds = 0.0
        s.q2_stats, s.q2_stats_headers = [], [{"title": c, "key": c} for c in
                                              ("Segment", "Map", "Unit", "Voxels", "Volume_mL", "Mean", "SD",
                                               "Median", "P5", "P95")]
        s.q2_upload = None
        s.q2_render_count = 0

    def _bind(self) -> None:
        s = self.state
        s.change("q2_task")(self._guard(self._on_task))
        for i in range(SLOTS):
            s.change(f"q2_in_{i}")(self._guard(lambda *a, **k: self._fill_acquisition()))
        for i in range(SLOTS):
            s.change(*[f"q2_acq_{i}_{f}" for f in ACQ_FIELDS])(self._guard(lambda *a, **k: self._check_ranges()))
        s.change("q2_map")(self._guard(self._on_show_map))
        s.change("q2_opacity")(self._guard(self._on_opacity))
        s.change("q2_seq", "q2_fa", "q2_tr", "q2_te", "q2_ti")(self._guard(self._on_synth))
        s.change("q2_show_synth")(self._guard(self._on_show_synth))
        s.change("q2_upload")(self._guard(self._on_upload))
        self.ctrl.q2_run = self._guard(self.run)
        self.ctrl.q2_cancel = self._guard(self.cancel)
        self.ctrl.q2_show_sd = self._guard(lambda: self._show_derived("_sd"))
        self.ctrl.q2_show_consistency = self._guard(lambda: self._show_derived("consistency"))
        self.ctrl.q2_save_synth = self._guard(self.save_synth)
        self.ctrl.q2_download_maps = self.download_maps
        self.ctrl.q2_download_table = self.download_table
        self.ctrl.q2_download_labelmap = self.download_labelmap
        self.ctrl.q2_download_view = self.download_view

    def message(self, text: str) -> None:
        with self.state:
            self.state.q2_message = text
            self.state.q2_show_message = bool(text)

    def _guard(self, fn):
        """An action's error becomes one message on the page; the server keeps serving."""
        def wrapped(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Q2MRIError as e:
                self.message(str(e))
            except Exception as e:  # noqa: BLE001 (any failure of one action must not end the server)
                traceback.print_exc()
                self.message(f"{type(e).__name__}: {e}")
        return wrapped

    # ---- loading -----------------------------------------------------------------------
    def _read_paths(self, paths: list[Path]) -> list:
        """Volume nodes for the files; all or none."""
        nodes = []
        try:
            for p in paths:
                nodes.append(F.read_volume(Path(p)))
        except Exception:
            for n in nodes:
                slicer.mrmlScene.RemoveNode(n)
            raise
        return nodes

    def _after_load(self, nodes: list) -> None:
        self._refresh_volumes()
        if nodes:
            self.state.q2_in_0 = nodes[0].GetID()
            self._show_background(nodes[0], reset=True)
            self.segment_logic.on_volume_changed(nodes[0])
        self._fill_acquisition()

    def _on_upload(self, q2_upload=None, **_):
        if not q2_upload:
            return
        uploads = q2_upload if isinstance(q2_upload, list) else [q2_upload]
        self.state.q2_upload = None
        self.message("")
        from trame.app.file_upload import ClientFile
        files = [ClientFile(u) for u in uploads]
        staged = F.stage([(f.name, f.content) for f in files], self.tmp / f"upload-{time.time_ns()}")
        if not staged:
            raise Q2MRIError("no image among the uploaded files; add the NIfTI/NRRD file next to its JSON sidecar")
        nodes = self._read_paths(staged)
        if len(nodes) > 1 and not all(F.same_grid(nodes[0], n) for n in nodes[1:]):
            for n in nodes:
                slicer.mrmlScene.RemoveNode(n)
            raise Q2MRIError("the uploaded images have different grids (size or orientation); upload images of one "
                             "series, or resample them onto one grid first")
        self._after_load(nodes)
        self.message("")
        with self.state:
            self.state.q2_status = f"loaded {', '.join(n.GetName() for n in nodes)}"

    def _refresh_volumes(self) -> None:
        vols = [n for n in slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode") if not n.GetAttribute("Q2MRI.Map")
                and not n.GetAttribute("Q2MRI.Synthetic") and not n.IsA("vtkMRMLLabelMapVolumeNode")]
        self.state.q2_volumes = [{"value": n.GetID(), "title": n.GetName()} for n in vols]

    # ---- task, inputs, acquisition ------------------------------------------------------
    def _on_task(self, q2_task=None, **_):
        task = q2_task or self.state.q2_task
        self.state.q2_slot_labels = TASK_INPUTS[task]
        cards = self.logic.listModels(task)
        self.state.q2_models = [{"value": c["path"], "title": Path(c["path"]).name + (" (below target)" if c.get("preview") else "")}
                                for c in cards]
        default = next((c for c in cards if c.get("default")), cards[0] if cards else None)
        self.state.q2_model = default["path"] if default else None
        self._fill_acquisition()

    def _input_nodes(self) -> list:
        n = len(self.state.q2_slot_labels)
        ids = [self.state[f"q2_in_{i}"] for i in range(n)]
        return [slicer.mrmlScene.GetNodeByID(i) for i in ids if i]

    def _fill_acquisition(self) -> None:
        for i in range(SLOTS):
            node_id = self.state[f"q2_in_{i}"] if i < len(self.state.q2_slot_labels) else None
            node = slicer.mrmlScene.GetNodeByID(node_id) if node_id else None
            acq = self.logic.acquisitionsFor([node])[0] if node is not None else None
            for f in ACQ_FIELDS:
                v = getattr(acq, f) if acq is not None else None
                self.state[f"q2_acq_{i}_{f}"] = "" if v is None else f"{v:g}"
        self._check_ranges()

    def _overrides(self) -> list[dict]:
        out = []
        for i in range(len(self._input_nodes())):
            row = {}
            for f in ACQ_FIELDS:
                raw = str(self.state[f"q2_acq_{i}_{f}"] or "").strip()
                if raw:
                    try:
                        row[f] = float(raw)
                    except ValueError:
                        raise Q2MRIError(f"input {i + 1}: {f} is {raw!r}, not a number; correct it in the table") from None
            out.append(row)
        return out

    def _check_ranges(self) -> None:
        if not getattr(self, "_networks_ready", False):
            return                                   # checked once the networks have loaded (_warm_up)
        try:
            notes = self.logic.rangeWarnings(self.state.q2_task, self._input_nodes(), self._overrides())
        except Exception as e:  # noqa: BLE001 (shown where the user edits)
            notes = [str(e)]
        self.state.q2_warning = "\n".join(notes)

    # ---- run / cancel ---------------------------------------------------------------------
    def run(self) -> None:
        if self._job is not None:
            raise Q2MRIError("a prediction is already running; wait for it or press Cancel")
        nodes = self._input_nodes()
        if not nodes:
            raise Q2MRIError("choose the input image(s) first")
        if not all(F.same_grid(nodes[0], n) for n in nodes[1:]):
            raise Q2MRIError("the inputs have different grids; choose images of one series")
        task, logic = self.state.q2_task, self.logic
        images, acqs = logic.inputsFor(nodes, task == "fatwater-ipop", self._overrides())
        job = {"cancel": False, "progress": (0, 1), "result": None, "error": None}
        self._job = job
        model, device = self.state.q2_model, self.state.q2_device

        def work():
            try:
                job["result"] = logic.computePrediction(task, images, acqs, device=device, model=model,
                                                        progress=lambda d, n: job.__setitem__("progress", (d, n)),
                                                        cancelled=lambda: job["cancel"])
            except BaseException as e:  # noqa: BLE001 (reported on the page)
                job["error"] = e
        with self.state:
            self.state.q2_running, self.state.q2_progress, self.state.q2_status = True, 0, "predicting..."
        threading.Thread(target=work, daemon=True).start()
        from trame_server.utils.asynchronous import create_task
        create_task(self._watch(job, nodes[0]))

    async def _watch(self, job, like) -> None:
        while self._job is job and not (job["result"] is not None or job["error"] is not None):
            d, n = job["progress"]
            with self.state:
                self.state.q2_progress = int(100 * d / max(n, 1))
            await asyncio.sleep(0.1)
        self._job = None
        with self.state:
            self.state.q2_running = False
            err = job["error"]
            if isinstance(err, Cancelled):
                self.state.q2_status, self.state.q2_progress = "cancelled: nothing was added", 0
            elif err is not None:
                self.state.q2_status = "failed"
                self.state.q2_message, self.state.q2_show_message = str(err), True
            else:
                self._guard(self._publish)(job["result"], like)

    def cancel(self) -> None:
        if self._job is not None:
            self._job["cancel"] = True
            self.state.q2_status = "cancelling..."

    def _publish(self, pred, like) -> None:
        for node in self.maps.values():
            slicer.mrmlScene.RemoveNode(node)
        self.maps = self.logic.publishMaps(pred.maps, like, task=self.state.q2_task)
        names = [k for k in self.maps if not k.endswith("_sd") and k != "consistency"]
        self.state.q2_map_names = names
        self.state.q2_map = names[0]
        self._on_show_map(names[0])
        warn = "; ".join(pred.warnings) if getattr(pred, "warnings", None) else "; ".join(self.logic.lastWarnings)
        cons = f", consistency residual {pred.consistency:.3f}" if pred.consistency is not None else ""
        self.state.q2_status = f"done{cons}" + (f" ({warn})" if warn else "")
        self.state.q2_progress = 100
        self._on_synth()
        self._on_roi_changed()

    # ---- display -----------------------------------------------------------------------------
    def _slice_views(self):
        return self.sapp.view_manager.get_slice_views()

    def _show_background(self, node, reset: bool = False) -> None:
        self.sapp.display_manager.show_volume_in_slice_background(node)
        if reset:
            self.sapp.display_manager.reset_views()

    def _on_show_map(self, q2_map=None, **_):
        node = self.maps.get(q2_map or self.state.q2_map)
        if node is None:
            return
        self.sapp.display_manager.show_volume_in_slice_foreground(node)
        renew_legend(node)
        self._on_opacity(self.state.q2_opacity)

    def _show_derived(self, which: str) -> None:
        key = f"{self.state.q2_map}_sd" if which == "_sd" else "consistency"
        if key not in self.maps:
            raise Q2MRIError("run a prediction first")
        self.sapp.display_manager.show_volume_in_slice_foreground(self.maps[key])

    def _on_opacity(self, q2_opacity=None, **_):
        for v in self._slice_views():
            v.set_foreground_opacity(float(q2_opacity if q2_opacity is not None else self.state.q2_opacity))

    # ---- synthesis ---------------------------------------------------------------------------
    def _synth_params(self) -> dict:
        s = self.state
        return {"flip_angle_deg": float(s.q2_fa), "tr_ms": float(s.q2_tr), "te_ms": float(s.q2_te),
                "ti_ms": float(s.q2_ti), "echo_spacing_ms": 7.0, "n_excitations": 176}

    def _on_synth(self, **_):
        if "T1" not in self.maps or "PD" not in self.maps:
            return
        t0 = time.perf_counter()
        new = self.synth_node is None
        self.synth_node = self.logic.synthesize(self.maps, self.state.q2_seq, self._synth_params(), self.synth_node)
        if new:
            # A fixed window, so that a contrast change shows as brighter or darker, not re-scaled.
            arr = slicer.util.arrayFromVolume(self.synth_node)
            hi = float(np.percentile(arr[arr > 0], 99.5)) if (arr > 0).any() else 1.0
            disp = self.synth_node.GetDisplayNode()
            disp.AutoWindowLevelOff()
            disp.SetWindowLevelMinMax(0.0, hi)
            self.synth_node.SetName("synthesized")
        self.state.q2_synth_seconds = time.perf_counter() - t0
        if self.state.q2_show_synth:
            self._show_background(self.synth_node)

    def _on_show_synth(self, q2_show_synth=None, **_):
        if q2_show_synth and self.synth_node is not None:
            self._show_background(self.synth_node)
        elif self._input_nodes():
            self._show_background(self._input_nodes()[0])

    def save_synth(self) -> None:
        if self.synth_node is None:
            raise Q2MRIError("predict maps first; synthesis needs T1 and PD")
        keep = self.logic.synthesize(self.maps, self.state.q2_seq, self._synth_params())
        keep.SetName(slicer.mrmlScene.GenerateUniqueName(keep.GetName()))
        self._refresh_volumes()

    # ---- ROI statistics ---------------------------------------------------------------------------
    def _on_roi_changed(self, *_args) -> None:
        seg = self.sapp.segmentation_editor.active_segmentation_node
        if seg is None or seg.GetSegmentation().GetNumberOfSegments() == 0:
            self.state.q2_stats = []
            return
        targets = quantity_maps(self.maps)
        if not targets and self._input_nodes():
            targets = {self._input_nodes()[0].GetName(): self._input_nodes()[0]}
        if not targets:
            return
        self.stats_table = self.logic.measure(seg, targets, self.stats_table)
        t = self.stats_table
        rows = []
        for r in range(t.GetNumberOfRows()):
            row = {t.GetColumnName(c): t.GetCellText(r, c) for c in range(t.GetNumberOfColumns())}
            for k in ("Volume_mL", "Mean", "SD", "Median", "P5", "P95"):
                try:
                    row[k] = f"{float(row[k]):.4g}"
                except ValueError:
                    pass
            rows.append(row)
        with self.state:
            self.state.q2_stats = rows

    # ---- downloads (attachments for utils.download) -----------------------------------------------
    def _attach(self, data: bytes):
        return self.server.protocol.addAttachment(data)

    def download_maps(self):
        if not self.maps:
            self.message("predict maps first")
            return None
        folder = self.tmp / f"maps-{time.time_ns()}"
        folder.mkdir()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for name, node in self.maps.items():
                path = folder / f"{name}.nii.gz"
                _write_volume(node, path)
                z.write(path, path.name)
        return self._attach(buf.getvalue())

    def download_dicom(self):
        """Parametric Maps (+ SEG and TID 1500 report of the drawn ROIs) derived from the uploaded
        DICOM series, zipped (Logic.exportDicom)."""
        ref = (self._input_nodes() or [None])[0]
        if not self.maps or ref is None:
            self.message("predict maps first")
            return None
        if not ref.GetAttribute("Q2MRI.DICOMSeries"):
            self.message("DICOM export needs the input uploaded as a zipped DICOM series")
            return None
        folder = self.tmp / f"dicom-{time.time_ns()}"
        seg = self.sapp.segmentation_editor.active_segmentation_node
        if seg is not None and seg.GetSegmentation().GetNumberOfSegments() == 0:
            seg = None
        maps = {k: v for k, v in self.maps.items() if k != "consistency"}
        try:
            # the statistics are recomputed from the segments on these maps (a table drawn on an
            # earlier input would not match them)
            files = self.logic.exportDicom(maps, ref, str(folder), seg, None)
        except Q2MRIError as e:
            if seg is None or "label" not in str(e):
                self.message(str(e))
                return None
            files = self.logic.exportDicom(maps, ref, str(folder.with_name(folder.name + "-maps")), None, None)
            self.message("the ROIs do not cover these maps: exported the maps only")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for f in files:
                z.write(f, Path(f).name)
        return self._attach(buf.getvalue())

    def download_table(self):
        if self.stats_table is None:
            self.message("draw an ROI first")
            return None
        path = self.tmp / f"roi-{time.time_ns()}.csv"
        self.logic.exportTable(self.stats_table, path)
        return self._attach(path.read_bytes())

    def download_labelmap(self):
        seg = self.sapp.segmentation_editor.active_segmentation_node
        ref = (self._input_nodes() or [None])[0]
        if seg is None or ref is None:
            self.message("draw an ROI first")
            return None
        label = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "roi labelmap")
        try:
            slicer.modules.segmentations.logic().ExportVisibleSegmentsToLabelmapNode(seg, label, ref)
            path = self.tmp / f"roi-{time.time_ns()}.nii.gz"
            _write_volume(label, path)
            return self._attach(path.read_bytes())
        finally:
            slicer.mrmlScene.RemoveNode(label)

    def download_view(self):
        views = self._slice_views()
        if not views:
            return None
        grab = vtk.vtkWindowToImageFilter()
        grab.SetInput(views[0].render_window())
        grab.Update()
        writer = vtk.vtkPNGWriter()
        writer.WriteToMemoryOn()
        writer.SetInputConnection(grab.GetOutputPort())
        writer.Write()
        return self._attach(bytes(memoryview(writer.GetResult())))


def _import_networks() -> None:
    import q2mri.models.predict  # noqa: F401  (torch, the tasks and the physics)


def _write_volume(node, path: Path) -> None:
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(str(path))
    storage.UseCompressionOn()
    if not storage.WriteData(node):
        raise Q2MRIError(f"could not write {path.name}")


def main(files: list[str] | None = None, host: str = "127.0.0.1", port: int = 8080) -> None:
    app = Q2MRIWebApp(files=files)
    print(f"Q2MRI web app on http://{host}:{port}/", flush=True)
    app.server.start(host=host, port=port, open_browser=False, timeout=0, show_connection_info=False)
