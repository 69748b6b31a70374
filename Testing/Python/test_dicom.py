"""Maps back into the hospital: DICOM Parametric Maps, SEG and TID 1500 reports (highdicom),
checked by dciodvfy (Debian's dicom3tools), and a round trip through a real PACS (Debian's
Orthanc) with q2mri pacs send/find/get and predict --dicom-out."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from conftest import ROOT, SAMPLE
from orthanc_server import AET, free_port, start_orthanc
from vendor_dicom import write_mr_series
from q2mri.io import read_image

PATIENT = "Q2MRI-VENDOR"           # write_mr_series's patient


def _dicom_from_sample(folder: Path, image: str = "spgr_fa20", fa: float = 20.0) -> Path:
    """The sample knee's SPGR image as a scanner would store it: uint16 with a rescale slope."""
    img = read_image(SAMPLE / f"{image}.nii.gz").array
    slope = float(img.max()) / 4000.0
    stored = np.round(img / slope).astype(np.uint16)
    return write_mr_series(folder, stored, series_number=5, description="SPGR FA20", manufacturer="SIEMENS",
                           acq={"FlipAngle": fa, "RepetitionTime": 20.0, "EchoTime": 0.032, "MagneticFieldStrength": 3.0},
                           spacing=(1.5625, 1.5625, 3.0), rescale=(slope, 0.0))


def _maps_on(grid_of: Path, out: Path, names=("T1", "B1", "PD")) -> Path:
    """The sample's truth maps written on the grid of a DICOM series (same arrays)."""
    geom = read_image(grid_of).geometry
    out.mkdir(parents=True, exist_ok=True)
    for n in names + ("labels",):
        arr = read_image(SAMPLE / "maps" / f"{n}.nii.gz").array
        sitk.WriteImage(geom.apply(sitk.GetImageFromArray(arr)), str(out / f"{n}.nii.gz"))
    shutil.copy(SAMPLE / "maps" / "labels.json", out / "labels.json")
    return out


def _dciodvfy_errors(path: Path) -> list[str]:
    r = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("Error")]


def _plane_positions(pm) -> np.ndarray:
    return np.array([[float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient]
                     for f in pm.PerFrameFunctionalGroupsSequence])


def _slice_of_frames(ds, vol) -> np.ndarray:
    """Which slice of the map's ITK grid each frame of a multi-frame object lies on, from its
    plane position (slice k sits at origin + k dz n); each must lie exactly on one."""
    g = vol.geometry
    d = np.array(g.direction).reshape(3, 3)
    pos = _plane_positions(ds) - np.array(g.origin)
    k = pos @ d[:, 2] / g.spacing[2]
    assert np.allclose(k, np.round(k), atol=1e-3) and np.allclose(pos - np.outer(k * g.spacing[2], d[:, 2]), 0, atol=1e-3)
    return np.round(k).astype(int)


def _in_slice_order(pm, vol) -> np.ndarray:
    """A Parametric Map's frames put where their plane positions say (frames may be stored in any order)."""
    k = _slice_of_frames(pm, vol)
    assert sorted(k) == list(range(vol.geometry.size[2]))
    out = np.empty(pm.pixel_array.shape, np.float32)
    out[k] = pm.pixel_array
    return out


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    server = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    yield server
    server.stop()


def test_export_objects_are_valid_and_the_report_holds_the_roi_statistics(tmp_path, cli):
    import highdicom as hd
    from pydicom.sr.codedict import codes
    src = _dicom_from_sample(tmp_path / "src")
    maps = _maps_on(src, tmp_path / "maps")
    r = cli("export", "dicom", "--maps", maps, "--reference", src, "--out", tmp_path / "dcm",
            "--labels", maps / "labels.nii.gz", "--model", "truth", "--quiet")
    assert r.code == 0, r.err
    files = sorted((tmp_path / "dcm").glob("*.dcm"))
    assert [f.name for f in files] == ["PM_B1.dcm", "PM_PD.dcm", "PM_T1.dcm", "SEG.dcm", "SR.dcm"]
    for f in files:
        assert _dciodvfy_errors(f) == [], f.name
    ref = pydicom.dcmread(next(src.iterdir()))
    t1 = read_image(maps / "T1.nii.gz")
    pm = hd.pm.ParametricMap.from_dataset(pydicom.dcmread(tmp_path / "dcm" / "PM_T1.dcm"))
    # same patient, study and frame of reference; a new series described with quantity and unit
    assert (pm.PatientID, pm.StudyInstanceUID, pm.FrameOfReferenceUID) == (ref.PatientID, ref.StudyInstanceUID,
                                                                          ref.FrameOfReferenceUID)
    assert pm.SeriesInstanceUID != ref.SeriesInstanceUID and pm.SeriesDescription == "Q2MRI T1 [ms] (truth)"
    rwvm = pm.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    assert rwvm.MeasurementUnitsCodeSequence[0].CodeValue == "ms"
    assert rwvm.QuantityDefinitionSequence[0].ConceptCodeSequence[0].CodeMeaning == "T1"
    b1 = pydicom.dcmread(tmp_path / "dcm" / "PM_B1.dcm")
    assert b1.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0].MeasurementUnitsCodeSequence[0].CodeValue == "{ratio}"
    # float pixels equal to the map, and every frame where the NIfTI grid puts that slice
    assert np.array_equal(_in_slice_order(pm, t1), t1.array.astype(np.float32))

    # SEG: the label image back, one segment per label, named from labels.json
    labels = read_image(maps / "labels.nii.gz").array.round().astype(int)
    names = {int(k): v for k, v in json.loads((maps / "labels.json").read_text())["labels"].items()}
    seg = hd.seg.segread(tmp_path / "dcm" / "SEG.dcm")
    ids = [int(i) for i in np.unique(labels) if i > 0]
    assert [s.SegmentLabel for s in seg.SegmentSequence] == [names[i] for i in ids]
    # each frame is one segment on one slice (empty frames omitted)
    back = np.zeros_like(labels)
    frames = seg.pixel_array.reshape(-1, *labels.shape[1:])
    for f, k, item in zip(frames, _slice_of_frames(seg, t1), seg.PerFrameFunctionalGroupsSequence):
        number = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        back[k][f > 0] = ids[number - 1]
    assert np.array_equal(back, labels)

    # the report: per segment, mean T1 equal to numpy's mean of the map under that label
    sr = hd.sr.srread(tmp_path / "dcm" / "SR.dcm")
    groups = sr.content.get_volumetric_roi_measurement_groups()
    assert len(groups) == len(ids)
    checked = 0
    for g in groups:
        assert g.referenced_segment.referenced_sop_instance_uid == seg.SOPInstanceUID
        lab = ids[g.referenced_segment.referenced_segment_numbers[0] - 1]
        vals = t1.array[(labels == lab) & np.isfinite(t1.array)]
        for m in g.get_measurements(name=codes.DCM.T1):
            if m.derivation == codes.SCT.Mean:
                assert m.value == pytest.approx(float(np.mean(vals.astype(np.float64))), rel=1e-6)
                assert m.unit.value == "ms"
                checked += 1
        vol_ml = [m for m in g.get_measurements(name=codes.SCT.Volume)]
        assert vol_ml and vol_ml[0].value == pytest.approx(vals.size * np.prod(t1.geometry.spacing) / 1000, rel=1e-6)
    assert checked == len(ids)


def test_export_refuses_another_grid_unless_resampled(tmp_path, cli):
    src = _dicom_from_sample(tmp_path / "src")
    maps = tmp_path / "maps"
    maps.mkdir()
    t1 = read_image(SAMPLE / "maps" / "T1.nii.gz")
    shifted = t1.to_sitk()
    shifted.SetOrigin((5.0, 0.0, 0.0))
    sitk.WriteImage(shifted, str(maps / "T1.nii.gz"))
    r = cli("export", "dicom", "--maps", maps, "--reference", src, "--out", tmp_path / "dcm")
    assert r.code == 2 and "--resample" in r.err and len(r.err.strip().splitlines()) == 1
    assert not (tmp_path / "dcm").exists()                       # nothing half-written
    r = cli("export", "dicom", "--maps", maps, "--reference", src, "--out", tmp_path / "dcm", "--resample", "--quiet")
    assert r.code == 0, r.err
    assert (tmp_path / "dcm" / "PM_T1.dcm").is_file()


def test_pacs_round_trip_send_find_get_predict_send_read_back(pacs, tmp_path, cli):
    import highdicom as hd
    net = ("--port", str(pacs.dicom_port), "--called-aet", AET, "--quiet")
    src = _dicom_from_sample(tmp_path / "src")
    n_src = len(list(src.iterdir()))
    r = cli("pacs", "echo", *net)
    assert r.code == 0, r.err
    r = cli("pacs", "send", src, *net)
    assert r.code == 0 and f"accepted {n_src} of {n_src}" in r.out, r.err
    r = cli("pacs", "find", "--patient-id", PATIENT, "--modality", "MR", "--json", *net)
    assert r.code == 0, r.err
    rows = json.loads(r.out)
    mine = [x for x in rows if x["SeriesDescription"] == "SPGR FA20"]
    assert len(mine) == 1 and int(mine[0]["NumberOfSeriesRelatedInstances"]) == n_src
    study, series = mine[0]["StudyInstanceUID"], mine[0]["SeriesInstanceUID"]
    r = cli("pacs", "get", "--study-uid", study, "--series-uid", series, "--out", tmp_path / "got", *net)
    assert r.code == 0, r.err
    got = Path(r.out.split("\t")[0])
    assert len(list(got.glob("*.dcm"))) == n_src
    r = cli("predict", "--task", "spgr-t1", "--input", got, "--out", tmp_path / "maps", "--dicom-out",
            tmp_path / "dcm", "--quiet")
    assert r.code == 0, r.err
    r = cli("pacs", "send", tmp_path / "dcm", *net)
    assert r.code == 0, r.err
    r = cli("pacs", "find", "--study-uid", study, "--series-description", "Q2MRI T1 *", "--json", *net)
    found = json.loads(r.out)
    assert sorted(x["SeriesDescription"] for x in found) == ["Q2MRI T1 SD [ms] (spgr-t1)", "Q2MRI T1 [ms] (spgr-t1)"]
    found = [x for x in found if x["SeriesDescription"] == "Q2MRI T1 [ms] (spgr-t1)"]
    r = cli("pacs", "get", "--study-uid", study, "--series-uid", found[0]["SeriesInstanceUID"], "--out",
            tmp_path / "back", *net)
    assert r.code == 0, r.err
    pm_file = next(Path(r.out.split("\t")[0]).glob("*.dcm"))
    pm = hd.pm.ParametricMap.from_dataset(pydicom.dcmread(pm_file))
    t1 = read_image(tmp_path / "maps" / "T1.nii.gz")
    a, b = _in_slice_order(pm, t1), t1.array.astype(np.float32)
    assert a.shape == b.shape and np.array_equal(np.isnan(a), np.isnan(b))
    assert np.array_equal(a[~np.isnan(a)], b[~np.isnan(b)])       # float equality through the PACS
    assert _dciodvfy_errors(pm_file) == []


@pytest.mark.parametrize("case", ["down", "wrong-port", "wrong-aet"])
def test_pacs_failures_are_one_line_and_exit_2(pacs, case, cli):
    port = {"down": free_port(), "wrong-port": pacs.http_port, "wrong-aet": pacs.dicom_port}[case]
    called = "NOTORTHANC" if case == "wrong-aet" else AET
    r = cli("pacs", "echo", "--port", str(port), "--called-aet", called, "--timeout", "5")
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.err
    hint = {"down": "check --host and --port", "wrong-port": "not its web port", "wrong-aet": "check --called-aet"}[case]
    assert hint in lines[0], lines[0]


def test_dicom_out_needs_a_dicom_input(tmp_path, cli):
    r = cli("predict", "--task", "spgr-t1", "--input", SAMPLE / "spgr_fa20.nii.gz", "--out", tmp_path / "m",
            "--dicom-out", tmp_path / "d")
    assert r.code == 2 and "DICOM series folder" in r.err
    assert not (tmp_path / "m").exists()


def test_fit_dicom_out_writes_the_fitted_maps_derived_from_the_first_series(tmp_path, cli):
    import highdicom as hd
    s5 = _dicom_from_sample(tmp_path / "fa05", "spgr_fa05", 5.0)
    s20 = _dicom_from_sample(tmp_path / "fa20", "spgr_fa20", 20.0)
    r = cli("fit", "vfa", "--input", s5, "--input", s20, "--out", tmp_path / "maps", "--dicom-out", tmp_path / "dcm",
            "--quiet")
    assert r.code == 0, r.err
    assert "not exported (no DICOM quantity): quality" in r.err
    pm = hd.pm.ParametricMap.from_dataset(pydicom.dcmread(tmp_path / "dcm" / "PM_T1.dcm"))
    assert pm.SeriesDescription == "Q2MRI T1 [ms] (fit vfa)"
    assert pm.SeriesInstanceUID not in {pydicom.dcmread(next(s.iterdir())).SeriesInstanceUID for s in (s5, s20)}
    t1 = read_image(tmp_path / "maps" / "T1.nii.gz")
    a, b = _in_slice_order(pm, t1), t1.array.astype(np.float32)
    assert np.array_equal(np.isnan(a), np.isnan(b)) and np.array_equal(a[~np.isnan(a)], b[~np.isnan(b)])
