"""Whole cohorts: q2mri simulate --bids (pybids reads it), and the BIDS App q2mri bids on a real Dask
LocalCluster with 2 worker processes: the same derivatives as the single-process command line,
a truncated image fails its subject only, a rerun does no work, and the group table's means are
numpy's on the same masks."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from q2mri.io import read_image

N_SUBJECTS = 5


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from q2mri.cli.main import main
    root = tmp_path_factory.mktemp("cohort")
    assert main(["simulate", "--phantom", "knee", "--protocol", "knee-vfa", "--cases", str(N_SUBJECTS), "--seed", "21",
                 "--slices", "3", "--matrix", "48", "--bids", "--out", str(root / "bids"), "--quiet"]) == 0
    return root / "bids"


@pytest.fixture(scope="module")
def broken(dataset, tmp_path_factory):
    """The dataset with one subject's image truncated on purpose (as an interrupted copy leaves it)."""
    root = tmp_path_factory.mktemp("broken") / "bids"
    shutil.copytree(dataset, root)
    victim = root / f"sub-{N_SUBJECTS:02d}" / "anat" / f"sub-{N_SUBJECTS:02d}_flip-2_VFA.nii.gz"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    return root


def _nifti_digests(folder: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(folder)): read_image(p).array for p in sorted(folder.rglob("sub-*/anat/*.nii.gz"))}


def test_simulate_bids_has_the_qmri_names_that_pybids_finds(dataset):
    from bids import BIDSLayout
    desc = json.loads((dataset / "dataset_description.json").read_text())
    assert desc["BIDSVersion"] and desc["DatasetType"] == "raw"
    layout = BIDSLayout(str(dataset), validate=False)
    assert layout.get_subjects() == [f"{k:02d}" for k in range(1, N_SUBJECTS + 1)]
    vfa = layout.get(subject="01", suffix="VFA", extension=".nii.gz")
    assert sorted(int(f.entities["flip"]) for f in vfa) == [1, 2, 3, 4]
    fas = [f.get_metadata()["FlipAngle"] for f in sorted(vfa, key=lambda f: int(f.entities["flip"]))]
    assert fas == [5.0, 10.0, 20.0, 30.0]
    afi = layout.get(subject="01", suffix="TB1AFI", extension=".nii.gz")
    assert sorted(f.entities["acquisition"] for f in afi) == ["tr1", "tr2"]
    # BIDS units: seconds
    assert sorted(f.get_metadata()["RepetitionTime"] for f in afi) == [0.02, 0.1]
    assert (dataset / "derivatives" / "truth" / "sub-01" / "anat" / "sub-01_dseg.tsv").is_file()


def test_participant_on_a_local_cluster_equals_the_command_line_and_names_the_failure(broken, tmp_path, cli):
    out = tmp_path / "derivatives"
    r = cli("bids", broken, out, "participant", "--pipeline", "fit-vfa", "--workers", "2", "--quiet")
    # the truncated subject fails alone, named with its pipeline and reason; the exit status says so
    assert r.code == 2
    failed = [ln for ln in r.err.splitlines() if ln.startswith("q2mri: failed:")]
    assert len(failed) == 1 and f"sub-{N_SUBJECTS:02d}\tfit-vfa\t" in failed[0] and "truncated" in failed[0]
    assert "Dask dashboard at http" in r.err
    assert f"{N_SUBJECTS - 1} run(s) done" in r.out
    for k in range(1, N_SUBJECTS):
        assert (out / f"sub-{k:02d}" / "anat" / f"sub-{k:02d}_T1map.nii.gz").is_file()
    assert not list(out.glob(f"sub-{N_SUBJECTS:02d}/anat/*"))           # nothing half-written
    side = json.loads((out / "sub-01" / "anat" / "sub-01_T1map.json").read_text())
    assert side["Units"] == "ms" and side["Pipeline"] == "fit-vfa" and len(side["SourceSHA256"]) == 4
    assert json.loads((out / "dataset_description.json").read_text())["GeneratedBy"][0]["Name"] == "q2mri"

    # the same subject through the plain command line: the same maps, voxel for voxel
    anat = broken / "sub-01" / "anat"
    inputs = [x for k in (1, 2, 3, 4) for x in ("--input", anat / f"sub-01_flip-{k}_VFA.nii.gz")]
    r1 = cli("fit", "vfa", *inputs, "--out", tmp_path / "single", "--quiet")
    assert r1.code == 0, r1.err
    for name, bids_name in (("T1", "T1map"), ("PD", "M0map"), ("quality", "desc-fitvfaquality_dseg")):
        a = read_image(tmp_path / "single" / f"{name}.nii.gz").array
        b = read_image(out / "sub-01" / "anat" / f"sub-01_{bids_name}.nii.gz").array
        assert np.array_equal(a, b, equal_nan=True), name

    # and in one process without Dask: the same derivatives, file by file
    r0 = cli("bids", broken, tmp_path / "serial", "participant", "--pipeline", "fit-vfa", "--workers", "0", "--quiet")
    assert r0.code == 2
    a, b = _nifti_digests(out), _nifti_digests(tmp_path / "serial")
    assert a.keys() == b.keys() and len(a) == 4 * (N_SUBJECTS - 1)
    assert all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)

    # a rerun does no work: complete subjects are skipped, files untouched
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.nii.gz")}
    r2 = cli("bids", broken, out, "participant", "--pipeline", "fit-vfa", "--workers", "2", "--quiet")
    assert r2.code == 2 and "0 run(s) done" in r2.out and f"{N_SUBJECTS - 1} already complete" in r2.out
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("*.nii.gz")}


def test_group_table_means_equal_numpy_on_the_same_masks(dataset, tmp_path, cli):
    out = tmp_path / "derivatives"
    r = cli("bids", dataset, out, "participant", "--pipeline", "fit-vfa,fit-b1-afi", "--participant-label", "01", "02",
            "--workers", "2", "--quiet")
    assert r.code == 0, r.err
    r = cli("bids", dataset, out, "group", "--labels-from", dataset / "derivatives" / "truth")
    assert r.code == 0, r.err
    with open(out / "group" / "q2mri_group.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert list(rows[0]) == ["subject", "session", "map", "label", "n", "mean", "sd", "median", "p5", "p95", "unit"]
    import pyarrow.parquet as pq
    assert pq.read_table(out / "group" / "q2mri_group.parquet").num_rows == len(rows)
    assert (out / "group" / "boxplot_T1map.png").read_bytes()[:4] == b"\x89PNG"
    names = dict(ln.split("\t") for ln in (dataset / "derivatives" / "truth" / "sub-02" / "anat" / "sub-02_dseg.tsv")
                 .read_text().splitlines()[1:])
    labels = read_image(dataset / "derivatives" / "truth" / "sub-02" / "anat" / "sub-02_dseg.nii.gz").array.round()
    t1 = read_image(out / "sub-02" / "anat" / "sub-02_T1map.nii.gz").array.astype(np.float64)
    checked = 0
    for row in rows:
        if row["subject"] == "02" and row["map"] == "T1map":
            k = int(next(i for i, n in names.items() if n == row["label"]))
            v = t1[labels == k]
            v = v[np.isfinite(v)]
            assert int(row["n"]) == v.size and row["unit"] == "ms"
            assert float(row["mean"]) == pytest.approx(v.mean(), rel=1e-5)
            assert float(row["median"]) == pytest.approx(np.median(v), rel=1e-5)
            checked += 1
    assert checked >= 5
    # without a segmentation: the body of each pipeline's own quality map
    r = cli("bids", dataset, out, "group")
    assert r.code == 0, r.err
    with open(out / "group" / "q2mri_group.tsv") as f:
        body = [x for x in csv.DictReader(f, delimiter="\t") if x["subject"] == "01" and x["map"] == "TB1map"]
    q = read_image(out / "sub-01" / "anat" / "sub-01_desc-fitb1afiquality_dseg.nii.gz").array > 0
    b1 = read_image(out / "sub-01" / "anat" / "sub-01_TB1map.nii.gz").array.astype(np.float64)
    v = b1[q & np.isfinite(b1)]
    assert len(body) == 1 and body[0]["label"] == "body" and float(body[0]["mean"]) == pytest.approx(v.mean(), rel=1e-5)


def test_two_pipelines_writing_the_same_map_are_named_apart_and_subjects_without_inputs_are_skipped(dataset, tmp_path,
                                                                                                      cli):
    out = tmp_path / "derivatives"
    r = cli("bids", dataset, out, "participant", "--pipeline", "fit-vfa,predict-spgr-t1,fit-t2star",
            "--participant-label", "03", "--workers", "0", "--quiet")
    assert r.code == 0, r.err
    assert "sub-03\tfit-t2star\tskipped: needs 3 gradient echoes" in r.err
    anat = out / "sub-03" / "anat"
    assert (anat / "sub-03_desc-fitvfa_T1map.nii.gz").is_file() and (anat / "sub-03_desc-predictspgrt1_T1map.nii.gz").is_file()
    # a suffix query for T1 maps finds T1 maps only: no SD, residual or consistency map answers to it
    t1maps = sorted(p.name for p in out.rglob("*_T1map.nii.gz"))
    assert t1maps == ["sub-03_desc-fitvfa_T1map.nii.gz", "sub-03_desc-predictspgrt1_T1map.nii.gz"]
    for p in out.rglob("*_T1map.nii.gz"):
        side = json.loads(p.with_name(p.name.replace(".nii.gz", ".json")).read_text())
        assert side["Units"] == "ms" and side["Quantity"].endswith("relaxation time T1")
    others = {p.name for p in anat.glob("*.nii.gz")} - set(t1maps)
    assert {"sub-03_desc-fitvfa_residual.nii.gz", "sub-03_desc-predictspgrt1T1map_sd.nii.gz",
            "sub-03_desc-predictspgrt1_consistency.nii.gz"} <= others
    side = json.loads((anat / "sub-03_desc-predictspgrt1_T1map.json").read_text())
    from q2mri.cohort.participant import sha256
    from q2mri.models.registry import find_model
    assert side["ModelSHA256"] == sha256(find_model(None, "spgr-t1") / "weights.safetensors")
    assert side["Q2MRIVersion"] and side["Command"][:3] == ["q2mri", "predict", "--task"]


def test_bad_arguments_are_one_line(dataset, tmp_path, cli):
    r = cli("bids", dataset, tmp_path / "o", "participant", "--workers", "0")
    assert r.code == 2 and "--pipeline" in r.err
    r = cli("bids", dataset, tmp_path / "o", "participant", "--pipeline", "fit-vfa", "--participant-label", "99",
            "--workers", "0")
    assert r.code == 2 and "no subject(s) 99" in r.err
    r = cli("bids", tmp_path, tmp_path / "o", "participant", "--pipeline", "fit-vfa")
    assert r.code == 2 and "not a BIDS dataset" in r.err
    r = cli("bids", dataset, tmp_path / "o2", "participant", "--pipeline", "fit-vfa", "--scheduler",
            "tcp://127.0.0.1:9", "--quiet")
    assert r.code == 2 and "Dask scheduler" in r.err
