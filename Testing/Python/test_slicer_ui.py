"""The module's .ui file: it loads in a real Qt (PySide6, offscreen) and names every widget and
parameter the module code uses; a screenshot of the panel is written."""
from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET

from slicer_util import MODULE_DIR

UI = MODULE_DIR / "Resources" / "UI" / "Q2MRIModule.ui"
CODE = (MODULE_DIR / "Q2MRIModule.py").read_text()


def _names_used_by_the_module() -> set[str]:
    names = set(re.findall(r"self\.ui\.(\w+)", CODE))
    for pattern in re.findall(r'getattr\(self\.ui, f"(\w+)\{i\}"\)', CODE):
        names |= {f"{pattern}{i}" for i in range(4)}
    names |= set(re.findall(r'"(synth\w+Slider|baMap\w+Selector)"', CODE))
    return names


def test_every_widget_the_module_uses_exists_in_the_ui_file():
    declared = {w.get("name") for w in ET.parse(UI).iter("widget")}
    used = _names_used_by_the_module()
    assert len(used) > 30
    assert not used - declared, f"missing from the .ui: {sorted(used - declared)}"


def test_parameter_names_in_the_ui_are_fields_of_the_parameter_node():
    tree = ast.parse(CODE)
    cls = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "Q2MRIModuleParameterNode")
    fields = {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign)}
    bound = {p.find("string").text for p in ET.parse(UI).iter("property") if p.get("name") == "SlicerParameterName"}
    assert bound and bound <= fields, bound - fields


def test_ui_loads_in_qt_with_slicer_widgets_falling_back_to_their_bases(tmp_path):
    from PySide6.QtWidgets import QComboBox, QPushButton, QTableView, QWidget
    from Q2MRIModuleLib.panel import load_panel, screenshot
    _, w = load_panel()
    for name in _names_used_by_the_module():
        assert w.findChild(QWidget, name) is not None, name
    assert isinstance(w.findChild(QWidget, "taskSelector"), QComboBox)
    assert isinstance(w.findChild(QWidget, "runButton"), QPushButton)
    assert isinstance(w.findChild(QWidget, "tableView"), QTableView)      # qMRMLTableView's declared base
    png = screenshot(tmp_path / "panel.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
