"""The page: trame-slicer's viewer layout (views, segment editor) with the Q2MRI panel in its drawer.

Element ids (q2-...) are stable: the end-to-end tests drive the page through them.
"""
from __future__ import annotations

from types import SimpleNamespace

from trame.widgets import html
from trame.widgets.vuetify3 import (VBtn, VCard, VCardText, VCardTitle, VCheckbox, VDataTable, VDivider,
                                    VExpansionPanel, VExpansionPanels, VExpansionPanelText, VExpansionPanelTitle,
                                    VFileInput, VProgressLinear, VSelect, VSlider, VSnackbar, VTextField)

from .app import ACQ_FIELDS, SLOTS

ACQ_LABELS = {"flip_angle_deg": "FA [deg]", "tr_ms": "TR [ms]", "te_ms": "TE [ms]", "ti_ms": "TI [ms]",
              "field_strength_t": "B0 [T]"}


def _slider(label: str, name: str, lo: float, hi: float, step: float, ident: str) -> None:
    VSlider(label=label, v_model=(name,), min=lo, max=hi, step=step, thumb_label=True, density="compact",
            hide_details=True, id=ident, classes="my-1")


def build_ui(app) -> SimpleNamespace:
    from trame_slicer.app.ui import SegmentEditorUI, ViewerLayout
    with ViewerLayout(app.server, title="Q2MRI", is_drawer_visible=True) as layout:
        layout.drawer.width = 430
        with layout.drawer:
            with VCard(variant="flat", classes="pa-2"):
                VCardTitle("Quantitative maps", classes="text-subtitle-1")
                with VCardText():
                    VFileInput(label="Upload NIfTI, NRRD or zipped DICOM", v_model=("q2_upload", None), multiple=True,
                               density="compact", show_size=True, id="q2-upload", hide_details=True)
                    VSelect(label="Task", v_model=("q2_task",), items=("q2_tasks",), density="compact", id="q2-task",
                            hide_details=True, classes="mt-2")
                    VSelect(label="Model", v_model=("q2_model",), items=("q2_models",), density="compact",
                            id="q2-model", hide_details=True, classes="mt-2")
                    for i in range(SLOTS):
                        VSelect(label=(f"q2_slot_labels[{i}]",), v_if=(f"q2_slot_labels.length > {i}",),
                                v_model=(f"q2_in_{i}",), items=("q2_volumes",), clearable=True, density="compact",
                                id=f"q2-input-{i}", hide_details=True, classes="mt-2")
                    with html.Table(classes="mt-2", style="width: 100%; font-size: 12px;", id="q2-acquisition"):
                        with html.Tr():
                            html.Th("input")
                            for f in ACQ_FIELDS:
                                html.Th(ACQ_LABELS[f])
                        for i in range(SLOTS):
                            with html.Tr(v_if=(f"q2_in_{i} && q2_slot_labels.length > {i}",)):
                                html.Td(f"{i + 1}")
                                for f in ACQ_FIELDS:
                                    with html.Td():
                                        VTextField(v_model=(f"q2_acq_{i}_{f}",), density="compact", hide_details=True,
                                                   variant="plain", id=f"q2-acq-{i}-{f}")
                    html.Div("{{ q2_warning }}", v_if=("q2_warning",), classes="text-warning text-caption",
                             style="white-space: pre-line;", id="q2-warning")
                    VSelect(label="Device", v_model=("q2_device",), items=("q2_devices",), density="compact",
                            id="q2-device", hide_details=True, classes="mt-2")
                    with html.Div(classes="d-flex mt-2"):
                        VBtn("Predict maps", click=app.ctrl.q2_run, disabled=("q2_running",), color="primary",
                             id="q2-run", classes="mr-2")
                        VBtn("Cancel", click=app.ctrl.q2_cancel, disabled=("!q2_running",), id="q2-cancel")
                    VProgressLinear(model_value=("q2_progress",), height=14, classes="mt-2", id="q2-progress",
                                    children=["{{ q2_progress }} %"])
                    html.Div("{{ q2_status }}", classes="text-caption", id="q2-status")
            VDivider()
            with VExpansionPanels(multiple=True, model_value=("q2_panels", [0, 1]), variant="accordion"):
                with VExpansionPanel():
                    VExpansionPanelTitle("Map overlay")
                    with VExpansionPanelText():
                        VSelect(label="Map", v_model=("q2_map",), items=("q2_map_names",), density="compact",
                                id="q2-map", hide_details=True)
                        _slider("Opacity", "q2_opacity", 0, 1, 0.05, "q2-opacity")
                        with html.Div(classes="d-flex"):
                            VBtn("Uncertainty (SD)", click=app.ctrl.q2_show_sd, size="small", id="q2-show-sd",
                                 classes="mr-2")
                            VBtn("Consistency", click=app.ctrl.q2_show_consistency, size="small",
                                 id="q2-show-consistency")
                with VExpansionPanel():
                    VExpansionPanelTitle("Synthesize contrast")
                    with VExpansionPanelText():
                        VSelect(label="Sequence", v_model=("q2_seq",), items=("q2_sequences",), density="compact",
                                id="q2-seq", hide_details=True)
                        VCheckbox(label="show the synthesized image", v_model=("q2_show_synth",), density="compact",
                                  id="q2-show-synth", hide_details=True)
                        _slider("FA [deg]", "q2_fa", 1, 90, 1, "q2-fa")
                        _slider("TR [ms]", "q2_tr", 2, 5000, 1, "q2-tr")
                        _slider("TE [ms]", "q2_te", 0, 200, 0.5, "q2-te")
                        _slider("TI [ms]", "q2_ti", 10, 4000, 10, "q2-ti")
                        html.Div("updated in {{ (q2_synth_seconds * 1000).toFixed(0) }} ms on the server",
                                 classes="text-caption", id="q2-synth-time")
                        VBtn("Save as new volume", click=app.ctrl.q2_save_synth, size="small", id="q2-save-synth")
                with VExpansionPanel():
                    VExpansionPanelTitle("ROI statistics")
                    with VExpansionPanelText():
                        VDataTable(headers=("q2_stats_headers",), items=("q2_stats",), density="compact",
                                   id="q2-stats", items_per_page=-1, hide_default_footer=True)
                with VExpansionPanel():
                    VExpansionPanelTitle("Downloads")
                    with VExpansionPanelText(), html.Div(classes="d-flex flex-wrap"):
                        for label, trig, fname, mime, ident in (
                                ("Maps (NIfTI, zip)", app.download_maps, "q2mri-maps.zip", "application/zip", "q2-dl-maps"),
                                ("Maps, ROIs and report (DICOM, zip)", app.download_dicom, "q2mri-dicom.zip",
                                 "application/zip", "q2-dl-dicom"),
                                ("ROI table (CSV)", app.download_table, "q2mri-roi.csv", "text/csv", "q2-dl-table"),
                                ("ROI labelmap (NIfTI)", app.download_labelmap, "q2mri-roi.nii.gz",
                                 "application/octet-stream", "q2-dl-labelmap"),
                                ("View (PNG)", app.download_view, "q2mri-view.png", "image/png", "q2-dl-view")):
                            name = app.ctrl.trigger_name(trig)
                            VBtn(label, size="small", classes="ma-1", id=ident,
                                 click=f"utils.download('{fname}', trigger('{name}'), '{mime}')")
            VDivider()
            segment_editor = SegmentEditorUI()
        with layout.content:
            app.layout_manager.initialize_layout_grid(layout)
        VSnackbar(html.Span("{{ q2_message }}", id="q2-message-text"), v_model=("q2_show_message",), timeout=-1,
                  color="error", id="q2-message", location="top")
    return SimpleNamespace(layout=layout, segment_editor=segment_editor)
