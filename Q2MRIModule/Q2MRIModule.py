"""Q2MRI: quantitative maps (T1, PD, B1, T2, T2*, R2*, B0, PDFF) from the weighted images a
clinic already acquires, inside 3D Slicer.

The widget only wires the GUI (Resources/UI/Q2MRIModule.ui) to Q2MRIModuleLib.Q2MRIModuleLogic,
which holds all the work and runs on a plain MRML scene without Qt. This file imports without
the Slicer application too: the Qt classes are defined only where Qt and the scripted-module
base classes exist, and `from Q2MRIModule import Q2MRIModuleLogic` loads the Logic lazily
(headless use: set slicer.mrmlScene to a vtkMRMLScene first; see Q2MRIModuleLib/logic.py).
"""
from __future__ import annotations

import os
import sys
import threading

import slicer

MODULE_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_CORE = os.path.join(os.path.dirname(MODULE_DIR), "Q2MRI")          # a checkout (Additional module paths)
RESOURCES = os.path.join(os.path.dirname(MODULE_DIR), "Resources")
TASK_INPUTS = {   # what each task's input selectors ask for (magnitudes then phases for complex echoes)
    "spgr-t1": ["SPGR image", "second SPGR image (optional)"],
    "t2star": ["T1w SPGR", "T2*w GRE echo"],
    "fatwater-ipop": ["in-phase magnitude", "out-of-phase magnitude", "in-phase phase (rad)", "out-of-phase phase (rad)"],
    "brain-t1t2": ["MPRAGE", "GRE (optional)", "FLAIR (optional)"],
}
FIT_INPUTS = {"vfa": "SPGR images at 2+ flip angles", "t2star": "multi-echo GRE magnitudes",
              "t2": "multi-echo spin-echo magnitudes", "t1-ir": "inversion-recovery images",
              "b1-afi": "AFI TR1 and TR2 images",
              "b1-dam": "double-angle pair: the A image, then 2A (long TR)", "dixon": "in-phase and out-of-phase magnitudes",
              "fatwater": "echo magnitudes, then echo phases (rad)"}


def _core_on_path() -> None:
    if os.path.isdir(os.path.join(REPO_CORE, "q2mri")) and REPO_CORE not in sys.path:
        sys.path.insert(0, REPO_CORE)
    if os.path.isdir(os.path.join(RESOURCES, "Models")):
        os.environ.setdefault("Q2MRI_MODELS_DIR", os.path.join(RESOURCES, "Models"))


def __getattr__(name):
    """Lazy Logic import (PEP 562): the core library is only needed when it is used."""
    if name in ("Q2MRIModuleLogic", "Cancelled"):
        _core_on_path()
        from Q2MRIModuleLib import logic
        return getattr(logic, name)
    raise AttributeError(name)


try:  # the Slicer application
    import qt
    import vtk
    from slicer.parameterNodeWrapper import parameterNodeWrapper
    from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleTest,
                                               ScriptedLoadableModuleWidget)
    from slicer.util import VTKObservationMixin
    HAVE_APP = hasattr(slicer, "app")
except ImportError:
    HAVE_APP = False


def missingDependencies() -> list[str]:
    """What the module still needs in Slicer's Python (torch, the core library's packages)."""
    _core_on_path()
    missing = []
    for mod, pkg in (("torch", "torch"), ("numpy", "numpy"), ("scipy", "scipy"), ("SimpleITK", "SimpleITK"),
                     ("nibabel", "nibabel"), ("cmcrameri", "cmcrameri"), ("safetensors", "safetensors"),
                     ("tqdm", "tqdm"), ("matplotlib", "matplotlib")):
        try:
            __import__(mod)
        except ImportError:
            missing.append(pkg)
    return missing


def ensureDependencies(confirm=True) -> bool:
    """Install what is missing, after the user agrees: torch through PyTorchUtils (it picks the
    CUDA build for the driver), the rest from Resources/requirements.txt with
    slicer.packaging.pip_ensure where this Slicer has it, else slicer.util.pip_install."""
    missing = missingDependencies()
    if not missing:
        return True
    if confirm and not slicer.util.confirmOkCancelDisplay(
            f"Q2MRI needs these Python packages: {', '.join(missing)}. Install them now (a few minutes)?"):
        return False
    if "torch" in missing:
        try:
            import PyTorchUtils
        except ImportError:
            slicer.util.errorDisplay("Q2MRI needs PyTorch: install the 'PyTorch' extension (PyTorchUtils) from the "
                                     "Extensions Manager, restart Slicer, and open Q2MRI again.")
            return False
        if PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False) is None:
            slicer.util.errorDisplay("PyTorch could not be installed; see the PyTorch module for details.")
            return False
    req = os.path.join(MODULE_DIR, "Resources", "requirements.txt")
    with open(req) as f:
        reqs = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
    packaging = getattr(slicer, "packaging", None)
    with slicer.util.WaitCursor():
        if packaging is not None and hasattr(packaging, "pip_ensure"):
            packaging.pip_ensure(reqs)
        else:
            slicer.util.pip_install(reqs)
    return not missingDependencies()


if HAVE_APP:

    class Q2MRIModule(ScriptedLoadableModule):
        def __init__(self, parent):
            ScriptedLoadableModule.__init__(self, parent)
            self.parent.title = "Q2MRI"
            self.parent.categories = ["Quantification"]
            self.parent.dependencies = []
            self.parent.contributors = ["Q2MRI developers"]
            self.parent.helpText = ("Quantitative maps (T1, PD, B1, T2, T2*, R2*, B0, PDFF) predicted by deep networks "
                                    "from standard weighted images, with uncertainty and a physics-consistency map; "
                                    "ROI statistics, Bland-Altman plots, Bloch-equation contrast synthesis and "
                                    "model-based fitting. Not for clinical use.")
            self.parent.acknowledgementText = "Methods: papers/000-004 of the Q2MRI repository."
            slicer.app.connect("startupCompleted()", registerSampleData)

    def registerSampleData():
        """The bundled knee case (SPGR at 5/10/20/30 deg and its true maps) in Sample Data."""
        import SampleData
        case = os.path.join(RESOURCES, "SampleData", "knee-vfa", "case-0000")
        if not os.path.isdir(case):
            return
        names = ["spgr_fa05", "spgr_fa10", "spgr_fa20", "spgr_fa30"]
        SampleData.SampleDataLogic.registerCustomSampleDataSource(
            category="Q2MRI", sampleName="Q2MRI knee (SPGR 5-30 deg)",
            thumbnailFileName=os.path.join(MODULE_DIR, "Resources", "Icons", "Q2MRIModule.png"),
            uris=["file://" + os.path.join(case, n + ".nii.gz") for n in names],
            fileNames=[n + ".nii.gz" for n in names], nodeNames=names, loadFileType="VolumeFile")

    @parameterNodeWrapper
    class Q2MRIModuleParameterNode:
        """Bound to the widgets whose SlicerParameterName property names them (the .ui)."""
        inputVolume0: slicer.vtkMRMLScalarVolumeNode
        inputVolume1: slicer.vtkMRMLScalarVolumeNode
        inputVolume2: slicer.vtkMRMLScalarVolumeNode
        inputVolume3: slicer.vtkMRMLScalarVolumeNode
        opacity: float = 0.6
        synthFlipAngle: float = 20.0
        synthTR: float = 20.0
        synthTE: float = 0.0
        synthTI: float = 900.0

    class Q2MRIModuleWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
        INPUTS = 4

        def __init__(self, parent=None):
            ScriptedLoadableModuleWidget.__init__(self, parent)
            VTKObservationMixin.__init__(self)
            self.logic = None
            self._parameterNode = None
            self._maps: dict = {}
            self._job = None
            self._synthNode = None

        # ---- set-up: wiring only --------------------------------------------------
        def setup(self):
            ScriptedLoadableModuleWidget.setup(self)
            w = slicer.util.loadUI(self.resourcePath("UI/Q2MRIModule.ui"))
            self.layout.addWidget(w)
            self.ui = slicer.util.childWidgetVariables(w)
            w.setMRMLScene(slicer.mrmlScene)
            for name in TASK_INPUTS:
                self.ui.taskSelector.addItem(name)
            for name in FIT_INPUTS:
                self.ui.fitModelSelector.addItem(name)
            for name in ("spgr", "gre", "se", "ir", "flair", "mprage"):
                self.ui.sequenceSelector.addItem(name)
            self.ui.cancelButton.enabled = False
            self.ui.progressBar.setValue(0)
            self._timer = qt.QTimer()
            self._timer.setInterval(100)
            self._timer.connect("timeout()", self._poll)
            self.ui.taskSelector.connect("currentTextChanged(QString)", self._onTask)
            self.ui.fitModelSelector.connect("currentTextChanged(QString)", lambda t: self.ui.fitInputsLabel.setText(FIT_INPUTS.get(t, "")))
            for i in range(self.INPUTS):
                getattr(self.ui, f"inputSelector{i}").connect("currentNodeChanged(vtkMRMLNode*)", lambda _n: self._fillAcquisition())
            self.ui.acquisitionTable.connect("cellChanged(int,int)", lambda r, c: self._checkRanges())
            self.ui.runButton.connect("clicked(bool)", self.onRun)
            self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
            self.ui.mapSelector.connect("currentTextChanged(QString)", self._onShowMap)
            self.ui.opacitySlider.connect("valueChanged(double)", self._onOpacity)
            self.ui.showSdButton.connect("clicked(bool)", lambda: self._showDerived("_sd"))
            self.ui.showConsistencyButton.connect("clicked(bool)", lambda: self._showDerived("consistency"))
            self.ui.segmentEditorButton.connect("clicked(bool)", self.onSegmentEditor)
            self.ui.measureButton.connect("clicked(bool)", self.onMeasure)
            self.ui.exportCsvButton.connect("clicked(bool)", self.onExportCsv)
            self.ui.exportDicomButton.connect("clicked(bool)", self.onExportDicom)
            self.ui.blandAltmanButton.connect("clicked(bool)", self.onBlandAltman)
            for s in ("synthFlipAngleSlider", "synthTRSlider", "synthTESlider", "synthTISlider"):
                # ctkSliderWidget without tracking: valueIsChanging while dragging (the visible
                # slice only), valueChanged on release (the whole volume).
                slider = getattr(self.ui, s)
                slider.tracking = False
                slider.connect("valueIsChanging(double)", self._onSynthDrag)
                slider.connect("valueChanged(double)", lambda _v: self._onSynthRelease())
            self.ui.sequenceSelector.connect("currentTextChanged(QString)", lambda _t: self._onSynthRelease())
            from q2mri.contrast import RELAXIVITY
            self.ui.contrastAgentSelector.addItems(["set T1"] + list(RELAXIVITY))
            for s in ("contrastConcentrationSlider", "contrastT1Slider"):
                slider = getattr(self.ui, s)
                slider.tracking = False
                slider.connect("valueIsChanging(double)", self._onSynthDrag)
                slider.connect("valueChanged(double)", lambda _v: self._onSynthRelease())
            self.ui.virtualContrastCheckBox.connect("toggled(bool)", lambda _b: self._onSynthRelease())
            self.ui.contrastAgentSelector.connect("currentTextChanged(QString)", lambda _t: self._onSynthRelease())
            self.ui.contrastSegmentSelector.connect("currentIndexChanged(int)", lambda _i: self._onSynthRelease())
            self.ui.segmentationSelector.connect("currentNodeChanged(vtkMRMLNode*)", self._fillContrastSegments)
            self.ui.saveSynthButton.connect("clicked(bool)", self.onSaveSynth)
            self.ui.fitButton.connect("clicked(bool)", self.onFit)
            self.ui.installButton.connect("clicked(bool)", self.onInstall)
            self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
            self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
            self._dependencyState()
            self.initializeParameterNode()

        def _dependencyState(self) -> bool:
            missing = missingDependencies()
            self.ui.dependencyFrame.visible = bool(missing)
            self.ui.dependencyLabel.setText("Missing Python packages: " + ", ".join(missing) if missing else "")
            if not missing and self.logic is None:
                self.logic = __getattr__("Q2MRIModuleLogic")()
                self._fillDevices()
                self._onTask(self.ui.taskSelector.currentText)
            self.ui.runButton.enabled = not missing
            return not missing

        def onInstall(self):
            with slicer.util.tryWithErrorDisplay("Installing Q2MRI's dependencies failed.", waitCursor=True):
                ensureDependencies()
            self._dependencyState()

        def cleanup(self):
            self.onCancel()
            self.removeObservers()

        def enter(self):
            self.initializeParameterNode()

        def exit(self):
            if self._parameterNode:
                self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
                self._parameterNodeGuiTag = None

        def onSceneStartClose(self, caller, event):
            self.onCancel()
            self._maps = {}
            self.setParameterNode(None)

        def onSceneEndClose(self, caller, event):
            if self.parent.isEntered:
                self.initializeParameterNode()

        def initializeParameterNode(self):
            if self.logic is not None:
                self.setParameterNode(Q2MRIModuleParameterNode(self.logic.getParameterNode()))

        def setParameterNode(self, node):
            if self._parameterNode:
                self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNode = node
            if node:
                self._parameterNodeGuiTag = node.connectGui(self.ui)

        # ---- inputs and acquisition --------------------------------------------------
        def _onTask(self, task):
            labels = TASK_INPUTS.get(task, [])
            for i in range(self.INPUTS):
                lab, sel = getattr(self.ui, f"inputLabel{i}"), getattr(self.ui, f"inputSelector{i}")
                lab.visible = sel.visible = i < len(labels)
                lab.setText(labels[i] if i < len(labels) else "")
            self.ui.modelSelector.clear()
            if self.logic is None:
                return
            for card in self.logic.listModels(task):
                name = os.path.basename(card["path"])
                self.ui.modelSelector.addItem(name + (" (below target)" if card.get("preview") else ""), name)
            cards = self.logic.listModels(task)
            default = next((c for c in cards if c.get("default")), cards[0] if cards else None)
            self.ui.modelCardLabel.setText(_cardSummary(default) if default else "No bundled model for this task.")
            self._fillAcquisition()

        def _inputs(self):
            selectors = [getattr(self.ui, f"inputSelector{i}") for i in range(self.INPUTS)]
            return [s.currentNode() for s in selectors if s.visible and s.currentNode() is not None]

        def _fillAcquisition(self):
            if self.logic is None:
                return
            from Q2MRIModuleLib.nodes import DICOM_KEYWORDS
            nodes = self._inputs()
            t = self.ui.acquisitionTable
            t.blockSignals(True)
            t.setRowCount(len(nodes))
            for r, node in enumerate(nodes):
                acq = self.logic.acquisitionsFor([node])[0]
                t.setVerticalHeaderItem(r, qt.QTableWidgetItem(node.GetName()))
                for c, key in enumerate(DICOM_KEYWORDS):
                    v = getattr(acq, key)
                    t.setItem(r, c, qt.QTableWidgetItem("" if v is None else f"{v:g}"))
            t.blockSignals(False)
            self._checkRanges()

        def _acquisitionOverrides(self) -> list[dict]:
            from Q2MRIModuleLib.nodes import DICOM_KEYWORDS
            t, out = self.ui.acquisitionTable, []
            for r in range(t.rowCount):
                row = {}
                for c, key in enumerate(DICOM_KEYWORDS):
                    item = t.item(r, c)
                    if item is not None and item.text().strip():
                        row[key] = float(item.text())
                out.append(row)
            return out

        def _checkRanges(self):
            try:
                notes = self.logic.rangeWarnings(self.ui.taskSelector.currentText, self._inputs(),
                                                 self._acquisitionOverrides())
            except Exception as e:     # an unparsable cell: say so where the user looks
                notes = [str(e)]
            self.ui.rangeWarningLabel.setText("\n".join(notes))

        def _fillDevices(self):
            self.ui.deviceSelector.clear()
            for value, label in self.logic.deviceInfo():
                self.ui.deviceSelector.addItem(label, value)

        # ---- run / cancel: work in a thread, scene changes on the main thread ---------
        def onRun(self):
            if not self._dependencyState() and not ensureDependencies():
                return
            with slicer.util.tryWithErrorDisplay("Q2MRI prediction failed.", waitCursor=False):
                nodes = self._inputs()
                if not nodes:
                    raise ValueError("select the input image(s) first")
                task = self.ui.taskSelector.currentText
                model = self.ui.modelSelector.currentData
                device = self.ui.deviceSelector.currentData or "auto"
                logic = self.logic
                self._registerInputs(nodes, task == "fatwater-ipop")
                images, acqs = logic.inputsFor(nodes, task == "fatwater-ipop", self._acquisitionOverrides())
                self._start(lambda prog, cancelled: logic.computePrediction(
                    task, images, acqs, device=device, model=model, progress=prog, cancelled=cancelled).maps,
                    lambda maps: self._publish(maps, nodes[0], ""))

        def onFit(self):
            with slicer.util.tryWithErrorDisplay("Q2MRI fit failed.", waitCursor=False):
                nodes = list(self.ui.fitInputsSelector.checkedNodes())
                model = self.ui.fitModelSelector.currentText
                logic = self.logic
                self._registerInputs(nodes, model == "fatwater")
                images, acqs = logic.inputsFor(nodes, model == "fatwater")
                keep = ("T1", "PD", "B1", "T2", "T2s", "R2s", "B0", "PDFF")
                self._start(lambda prog, cancelled: {k: v for k, v in logic.computeFit(
                    model, images, acqs, progress=prog, cancelled=cancelled).items() if k in keep},
                    lambda maps: self._publish(maps, nodes[0], " fit"))

        def _registerInputs(self, nodes, complex_inputs=False):
            """With Register inputs checked: each input not yet under a transform is registered onto
            the first (Logic.register adds the transform node and places the input under it); for
            complex inputs (magnitudes, then phases) each phase follows its magnitude."""
            if not self.ui.registerCheckBox.checked:
                return
            mags = nodes[: len(nodes) // 2] if complex_inputs else nodes
            with slicer.util.WaitCursor():
                for node in mags[1:]:
                    if node.GetParentTransformNode() is None:
                        self.logic.register(nodes[0], node)
                if complex_inputs:
                    for mag, phase in zip(mags, nodes[len(mags):]):
                        t = mag.GetParentTransformNode()
                        phase.SetAndObserveTransformNodeID(t.GetID() if t is not None else None)

        def _start(self, work, done):
            self._job = {"cancel": False, "progress": (0, 1), "result": None, "error": None, "done": done}
            job = self._job

            def run():
                try:
                    job["result"] = work(lambda d, n: job.__setitem__("progress", (d, n)), lambda: job["cancel"])
                except Exception as e:   # reported on the main thread by _poll
                    job["error"] = e
            self.ui.runButton.enabled = False
            self.ui.cancelButton.enabled = True
            self.ui.statusLabel.setText("Running...")
            job["thread"] = threading.Thread(target=run, daemon=True)
            job["thread"].start()
            self._timer.start()

        def _poll(self):
            job = self._job
            if job is None:
                return
            d, n = job["progress"]
            self.ui.progressBar.setValue(int(100 * d / max(n, 1)))
            if job["thread"].is_alive():
                return
            self._timer.stop()
            self._job = None
            self.ui.runButton.enabled = True
            self.ui.cancelButton.enabled = False
            from Q2MRIModuleLib import Cancelled
            if isinstance(job["error"], Cancelled):
                self.ui.statusLabel.setText("Cancelled; nothing was added to the scene.")
                self.ui.progressBar.setValue(0)
            elif job["error"] is not None:
                self.ui.statusLabel.setText("Failed.")
                slicer.util.errorDisplay(str(job["error"]))
            else:
                with slicer.util.tryWithErrorDisplay("Adding the maps to the scene failed."):
                    job["done"](job["result"])

        def onCancel(self):
            if self._job is not None:
                self._job["cancel"] = True
                self.ui.statusLabel.setText("Cancelling...")

        def _publish(self, maps, like, suffix):
            made = self.logic.publishMaps(maps, like, suffix)
            self._maps.update(made)
            self.ui.mapSelector.clear()
            for name in made:
                if not name.endswith("_sd") and name != "consistency":
                    self.ui.mapSelector.addItem(name)
            warn = "\n".join(self.logic.lastWarnings)
            cons = f"consistency residual {self.logic.lastConsistency:.3f}" if self.logic.lastConsistency is not None else ""
            self.ui.statusLabel.setText("Done. " + cons + ("\n" + warn if warn else ""))
            for a, b in (("baMapASelector", None), ("baMapBSelector", None)):
                getattr(self.ui, a).setCurrentNode(made.get("T1") or next(iter(made.values())))

        # ---- display ---------------------------------------------------------------
        def _onShowMap(self, name):
            node = self._maps.get(name)
            if node is not None:
                self.logic.showMap(node, opacity=self.ui.opacitySlider.value)

        def _showDerived(self, which):
            name = self.ui.mapSelector.currentText
            key = name + "_sd" if which == "_sd" else "consistency"
            if key in self._maps:
                self.logic.showMap(self._maps[key], opacity=self.ui.opacitySlider.value)

        def _onOpacity(self, value):
            for comp in slicer.util.getNodesByClass("vtkMRMLSliceCompositeNode"):
                comp.SetForegroundOpacity(value)

        # ---- measure -----------------------------------------------------------------
        def onSegmentEditor(self):
            seg = self.ui.segmentationSelector.currentNode()
            if seg is None:
                seg = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Q2MRI ROIs")
                self.ui.segmentationSelector.setCurrentNode(seg)
            slicer.util.selectModule("SegmentEditor")
            editor = slicer.modules.segmenteditor.widgetRepresentation().self().editor
            editor.setSegmentationNode(seg)
            ref = self._maps.get("T1") or (self._inputs() or [None])[0]
            if ref is not None:
                editor.setSourceVolumeNode(ref) if hasattr(editor, "setSourceVolumeNode") else editor.setMasterVolumeNode(ref)

        def onMeasure(self):
            with slicer.util.tryWithErrorDisplay("Measuring failed.", waitCursor=True):
                seg = self.ui.segmentationSelector.currentNode()
                if seg is None or not self._maps:
                    raise ValueError("predict or fit maps, and pick a segmentation with at least one segment")
                from Q2MRIModuleLib.nodes import quantity_maps
                self._table = self.logic.measure(seg, quantity_maps(self._maps))
                self.ui.tableView.setMRMLTableNode(self._table)

        def onExportCsv(self):
            with slicer.util.tryWithErrorDisplay("Export failed."):
                if getattr(self, "_table", None) is None:
                    raise ValueError("press Measure first")
                path = qt.QFileDialog.getSaveFileName(None, "Export statistics", "q2mri-statistics.csv", "CSV (*.csv)")
                if path:
                    self.logic.exportTable(self._table, path)

        def onExportDicom(self):
            with slicer.util.tryWithErrorDisplay("DICOM export failed.", waitCursor=True):
                ref = self.ui.inputSelector0.currentNode()
                if ref is None or not self._maps:
                    raise ValueError("predict or fit maps from a series loaded through the DICOM module first")
                out = qt.QFileDialog.getExistingDirectory(None, "Export DICOM into a new, empty folder")
                if not out:
                    return
                maps = {k: v for k, v in self._maps.items() if k != "consistency"}
                files = self.logic.exportDicom(maps, ref, out, self.ui.segmentationSelector.currentNode(),
                                               getattr(self, "_table", None))
                slicer.util.infoDisplay(f"Wrote {len(files)} DICOM objects to {out}; import the folder with the "
                                        "DICOM module or send it to the PACS (q2mri pacs send).")

        def onBlandAltman(self):
            with slicer.util.tryWithErrorDisplay("Bland-Altman failed."):
                a, b = self.ui.baMapASelector.currentNode(), self.ui.baMapBSelector.currentNode()
                if a is None or b is None:
                    raise ValueError("choose two maps, e.g. predicted and fitted T1")
                chart = self.logic.blandAltman(a, b, self.ui.segmentationSelector.currentNode())
                slicer.app.layoutManager().setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpPlotView)
                slicer.modules.plots.logic().ShowChartInLayout(chart)

        # ---- synthesize: the visible slice while dragging, the volume on release -----
        def _synthParams(self) -> dict:
            return {"flip_angle_deg": self.ui.synthFlipAngleSlider.value, "tr_ms": self.ui.synthTRSlider.value,
                    "te_ms": self.ui.synthTESlider.value, "ti_ms": self.ui.synthTISlider.value,
                    "echo_spacing_ms": 7.0, "n_excitations": 176}

        def _fillContrastSegments(self, node):
            self.ui.contrastSegmentSelector.clear()
            if node is None:
                return
            seg = node.GetSegmentation()
            for i in range(seg.GetNumberOfSegments()):
                sid = seg.GetNthSegmentID(i)
                self.ui.contrastSegmentSelector.addItem(seg.GetSegment(sid).GetName(), sid)

        def _contrast(self):
            """The virtual contrast of the panel (Logic.synthesize's contrast), or None."""
            seg = self.ui.segmentationSelector.currentNode()
            sid = self.ui.contrastSegmentSelector.currentData
            if not self.ui.virtualContrastCheckBox.checked or seg is None or not sid:
                return None
            agent = self.ui.contrastAgentSelector.currentText
            c = {"segmentation": seg, "segment": sid}
            if agent == "set T1":
                c["T1"] = self.ui.contrastT1Slider.value
            else:
                field = 3.0
                for node in self._inputs():
                    v = node.GetAttribute("MagneticFieldStrength")
                    if v:
                        field = float(v)
                        break
                # the inputs' field strength (relaxivities are tabulated at 1.5 and 3 T: others are refused)
                c.update(agent=agent, concentration_mM=self.ui.contrastConcentrationSlider.value, field_strength_t=field)
            return c

        def _onSynthDrag(self, _value):
            if not self._maps or self._synthNode is None:
                return self._onSynthRelease()
            k = _visibleSlice(self._synthNode)
            if k is not None:
                self.logic.synthesizeSlice(self._maps, self.ui.sequenceSelector.currentText, self._synthParams(),
                                           self._synthNode, k, contrast=self._contrast())

        def _onSynthRelease(self):
            if not self._maps:
                return
            with slicer.util.tryWithErrorDisplay("Synthesis failed."):
                self._synthNode = self.logic.synthesize(self._maps, self.ui.sequenceSelector.currentText,
                                                        self._synthParams(), self._synthNode, contrast=self._contrast())
                slicer.util.setSliceViewerLayers(background=self._synthNode)

        def onSaveSynth(self):
            if self._synthNode is None:
                return
            keep = self.logic.synthesize(self._maps, self.ui.sequenceSelector.currentText, self._synthParams(),
                                         contrast=self._contrast())
            keep.SetName(slicer.mrmlScene.GenerateUniqueName(keep.GetName()))

    def _cardSummary(card: dict) -> str:
        ranges = ", ".join(f"{k} {v[0]:g}-{v[1]:g}" for k, v in card.get("protocol_ranges", {}).items())
        return (f"{card.get('description', '')}\nin: {', '.join(card.get('inputs', []))}; out: "
                f"{', '.join(card.get('outputs', []))}\nranges: {ranges}" + ("\nBELOW TARGET: see the model card"
                                                                             if card.get("preview") else ""))

    def _visibleSlice(node):
        """The K index of node shown in the Red view (the slice the user looks at)."""
        lm = slicer.app.layoutManager()
        if lm is None:
            return None
        sl = lm.sliceWidget("Red").sliceLogic()
        ras = sl.GetSliceNode().GetSliceToRAS()
        m = vtk.vtkMatrix4x4()
        node.GetRASToIJKMatrix(m)
        ijk = m.MultiplyPoint([ras.GetElement(0, 3), ras.GetElement(1, 3), ras.GetElement(2, 3), 1.0])
        k = int(round(ijk[2]))
        return k if 0 <= k < node.GetImageData().GetDimensions()[2] else None

    class Q2MRIModuleTest(ScriptedLoadableModuleTest):
        """Runs inside Slicer (Reload and Test): sample -> predict -> measure -> synthesize.
        Keep in step with Testing/Python/test_slicer_logic.py, which checks the same headless."""

        def setUp(self):
            slicer.mrmlScene.Clear()

        def runTest(self):
            self.setUp()
            self.test_predict_measure_synthesize()

        def test_predict_measure_synthesize(self):
            import numpy as np
            self.delayDisplay("Loading the Q2MRI sample")
            case = os.path.join(RESOURCES, "SampleData", "knee-vfa", "case-0000")
            src = slicer.util.loadVolume(os.path.join(case, "spgr_fa30.nii.gz"))
            truth = slicer.util.loadVolume(os.path.join(case, "maps", "T1.nii.gz"))
            logic = __getattr__("Q2MRIModuleLogic")()
            maps = logic.predict([src], "spgr-t1", {"flip_angle_deg": 30.0, "tr_ms": 20.0, "te_ms": 0.032})
            t1, ref = slicer.util.arrayFromVolume(maps["T1"]), slicer.util.arrayFromVolume(truth)
            body = ref > 0
            r = np.corrcoef(t1[body], ref[body])[0, 1]
            self.assertGreater(r, 0.6)
            self.assertEqual(maps["T1"].GetAttribute("Q2MRI.Unit"), "ms")
            seg = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
            seg.SetReferenceImageGeometryParameterFromVolumeNode(src)
            sid = seg.GetSegmentation().AddEmptySegment("body")
            slicer.util.updateSegmentBinaryLabelmapFromArray(body.astype(np.uint8), seg, sid, src)
            table = logic.measure(seg, {"T1": maps["T1"]})
            self.assertAlmostEqual(float(table.GetCellText(0, 5)), float(t1[body].mean()), delta=1e-3 * abs(t1[body].mean()))
            out = logic.synthesize(maps, "spgr", {"flip_angle_deg": 10.0, "tr_ms": 20.0})
            self.assertEqual(slicer.util.arrayFromVolume(out).shape, t1.shape)
            self.delayDisplay("Q2MRI test passed")
