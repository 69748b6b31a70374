"""The module panel (.ui) outside Slicer: loaded with PySide6's QUiLoader, offscreen.

Slicer's custom widgets (ctk*, qMRML*) are unknown to plain Qt; QUiLoader then builds the base
class each one declares in the .ui's <customwidgets>, keeping object names and layout. Used by
the tests (every widget the module code names must exist) and to make the README screenshot.
"""
from __future__ import annotations

import os
from pathlib import Path

UI_FILE = Path(__file__).resolve().parents[1] / "Resources" / "UI" / "Q2MRIModule.ui"


def load_panel(ui_file: Path = UI_FILE):
    """(QApplication, top-level QWidget) for the .ui, with the offscreen Qt platform."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QFile, QIODevice
    from PySide6.QtUiTools import QUiLoader
    from PySide6.QtWidgets import QApplication
    app = QApplication.instance() or QApplication([])
    f = QFile(str(ui_file))
    if not f.open(QIODevice.ReadOnly):
        raise OSError(f"cannot open {ui_file}")
    try:
        widget = QUiLoader().load(f)
    finally:
        f.close()
    if widget is None:
        raise RuntimeError(f"QUiLoader could not build {ui_file}")
    return app, widget


def screenshot(path: Path, task_inputs: list[str] | None = None, width: int = 420, height: int = 980) -> Path:
    """A PNG of the panel as a user first sees it (task list and input labels filled in)."""
    from PySide6.QtWidgets import QComboBox, QLabel, QWidget
    app, w = load_panel()
    fill = {"taskSelector": ("spgr-t1", "t2star", "fatwater-ipop", "brain-t1t2"), "modelSelector": ("spgr-t1",),
            "deviceSelector": ("auto", "CPU"), "sequenceSelector": ("spgr", "gre", "se", "ir", "flair", "mprage"),
            "fitModelSelector": ("vfa", "t2star", "t2", "t1-ir", "b1-afi", "b1-dam", "dixon", "fatwater")}
    for name, items in fill.items():
        combo = w.findChild(QComboBox, name)
        for t in items:
            combo.addItem(t)
    w.findChild(QWidget, "dependencyFrame").setVisible(False)     # as after the first-use install
    for i, text in enumerate(task_inputs or ["SPGR image", "second SPGR image (optional)"]):
        w.findChild(QLabel, f"inputLabel{i}").setText(text + ":")
    for i in range(len(task_inputs or [0, 0]), 4):
        w.findChild(QLabel, f"inputLabel{i}").setVisible(False)
    w.resize(width, height)
    w.show()
    app.processEvents()
    path = Path(path)
    if not w.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    return path
