"""I/O: geometry kept exactly (checked with nibabel, an independent reader), units in the
header and sidecar, acquisition records from BIDS and DICOM, truncated files caught."""
import json

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from q2mri import Acquisition, Q2MRIError
from q2mri.io import OutputWriter, read_acquisitions, read_image
from q2mri.io.images import Geometry

from conftest import write_nifti


def _oblique_geometry():
    th = np.radians(20)
    d = np.array([[np.cos(th), -np.sin(th), 0], [np.sin(th), np.cos(th), 0], [0, 0, 1]])
    return Geometry((7, 6, 5), (0.7, 0.8, 2.5), (12.5, -40.0, 7.25), tuple(d.ravel()))


def _ras_affine(g: Geometry) -> np.ndarray:
    """The NIfTI (RAS) affine that an LPS geometry must produce, computed by hand."""
    lps = np.eye(4)
    lps[:3, :3] = np.array(g.direction).reshape(3, 3) @ np.diag(g.spacing)
    lps[:3, 3] = g.origin
    return np.diag([-1, -1, 1, 1]) @ lps


@pytest.mark.parametrize("suffix", ["nii.gz", "nrrd"])
def test_write_keeps_geometry_units_and_sidecar(tmp_path, suffix):
    g = _oblique_geometry()
    arr = np.random.default_rng(0).uniform(0, 2000, (5, 6, 7)).astype(np.float32)
    with OutputWriter(tmp_path) as w:
        w.write_image(f"T1.{suffix}", arr, g)
    back = read_image(tmp_path / f"T1.{suffix}")
    np.testing.assert_array_equal(back.array, arr)
    assert back.geometry.matches(g, tol=1e-6)
    side = json.loads((tmp_path / "T1.json").read_text())
    assert side["Units"] == "ms" and side["Name"] == "T1"
    if suffix == "nii.gz":
        n = nib.load(tmp_path / "T1.nii.gz")
        np.testing.assert_allclose(n.affine, _ras_affine(g), atol=1e-4)
        assert n.header["descrip"].tobytes().rstrip(b"\0") == b"T1 [ms]"
        np.testing.assert_array_equal(np.asarray(n.dataobj).transpose(2, 1, 0), arr)
    else:
        assert "q2mri_unit:=ms" in (tmp_path / "T1.nrrd").read_bytes()[:2000].decode("latin1")


def test_writer_leaves_nothing_on_error(tmp_path):
    g = _oblique_geometry()
    with pytest.raises(RuntimeError):
        with OutputWriter(tmp_path / "o") as w:
            w.write_image("T1.nii.gz", np.zeros((5, 6, 7), np.float32), g)
            raise RuntimeError("boom")
    assert list((tmp_path / "o").iterdir()) == []


def test_bids_sidecar_units(tmp_path):
    p = write_nifti(tmp_path / "a.nii.gz", np.ones((2, 3, 4), np.float32),
                    sidecar={"FlipAngle": 9, "RepetitionTime": 1.9, "EchoTime": 0.00293, "InversionTime": 0.9,
                             "MagneticFieldStrength": 3})
    (acq,) = read_acquisitions(read_image(p))
    assert acq == Acquisition(flip_angle_deg=9.0, tr_ms=1900.0, te_ms=2.93, ti_ms=900.0, field_strength_t=3.0)
    assert Acquisition.from_bids(acq.to_bids())[0] == acq


def test_bids_list_fields_give_one_record_per_volume(tmp_path):
    p = write_nifti(tmp_path / "me.nii.gz", np.ones((3, 2, 3, 4), np.float32),
                    sidecar={"EchoTime": [0.001, 0.002, 0.003], "RepetitionTime": 0.011, "FlipAngle": 3})
    acqs = read_acquisitions(read_image(p))
    assert [a.te_ms for a in acqs] == pytest.approx([1.0, 2.0, 3.0])
    assert all(a.tr_ms == pytest.approx(11.0) for a in acqs)


def test_mprage_bids_names():
    (a,) = Acquisition.from_bids({"RepetitionTime": 0.007, "RepetitionTimePreparation": 1.9,
                                  "RepetitionTimeExcitation": 0.007, "InversionTime": 0.9, "FlipAngle": 9})
    assert a.tr_ms == pytest.approx(1900.0) and a.echo_spacing_ms == pytest.approx(7.0)


def test_dicom_tags_to_record():
    a = Acquisition.from_dicom({"0018|1314": "30", "0018|0080": "20.0", "0018|0081": "0.032",
                                "0018|0082": "", "0018|0087": "3"})
    assert a == Acquisition(flip_angle_deg=30.0, tr_ms=20.0, te_ms=0.032, field_strength_t=3.0)


def test_validation_messages():
    with pytest.raises(Q2MRIError, match="outside 0-180"):
        Acquisition(flip_angle_deg=200).validate()
    with pytest.raises(Q2MRIError, match="TR"):
        Acquisition(tr_ms=0).validate()
    with pytest.raises(Q2MRIError, match="not shorter than TR"):
        Acquisition(tr_ms=5, te_ms=10).validate()
    with pytest.raises(Q2MRIError, match="--flip-angle"):
        Acquisition(tr_ms=5, source="x.nii").require("flip_angle_deg")


def test_truncated_files_are_caught(tmp_path):
    p = write_nifti(tmp_path / "a.nii.gz", np.random.rand(8, 8, 8).astype(np.float32))
    data = p.read_bytes()
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(Q2MRIError, match="truncated"):
        read_image(bad)
    q = tmp_path / "b.nii"
    sitk.WriteImage(sitk.GetImageFromArray(np.random.rand(8, 8, 8).astype(np.float32)), str(q))
    raw = tmp_path / "raw.nii"
    raw.write_bytes(q.read_bytes()[:1000])
    with pytest.raises(Q2MRIError, match="truncated"):
        read_image(raw)
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(Q2MRIError, match="cannot read"):
        read_image(junk)


def test_2d_images_become_one_slice(tmp_path):
    p = tmp_path / "s.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((6, 5), np.float32)), str(p))
    v = read_image(p)
    assert v.array.shape == (1, 6, 5) and v.geometry.size == (5, 6, 1)
