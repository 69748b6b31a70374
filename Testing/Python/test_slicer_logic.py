"""The Slicer module's Logic on a real MRML scene from slicer-core, without the application."""
from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest

from slicer_util import MODULE_DIR, ijk_to_ras, load_volume, new_scene, scene_state, volume_from_array

import slicer  # noqa: E402  (slicer-core, installed by ./run)


@pytest.fixture
def logic():
    new_scene()
    from Q2MRIModule import Q2MRIModuleLogic   # the module file itself imports without the application
    return Q2MRIModuleLogic()


def _digest(node) -> str:
    return hashlib.sha256(np.ascontiguousarray(slicer.util.arrayFromVolume(node)).tobytes()).hexdigest()


def test_predict_gives_map_nodes_on_the_input_geometry_with_units_and_colours(logic, sample, tiny_model):
    from importlib import resources
    src = load_volume(sample / "spgr_fa30.nii.gz", "knee FA30")
    before, attrs = _digest(src), {k: src.GetAttribute(k) for k in src.GetAttributeNames()}
    maps = logic.predict([src], "spgr-t1", model=str(tiny_model), device="cpu")
    assert {"T1", "PD", "B1", "T1_sd", "PD_sd", "B1_sd", "consistency"} <= set(maps)
    for name, node in maps.items():
        assert node.IsA("vtkMRMLScalarVolumeNode")
        np.testing.assert_allclose(ijk_to_ras(node), ijk_to_ras(src), atol=1e-9)
        assert slicer.util.arrayFromVolume(node).shape == slicer.util.arrayFromVolume(src).shape
    t1 = maps["T1"]
    assert t1.GetName() == "knee FA30 T1 [ms]" and t1.GetAttribute("Q2MRI.Unit") == "ms"
    assert maps["B1"].GetAttribute("Q2MRI.Unit") == "relative" and t1.GetVoxelValueUnits().GetCodeValue() == "ms"
    # The colour node is cmcrameri's lipari table (read here straight from the package file).
    table = np.loadtxt(resources.files("cmcrameri").joinpath("cmaps", "lipari.txt").read_text().splitlines())
    cnode = t1.GetDisplayNode().GetColorNode()
    rgba = [0.0] * 4
    for i in (0, 100, 255):
        cnode.GetColor(i, rgba)
        np.testing.assert_allclose(rgba[:3], table[i], atol=0.51 / 255)   # stored as 8-bit RGBA
    assert t1.GetDisplayNode().GetWindowLevelMax() == pytest.approx(2000.0)   # tissue window, not auto
    # The same numbers as the core library on the same voxels (Slicer's reader may order the
    # slices differently from SimpleITK's; IJK-to-RAS says so) and the sidecar's acquisition.
    from q2mri.io import read_acquisitions, read_image
    from q2mri.models.predict import predict
    vol = read_image(sample / "spgr_fa30.nii.gz")
    voxels = np.array(slicer.util.arrayFromVolume(src), dtype=np.float32)
    ref = predict("spgr-t1", [voxels], read_acquisitions(vol)[:1], model=str(tiny_model), device="cpu")
    np.testing.assert_allclose(slicer.util.arrayFromVolume(t1), ref.maps["T1"], rtol=1e-4, atol=1e-3)
    # The input is untouched.
    assert _digest(src) == before and {k: src.GetAttribute(k) for k in src.GetAttributeNames()} == attrs


def test_acquisition_comes_from_node_attributes_and_the_caller_overrides_it(logic):
    from q2mri.acquisition import Acquisition
    node = volume_from_array(np.ones((2, 4, 4), np.float32), "dicom-like")
    for key, val in (("FlipAngle", "12"), ("RepetitionTime", "15.5"), ("EchoTime", "2.1"), ("MagneticFieldStrength", "3")):
        node.SetAttribute(key, val)
    a = logic.acquisitionsFor([node])[0]
    assert (a.flip_angle_deg, a.tr_ms, a.te_ms, a.field_strength_t) == (12.0, 15.5, 2.1, 3.0)
    b = logic.acquisitionsFor([node], {"flip_angle_deg": 20.0})[0]
    assert b.flip_angle_deg == 20.0 and b.tr_ms == 15.5
    c = logic.acquisitionsFor([node], Acquisition(tr_ms=9.0))[0]
    assert c.tr_ms == 9.0 and c.flip_angle_deg == 12.0


def test_cancel_leaves_the_scene_as_it_was(logic, sample, tiny_model):
    from Q2MRIModuleLib import Cancelled
    src = load_volume(sample / "spgr_fa30.nii.gz", "in")
    state = scene_state(slicer.mrmlScene)
    calls = []
    with pytest.raises(Cancelled):
        logic.predict([src], "spgr-t1", model=str(tiny_model), device="cpu", cancelled=lambda: calls.append(1) or True)
    assert calls and scene_state(slicer.mrmlScene) == state
    fas = [load_volume(sample / f"spgr_fa{fa}.nii.gz", fa) for fa in ("05", "10", "20", "30")]
    state = scene_state(slicer.mrmlScene)
    with pytest.raises(Cancelled):
        logic.fit(fas, "vfa", cancelled=lambda: True)
    assert scene_state(slicer.mrmlScene) == state


def _segmentation(ref, masks: dict[str, np.ndarray]):
    seg = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "rois")
    seg.SetReferenceImageGeometryParameterFromVolumeNode(ref)
    for name, m in masks.items():
        sid = seg.GetSegmentation().AddEmptySegment(name, name)
        slicer.util.updateSegmentBinaryLabelmapFromArray(m.astype(np.uint8), seg, sid, ref)
    return seg


def test_measure_matches_numpy_on_the_same_mask(logic, tmp_path):
    rng = np.random.default_rng(3)
    t1 = rng.normal(1200, 150, (6, 20, 24)).astype(np.float32)
    t2 = rng.normal(40, 6, (6, 20, 24)).astype(np.float32)
    n1 = volume_from_array(t1, "T1 map", spacing=(0.5, 0.6, 3.0))
    n1.SetAttribute("Q2MRI.Unit", "ms")
    n2 = volume_from_array(t2, "T2 map", spacing=(0.5, 0.6, 3.0))
    masks = {"cartilage": np.zeros(t1.shape, bool), "muscle": np.zeros(t1.shape, bool)}
    masks["cartilage"][1:4, 3:9, 5:12] = True
    masks["muscle"][2:6, 10:18, 2:20] = True
    masks["muscle"][3, 12, 4] = False
    seg = _segmentation(n1, masks)
    table = logic.measure(seg, {"T1": n1, "T2": n2})
    df = {table.GetColumnName(j): [table.GetCellText(i, j) for i in range(table.GetNumberOfRows())]
          for j in range(table.GetNumberOfColumns())}
    assert list(df) == ["Segment", "Map", "Unit", "Voxels", "Volume_mL", "Mean", "SD", "Median", "P5", "P95", "Flagged"]
    assert all(v == "0" for v in df["Flagged"])
    assert table.GetNumberOfRows() == 4
    for i in range(4):
        m = masks[df["Segment"][i]]
        v = {"T1": t1, "T2": t2}[df["Map"][i]][m].astype(np.float64)
        assert int(df["Voxels"][i]) == m.sum()
        assert float(df["Volume_mL"][i]) == pytest.approx(m.sum() * 0.5 * 0.6 * 3.0 / 1000.0)
        for col, ref in (("Mean", v.mean()), ("SD", v.std(ddof=1)), ("Median", np.median(v)),
                         ("P5", np.percentile(v, 5)), ("P95", np.percentile(v, 95))):
            assert float(df[col][i]) == pytest.approx(ref, rel=1e-5), col
    assert df["Unit"][df["Map"].index("T1")] == "ms"
    out = logic.exportTable(table, tmp_path / "stats.csv")
    with open(out) as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(df) and len(rows) == 5


def test_bland_altman_plot_carries_the_numpy_bias_and_limits(logic):
    rng = np.random.default_rng(5)
    a = rng.normal(1000, 100, (3, 10, 10)).astype(np.float32)
    b = (a * 0.97 + rng.normal(0, 20, a.shape)).astype(np.float32)
    na, nb = volume_from_array(a, "predicted T1"), volume_from_array(b, "fitted T1")
    chart = logic.blandAltman(na, nb)
    d = a.astype(np.float64).ravel() - b.astype(np.float64).ravel()
    assert float(chart.GetAttribute("Q2MRI.Bias")) == pytest.approx(d.mean(), rel=1e-6)
    lo, hi = map(float, chart.GetAttribute("Q2MRI.LoA").split())
    assert (lo, hi) == pytest.approx((d.mean() - 1.96 * d.std(ddof=1), d.mean() + 1.96 * d.std(ddof=1)), rel=1e-3)
    assert chart.GetNumberOfPlotSeriesNodes() == 4


def test_synthesize_equals_the_spgr_equation_and_the_slice_update_equals_the_volume(logic, sample):
    maps = {k: load_volume(sample / "maps" / f"{k}.nii.gz", k) for k in ("T1", "PD", "B1")}
    out = logic.synthesize(maps, "spgr", {"flip_angle_deg": 12.0, "tr_ms": 20.0})
    t1, pd, b1 = (np.asarray(slicer.util.arrayFromVolume(maps[k]), np.float64) for k in ("T1", "PD", "B1"))
    a = np.deg2rad(12.0) * b1          # papers/000 A.4, written out here independently
    e1 = np.exp(-20.0 / np.where(t1 > 0, t1, 1.0))
    ref = np.where(t1 > 0, pd * np.sin(a) * (1 - e1) / (1 - np.cos(a) * e1), 0.0)
    got = slicer.util.arrayFromVolume(out)
    np.testing.assert_allclose(got, ref, rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(ijk_to_ras(out), ijk_to_ras(maps["T1"]))
    full = logic.synthesize(maps, "spgr", {"flip_angle_deg": 30.0, "tr_ms": 20.0})
    logic.synthesizeSlice(maps, "spgr", {"flip_angle_deg": 30.0, "tr_ms": 20.0}, out, 2)
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(out)[2], slicer.util.arrayFromVolume(full)[2])
    assert not np.allclose(slicer.util.arrayFromVolume(out)[1], slicer.util.arrayFromVolume(full)[1])


def test_fit_vfa_from_nodes_recovers_the_sample_truth(logic, sample):
    fas = [load_volume(sample / f"spgr_fa{fa}.nii.gz", f"FA{fa}") for fa in ("05", "10", "20", "30")]
    b1 = load_volume(sample / "maps" / "B1.nii.gz", "B1 truth")
    truth = load_volume(sample / "maps" / "T1.nii.gz", "T1 truth")
    maps = logic.fit(fas, "vfa")
    assert maps["T1"].GetName() == "FA05 T1 fit [ms]"
    t1 = slicer.util.arrayFromVolume(maps["T1"])
    ref = slicer.util.arrayFromVolume(truth)
    b1a = slicer.util.arrayFromVolume(b1)
    # Without a B1 map VFA returns T1 biased by about B1^2 (papers/000): compare in tissue
    # where the transmit field is near nominal.
    m = (ref > 200) & (ref < 2500) & (np.abs(b1a - 1) < 0.05)
    assert m.sum() > 100
    assert np.median(np.abs(t1[m] - ref[m]) / ref[m]) < 0.12


def test_module_files_follow_the_scripted_module_layout():
    text = (MODULE_DIR / "Q2MRIModule.py").read_text()
    for needle in ("class Q2MRIModule(ScriptedLoadableModule)", "class Q2MRIModuleWidget", "parameterNodeWrapper",
                   "slicer.util.loadUI", "tryWithErrorDisplay", "class Q2MRIModuleTest(ScriptedLoadableModuleTest)"):
        assert needle in text, needle
    cm = (MODULE_DIR / "CMakeLists.txt").read_text()
    assert "slicerMacroBuildScriptedModule" in cm and "Q2MRIModule.py" in cm
    top = (MODULE_DIR.parent / "CMakeLists.txt").read_text()
    assert "add_subdirectory(Q2MRIModule)" in top and "Quantification" in top


def test_range_warnings_name_the_parameter_outside_the_model_range(logic):
    node = volume_from_array(np.ones((2, 4, 4), np.float32), "spgr")
    for key, val in (("FlipAngle", "20"), ("RepetitionTime", "20"), ("EchoTime", "0.03"), ("MagneticFieldStrength", "3")):
        node.SetAttribute(key, val)
    assert logic.rangeWarnings("spgr-t1", [node]) == []
    notes = logic.rangeWarnings("spgr-t1", [node], {"flip_angle_deg": 60.0})
    assert len(notes) == 1 and "flip angle 60" in notes[0]


def test_export_dicom_writes_maps_seg_and_the_report_of_the_measured_table(logic, sample, tmp_path):
    """exportDicom on the series the web app (and Slicer's DICOM module) loads: Parametric Maps,
    a SEG of the segmentation and a TID 1500 report whose means are numpy's over the same masks."""
    import subprocess

    import highdicom as hd
    from pydicom.sr.codedict import codes

    from q2mri.io import read_image
    from Q2MRIWeb.files import read_volume
    from test_dicom import _dicom_from_sample
    ref = read_volume(_dicom_from_sample(tmp_path / "src"), "knee")
    t1 = read_image(sample / "maps" / "T1.nii.gz").array.astype(np.float32)
    b1 = read_image(sample / "maps" / "B1.nii.gz").array.astype(np.float32)
    labels = read_image(sample / "maps" / "labels.nii.gz").array.round().astype(int)
    maps = logic.publishMaps({"T1": t1, "B1": b1}, ref, task="truth")
    masks = {"muscle": labels == 2, "cartilage": labels == 5}
    seg = _segmentation(maps["T1"], masks)
    table = logic.measure(seg, maps)
    before = scene_state(slicer.mrmlScene)
    files = logic.exportDicom(maps, ref, str(tmp_path / "dcm"), seg, table)
    assert sorted(p.split("/")[-1] for p in files) == ["PM_B1.dcm", "PM_T1.dcm", "SEG.dcm", "SR.dcm"]
    assert scene_state(slicer.mrmlScene) == before                  # the scene is only read
    for f in files:
        r = subprocess.run(["dciodvfy", f], capture_output=True, text=True)
        assert not [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("Error")], f
    sr = hd.sr.srread(tmp_path / "dcm" / "SR.dcm")
    segmentation = hd.seg.segread(tmp_path / "dcm" / "SEG.dcm")
    seg_names = {int(s.SegmentNumber): s.SegmentLabel for s in segmentation.SegmentSequence}
    seen = set()
    for g in sr.content.get_volumetric_roi_measurement_groups():
        name = seg_names[g.referenced_segment.referenced_segment_numbers[0]]
        mean = [m for m in g.get_measurements(name=codes.DCM.T1) if m.derivation == codes.SCT.Mean]
        assert mean[0].value == pytest.approx(float(t1[masks[name]].astype(np.float64).mean()), rel=1e-5)
        seen.add(name)
    assert seen == set(masks)
    pm = hd.pm.ParametricMap.from_dataset(__import__("pydicom").dcmread(tmp_path / "dcm" / "PM_T1.dcm"))
    assert pm.SeriesDescription == "Q2MRI T1 [ms] (truth)"
    assert np.array_equal(np.sort(pm.pixel_array.ravel()), np.sort(t1.ravel()))


def test_export_dicom_needs_a_volume_loaded_from_dicom(logic, sample, tmp_path):
    from q2mri.errors import Q2MRIError
    src = load_volume(sample / "spgr_fa20.nii.gz", "knee nifti")
    maps = logic.publishMaps({"T1": np.ones(slicer.util.arrayFromVolume(src).shape, np.float32)}, src)
    with pytest.raises(Q2MRIError, match="not loaded from DICOM"):
        logic.exportDicom(maps, src, str(tmp_path / "dcm"))
    assert not (tmp_path / "dcm").exists()


def test_register_gives_a_transform_node_and_inputs_are_read_through_it(logic):
    """Logic.register: a linear transform node that puts the moved input back on the first; the
    moving node sits under it, and predict/fit read the input through it (inputsFor)."""
    import SimpleITK as sitk
    from scipy import ndimage

    from q2mri.phantoms.protocols import PRESETS, Protocol
    from q2mri.phantoms.simulate import case_rng, make_case, simulate_images
    from q2mri.registration import resample_onto
    from Q2MRIModuleLib.nodes import node_geometry
    case = make_case("knee", case_rng(3, 0), 32, 80)
    img = PRESETS["knee-vfa"].images[2]
    arr = simulate_images(case, Protocol("t", "knee", (img,), ""), 200.0, np.random.default_rng(0))[0].data
    fixed = volume_from_array(arr.astype(np.float32), "fixed", spacing=(1.5, 1.5, 3.0))
    g = node_geometry(fixed)
    true = sitk.Euler3DTransform()
    d = np.array(g.direction).reshape(3, 3)
    true.SetCenter((np.array(g.origin) + d @ (np.array(g.spacing) * (np.array(g.size) - 1) / 2)).tolist())
    true.SetRotation(*np.radians([5.0, -6.0, 4.0]))
    true.SetTranslation((6.0, 4.0, -5.0))
    moved = resample_onto(arr, g, g, true.GetInverse()).astype(np.float32)
    moving = volume_from_array(moved, "moving", spacing=(1.5, 1.5, 3.0))
    before = _digest(moving)
    tnode = logic.register(fixed, moving)
    assert tnode.IsA("vtkMRMLLinearTransformNode") and moving.GetTransformNodeID() == tnode.GetID()
    assert _digest(moving) == before                       # nothing resampled in the node itself
    import vtk
    m = vtk.vtkMatrix4x4()
    tnode.GetMatrixTransformToParent(m)
    to_parent = np.array([[m.GetElement(i, j) for j in range(4)] for i in range(4)])
    # a fixed point p (RAS) is seen in the moving image at the true motion of p (LPS <-> RAS: x, y negated)
    lps = np.diag([-1.0, -1.0, 1.0])
    body = np.argwhere(case.maps["PD"] > 0)[::200]
    ijk_to_ras_m = ijk_to_ras(fixed)
    for k, j, i in body:
        p = (ijk_to_ras_m @ [i, j, k, 1.0])[:3]
        q = lps @ np.array(true.TransformPoint((lps @ p).tolist()))
        assert np.linalg.norm((to_parent @ [*q, 1.0])[:3] - p) < 0.5
    images, _ = logic.inputsFor([fixed, moving], False, [{"flip_angle_deg": 20, "tr_ms": 20}] * 2)
    inner = ndimage.binary_erosion(case.maps["PD"] > 0, iterations=2)
    inner[:6] = inner[-6:] = False        # the end slices moved out of the slab: nothing to read back there
    # the moved input read back through the true motion (SimpleITK, without the Logic): the same
    ideal = resample_onto(moved, g, g, true)
    assert np.corrcoef(images[1][inner], ideal[inner])[0, 1] > 0.99
    assert np.corrcoef(moved[inner], ideal[inner])[0, 1] < 0.85         # it was far off before


def test_virtual_contrast_in_a_segment_follows_the_relaxivity_equation(logic, sample):
    maps = {k: load_volume(sample / "maps" / f"{k}.nii.gz", k) for k in ("T1", "PD", "B1")}
    t1, pd, b1 = (np.asarray(slicer.util.arrayFromVolume(maps[k]), np.float64) for k in ("T1", "PD", "B1"))
    mask = np.zeros(t1.shape, bool)
    mask[2:4, 30:50, 30:50] = True
    mask &= t1 > 0
    seg = _segmentation(maps["T1"], {"lesion": mask})
    sid = seg.GetSegmentation().GetNthSegmentID(0)
    params = {"flip_angle_deg": 15.0, "tr_ms": 20.0}

    def spgr(t1v):                        # papers/000 A.4, written out here independently
        a = np.deg2rad(15.0) * b1
        e1 = np.exp(-20.0 / np.where(t1v > 0, t1v, 1.0))
        return np.where(t1v > 0, pd * np.sin(a) * (1 - e1) / (1 - np.cos(a) * e1), 0.0)

    plain = slicer.util.arrayFromVolume(logic.synthesize(maps, "spgr", params)).copy()
    before = scene_state(slicer.mrmlScene)
    out = logic.synthesize(maps, "spgr", params, contrast={"segmentation": seg, "segment": sid, "T1": 300.0})
    got = slicer.util.arrayFromVolume(out)
    np.testing.assert_allclose(got[mask], spgr(np.full(t1.shape, 300.0))[mask], rtol=2e-4)
    np.testing.assert_array_equal(got[~mask], plain[~mask])
    # gadobutrol 0.8 mM at 3 T: 1/T1 = 1/T1_0 + 5.0 * 0.8 /s (Rohrer et al. 2005)
    agent = {"segmentation": seg, "segment": sid, "agent": "gadobutrol", "concentration_mM": 0.8, "field_strength_t": 3.0}
    out2 = logic.synthesize(maps, "spgr", params, outputNode=out, contrast=agent)
    np.testing.assert_allclose(slicer.util.arrayFromVolume(out2)[mask],
                               spgr(1000.0 / (1000.0 / np.where(t1 > 0, t1, 1.0) + 4.0))[mask], rtol=2e-4)
    # the slice update while a slider moves equals the volume's slice
    full = slicer.util.arrayFromVolume(out2).copy()
    logic.synthesizeSlice(maps, "spgr", {"flip_angle_deg": 25.0, "tr_ms": 20.0}, out2, 3, contrast=agent)
    ref = logic.synthesize(maps, "spgr", {"flip_angle_deg": 25.0, "tr_ms": 20.0}, contrast=agent)
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(out2)[3], slicer.util.arrayFromVolume(ref)[3])
    assert not np.array_equal(full[3], slicer.util.arrayFromVolume(out2)[3])
    # reading the segment leaves no temporary labelmap nodes behind
    labelmaps = [c for _, c in scene_state(slicer.mrmlScene) if "LabelMap" in c]
    assert labelmaps == [c for _, c in before if "LabelMap" in c]


def test_fit_b1_dam_and_vfa_at_two_trs_from_nodes(logic, tmp_path):
    from conftest import write_nifti
    from q2mri import physics as P
    rng = np.random.default_rng(8)
    shape = (2, 8, 9)
    b1, pd, t1 = rng.uniform(0.7, 1.3, shape), rng.uniform(0.4, 1.0, shape), rng.uniform(400, 2500, shape)
    dam = [load_volume(write_nifti(tmp_path / f"dam{fa}.nii.gz", P.spgr(t1, pd, fa, 50000.0, b1=b1).astype(np.float32),
                                   sidecar={"FlipAngle": fa}), f"DAM {fa}") for fa in (50, 100)]
    maps = logic.fit(dam, "b1-dam")
    np.testing.assert_allclose(slicer.util.arrayFromVolume(maps["B1"]), b1, atol=1e-4)
    mpm = [load_volume(write_nifti(tmp_path / f"mpm{fa}.nii.gz", P.spgr(t1, pd, fa, tr).astype(np.float32),
                                   sidecar={"FlipAngle": fa, "RepetitionTime": tr / 1000}), f"MPM {fa}")
           for fa, tr in ((6, 28.0), (20, 18.0))]
    maps = logic.fit(mpm, "vfa")
    np.testing.assert_allclose(slicer.util.arrayFromVolume(maps["T1"]), t1, rtol=1e-3)
