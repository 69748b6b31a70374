"""The q2mri command: the contract's outputs, a DICOM-in/NIfTI-out case, and every bad
input of issue section 8 (one clear line, non-zero exit, inputs untouched, nothing half
written)."""
import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from q2mri import physics as P
from q2mri.io import read_image

from conftest import tree_digest, write_nifti
from dicom_util import write_dicom_series

FA = (5, 10, 20, 30)


def _vfa_inputs(sample):
    return [x for fa in FA for x in ("--input", sample / f"spgr_fa{fa:02d}.nii.gz")]


def test_fit_vfa_sample_contract(cli, sample, tmp_path):
    before = tree_digest(sample)
    r = cli("fit", "vfa", *_vfa_inputs(sample), "--b1", sample / "maps" / "B1.nii.gz", "--out", tmp_path)
    assert r.code == 0, r.err
    t1 = read_image(tmp_path / "T1.nii.gz")
    pd = read_image(tmp_path / "PD.nii.gz")
    ref = read_image(sample / "maps" / "T1.nii.gz")
    assert t1.geometry.matches(ref.geometry)
    lab = read_image(sample / "maps" / "labels.nii.gz").array
    m = (lab > 0) & (lab != 4) & (lab != 8)
    assert np.median(np.abs(t1.array[m] / ref.array[m] - 1)) < 0.03
    assert pd.array[m].min() > 0
    assert json.loads((tmp_path / "T1.json").read_text())["Units"] == "ms"
    assert tree_digest(sample) == before  # inputs never modified


def _write_series(tmp_path, name, arrays, sidecars):
    paths = []
    for i, (a, sc) in enumerate(zip(arrays, sidecars)):
        paths.append(write_nifti(tmp_path / f"{name}{i}.nii.gz", a.astype(np.float32), sidecar=sc))
    return paths


def test_fit_t2star_t1ir_t2_b1afi_b0_fatwater_dixon_files(cli, tmp_path):
    shape = (2, 6, 7)
    rng = np.random.default_rng(0)
    t1 = rng.uniform(500, 1500, shape)
    t2s = rng.uniform(10, 40, shape)
    te = [2.0, 6.0, 10.0, 14.0]
    ims = _write_series(tmp_path, "me", [P.mono_exponential(1.0, t2s, t) for t in te],
                        [{"EchoTime": t / 1000} for t in te])
    r = cli("fit", "t2star", *[x for p in ims for x in ("--input", p)], "--out", tmp_path / "t2s")
    assert r.code == 0, r.err
    for f in ("T2s", "R2s", "S0"):
        assert (tmp_path / "t2s" / f"{f}.nii.gz").exists()
    np.testing.assert_allclose(read_image(tmp_path / "t2s" / "T2s.nii.gz").array, t2s, rtol=1e-3)
    np.testing.assert_allclose(read_image(tmp_path / "t2s" / "R2s.nii.gz").array, 1000 / t2s, rtol=1e-3)
    # one 4D file with an EchoTime list works the same
    p4 = write_nifti(tmp_path / "me4d.nii.gz", np.stack([P.mono_exponential(1.0, t2s, t) for t in te]).astype(np.float32),
                     sidecar={"EchoTime": [t / 1000 for t in te]})
    assert cli("fit", "t2star", "--input", p4, "--out", tmp_path / "t2s4").code == 0

    ti = [50.0, 150.0, 400.0, 1100.0, 2500.0]
    ims = _write_series(tmp_path, "ir", [np.abs(P.inversion_recovery(t1, 1.0, t, 6000.0)) for t in ti],
                        [{"InversionTime": t / 1000, "RepetitionTime": 6.0} for t in ti])
    r = cli("fit", "t1-ir", *[x for p in ims for x in ("--input", p)], "--out", tmp_path / "ir")
    assert r.code == 0, r.err
    np.testing.assert_allclose(read_image(tmp_path / "ir" / "T1.nii.gz").array, t1, rtol=1e-3)

    ims = _write_series(tmp_path, "se", [P.mono_exponential(1.0, t2s * 3, t) for t in te], [{} for _ in te])
    r = cli("fit", "t2", *[x for p in ims for x in ("--input", p)], "--te", ",".join(map(str, te)), "--out", tmp_path / "t2")
    assert r.code == 0, r.err
    np.testing.assert_allclose(read_image(tmp_path / "t2" / "T2.nii.gz").array, t2s * 3, rtol=1e-3)

    b1 = rng.uniform(0.7, 1.3, shape)
    s = P.afi(t1, 1.0, 45.0, 20.0, 100.0, b1=b1)
    ims = _write_series(tmp_path, "afi", [s[..., 0], s[..., 1]], [{"FlipAngle": 45, "RepetitionTime": 0.02},
                                                                  {"FlipAngle": 45, "RepetitionTime": 0.1}])
    t1p = write_nifti(tmp_path / "t1map.nii.gz", t1.astype(np.float32))
    r = cli("fit", "b1-afi", "--input", ims[0], "--input", ims[1], "--t1", t1p, "--out", tmp_path / "afi")
    assert r.code == 0, r.err
    np.testing.assert_allclose(read_image(tmp_path / "afi" / "B1.nii.gz").array, b1, rtol=1e-3)

    # a smooth field that wraps (beyond +-1/(2 dTE) = +-217 Hz) and must be unwrapped in space
    zz, yy, xx = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    b0 = 150.0 + 250.0 * xx + 120.0 * yy
    te_b0 = [2.3, 4.6]
    sc = P.gre_complex(np.ones(shape), np.zeros(shape), 20.0, b0, np.array(te_b0), 3.0)
    mags = _write_series(tmp_path, "b0m", [np.abs(sc[..., i]) for i in range(2)], [{"EchoTime": t / 1000} for t in te_b0])
    phs = _write_series(tmp_path, "b0p", [np.angle(sc[..., i]) for i in range(2)], [{} for _ in te_b0])
    r = cli("fit", "b0", "--input", mags[0], "--input", mags[1], "--phase", phs[0], "--phase", phs[1], "--out", tmp_path / "b0")
    assert r.code == 0, r.err
    np.testing.assert_allclose(read_image(tmp_path / "b0" / "B0.nii.gz").array, b0, atol=0.05)

    pdff = np.linspace(0, 1, np.prod(shape)).reshape(shape)
    te_fw = [0.036, 1.048, 2.060, 3.072, 4.084, 5.096]
    sc = P.gre_complex(1 - pdff, pdff, 40.0, 30.0, np.array(te_fw), 3.0)
    mags = _write_series(tmp_path, "fwm", [np.abs(sc[..., i]) for i in range(6)],
                         [{"EchoTime": t / 1000, "MagneticFieldStrength": 3.0} for t in te_fw])
    phs = _write_series(tmp_path, "fwp", [np.angle(sc[..., i]) for i in range(6)], [{} for _ in te_fw])
    r = cli("fit", "fatwater", *[x for m, p in zip(mags, phs) for x in ("--input", m, "--phase", p)],
            "--mask", write_nifti(tmp_path / "m.nii.gz", np.ones(shape, np.uint8)), "--out", tmp_path / "fw")
    assert r.code == 0, r.err
    for f in ("PDFF", "R2s", "B0", "water", "fat"):
        assert (tmp_path / "fw" / f"{f}.nii.gz").exists()
    np.testing.assert_allclose(read_image(tmp_path / "fw" / "PDFF.nii.gz").array, 100 * pdff, atol=0.1)

    # 1.048 / 4.084 ms are not an in-phase / opposed-phase pair at 3 T (fat 164 and 278 deg from water)
    r = cli("fit", "dixon", "--input", mags[1], "--input", mags[4], "--out", tmp_path / "dx")
    assert r.code == 2 and "in-phase" in r.err and "--force" in r.err
    r = cli("fit", "dixon", "--input", mags[1], "--input", mags[4], "--force", "--out", tmp_path / "dx")
    assert r.code == 0 and (tmp_path / "dx" / "PDFF.nii.gz").exists()


def test_synth_roi_evaluate(cli, sample, tmp_path):
    out = tmp_path / "fa15.nii.gz"
    r = cli("synth", "--maps", sample / "maps", "--sequence", "spgr", "--flip-angle", "15", "--tr", "20", "--out", out)
    assert r.code == 0, r.err
    m = {k: read_image(sample / "maps" / f"{k}.nii.gz").array for k in ("T1", "PD", "B1")}
    np.testing.assert_allclose(read_image(out).array, P.spgr(m["T1"], m["PD"], 15.0, 20.0, b1=m["B1"]), rtol=1e-5, atol=1e-7)
    r = cli("roi", "--map", sample / "maps" / "T1.nii.gz", "--labels", sample / "maps" / "labels.nii.gz", "--json")
    rows = json.loads(r.out)
    lab = read_image(sample / "maps" / "labels.nii.gz").array
    cart = next(x for x in rows if x["Segment"] == "cartilage")
    assert cart["Mean"] == pytest.approx(float(m["T1"][lab == 5].astype(np.float64).mean()), rel=1e-6)
    assert set(cart) == {"Segment", "Map", "Unit", "Voxels", "Volume_mL", "Mean", "SD", "Median", "P5", "P95", "Flagged"}
    assert cart["Flagged"] == 0
    r = cli("evaluate", "--pred", sample / "maps" / "T1.nii.gz", "--ref", sample / "maps" / "T1.nii.gz", "--json")
    res = json.loads(r.out)
    assert {"l1", "corr", "ssim", "psnr", "mae", "mpe", "ccc"} <= set(res)
    assert res["l1"] == 0 and res["ccc"] == pytest.approx(1.0)


def test_dicom_series_in_nifti_maps_out(cli, tmp_path):
    """Four DICOM series (FA and TR in the tags) -> fit vfa -> NIfTI with the DICOM geometry."""
    th = np.radians(15)
    direction = (np.cos(th), 0, np.sin(th), 0, 1, 0, -np.sin(th), 0, np.cos(th))
    spacing, origin = (0.8, 0.9, 3.0), (-20.0, -15.0, 30.0)
    t1 = np.full((4, 10, 12), 1000.0)
    t1[:, 3:7, 4:9] = 400.0
    folders = []
    for i, fa in enumerate(FA):
        s = P.spgr(t1, 1.0, fa, 20.0) * 20000
        folders.append(write_dicom_series(tmp_path / f"fa{fa}", np.round(s), spacing, origin, direction,
                                          {"0018|1314": str(fa), "0018|0080": "20", "0018|0081": "2.0",
                                           "0018|0087": "3"}, f"1.2.826.0.1.3680043.2.1125.2.{i}"))
    r = cli("fit", "vfa", *[x for f in folders for x in ("--input", f)], "--out", tmp_path / "maps")
    assert r.code == 0, r.err
    n = nib.load(tmp_path / "maps" / "T1.nii.gz")
    d = np.array(direction).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = d @ np.diag(spacing)
    lps[:3, 3] = origin
    np.testing.assert_allclose(n.affine, np.diag([-1, -1, 1, 1]) @ lps, atol=1e-3)
    got = np.asarray(n.dataobj).transpose(2, 1, 0)
    np.testing.assert_allclose(got, t1, rtol=0.01)  # 16-bit quantisation only


# ------------------------------------------------------------------ bad input (section 8)
@pytest.fixture
def vfa_pair(tmp_path):
    a = np.full((3, 5, 6), 100.0, np.float32)
    p1 = write_nifti(tmp_path / "in" / "a.nii.gz", a, sidecar={"FlipAngle": 5, "RepetitionTime": 0.02})
    p2 = write_nifti(tmp_path / "in" / "b.nii.gz", a * 1.5, sidecar={"FlipAngle": 20, "RepetitionTime": 0.02})
    return p1, p2


def _bad(cli, tmp_path, *args, match):
    inputs = tmp_path / "in"
    before = tree_digest(inputs) if inputs.exists() else None
    out = tmp_path / "out"
    r = cli(*[str(a).replace("OUT", str(out)) for a in args])
    assert r.code not in (0, None), r.out
    lines = [l for l in r.err.strip().splitlines() if l]
    assert lines and "Traceback" not in r.err
    assert match.lower() in r.err.lower(), r.err
    if before is not None:
        assert tree_digest(inputs) == before
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*")), "half-written output"
    return lines[-1]


def test_bad_geometry(cli, tmp_path, vfa_pair):
    odd = write_nifti(tmp_path / "in" / "odd.nii.gz", np.full((3, 5, 6), 120.0, np.float32), spacing=(1.2, 1.0, 2.0),
                      sidecar={"FlipAngle": 30, "RepetitionTime": 0.02})
    line = _bad(cli, tmp_path, "fit", "vfa", "--input", vfa_pair[0], "--input", odd, "--out", "OUT", match="geometry differs")
    assert "a.nii.gz" in line and "odd.nii.gz" in line and "--resample" in line
    r = cli("fit", "vfa", "--input", vfa_pair[0], "--input", odd, "--resample", "--out", tmp_path / "ok")
    assert r.code == 0 and (tmp_path / "ok" / "T1.nii.gz").exists()


def test_missing_acquisition_parameter(cli, tmp_path):
    a = write_nifti(tmp_path / "in" / "x.nii.gz", np.ones((2, 3, 4), np.float32))
    b = write_nifti(tmp_path / "in" / "y.nii.gz", np.ones((2, 3, 4), np.float32) * 2)
    line = _bad(cli, tmp_path, "fit", "vfa", "--input", a, "--input", b, "--tr", "20", "--out", "OUT", match="flip angle")
    assert "FlipAngle" in line and "--flip-angle" in line
    _bad(cli, tmp_path, "fit", "t2star", "--input", a, "--input", b, "--out", "OUT", match="EchoTime")


@pytest.mark.parametrize("value,match", [(np.nan, "NaN"), (np.inf, "Inf"), (-5.0, "negative")])
def test_bad_intensities(cli, tmp_path, vfa_pair, value, match):
    a = np.full((3, 5, 6), 100.0, np.float32)
    a[1, 2, 3] = value
    bad = write_nifti(tmp_path / "in" / "bad.nii.gz", a, sidecar={"FlipAngle": 30, "RepetitionTime": 0.02})
    _bad(cli, tmp_path, "fit", "vfa", "--input", vfa_pair[0], "--input", bad, "--out", "OUT", match=match)


def test_dimension_confusion(cli, tmp_path, vfa_pair):
    b1_4d = write_nifti(tmp_path / "in" / "b1.nii.gz", np.ones((2, 3, 5, 6), np.float32))
    _bad(cli, tmp_path, "fit", "vfa", "--input", vfa_pair[0], "--input", vfa_pair[1], "--b1", b1_4d, "--out", "OUT",
         match="4D")
    four = write_nifti(tmp_path / "in" / "four.nii.gz", np.ones((4, 3, 5, 6), np.float32),
                       sidecar={"FlipAngle": 10, "RepetitionTime": 0.02})
    _bad(cli, tmp_path, "fit", "vfa", "--input", four, "--out", "OUT", match="--component")
    five = tmp_path / "in" / "five.nii.gz"
    hdr = nib.Nifti1Image(np.ones((2, 2, 2, 2, 2), np.float32), np.eye(4))
    nib.save(hdr, five)
    _bad(cli, tmp_path, "fit", "vfa", "--input", five, "--input", vfa_pair[0], "--out", "OUT", match="5D")


@pytest.mark.parametrize("args,match", [
    (("--tr", "0"), "must be > 0"), (("--tr", "-3"), "must be > 0"),
    (("--flip-angles", "5,190"), "outside 0-180"), (("--flip-angles=-5,20",), "outside 0-180"),
])
def test_bad_protocol_values(cli, tmp_path, vfa_pair, args, match):
    _bad(cli, tmp_path, "fit", "vfa", "--input", vfa_pair[0], "--input", vfa_pair[1], *args, "--out", "OUT", match=match)


def test_unreadable_and_truncated(cli, tmp_path, vfa_pair):
    junk = tmp_path / "in" / "junk.nii.gz"
    junk.write_bytes(b"\x1f\x8b garbage")
    _bad(cli, tmp_path, "fit", "vfa", "--input", vfa_pair[0], "--input", junk, "--out", "OUT", match="cannot read")
    data = vfa_pair[1].read_bytes()
    trunc = tmp_path / "in" / "trunc.nii.gz"
    trunc.write_bytes(data[: len(data) - 20])
    _bad(cli, tmp_path, "fit", "vfa", "--input", vfa_pair[0], "--input", trunc, "--out", "OUT", match="truncated")
    _bad(cli, tmp_path, "fit", "vfa", "--input", vfa_pair[0], "--input", tmp_path / "in" / "nope.nii.gz",
         "--out", "OUT", match="does not exist")


def test_maps_folder_lacking_a_map(cli, sample, tmp_path):
    import shutil
    maps = tmp_path / "in" / "maps"
    maps.mkdir(parents=True)
    for name in ("T1", "PD"):
        shutil.copy(sample / "maps" / f"{name}.nii.gz", maps / f"{name}.nii.gz")
    line = _bad(cli, tmp_path, "synth", "--maps", maps, "--sequence", "se", "--tr", "3000", "--te", "80",
                "--out", "OUT/se.nii.gz", match="T2.nii.gz")
    assert "lacks" in line


def test_unwritable_output(cli, tmp_path, vfa_pair):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _bad(cli, tmp_path, "fit", "vfa", "--input", vfa_pair[0], "--input", vfa_pair[1], "--out", blocker / "sub",
         match="cannot write")


def test_repeated_echo_times_are_a_clear_error(cli, tmp_path):
    a = np.full((2, 4, 5), 10.0, np.float32)
    ims = [write_nifti(tmp_path / "in" / f"e{i}.nii.gz", a, sidecar={"EchoTime": 0.002, "MagneticFieldStrength": 3})
           for i in range(3)]
    ph = [write_nifti(tmp_path / "in" / f"p{i}.nii.gz", a * 0) for i in range(3)]
    _bad(cli, tmp_path, "fit", "fatwater", *[x for m, p in zip(ims, ph) for x in ("--input", m, "--phase", p)],
         "--out", "OUT", match="distinct echo times")
    _bad(cli, tmp_path, "fit", "b0", "--input", ims[0], "--input", ims[1], "--phase", ph[0], "--phase", ph[1],
         "--out", "OUT", match="two different echo times")


def test_cuda_without_a_gpu_is_a_clear_error(cli, tmp_path, vfa_pair):
    import torch
    if torch.cuda.is_available():
        r = cli("fit", "vfa", "--input", vfa_pair[0], "--input", vfa_pair[1], "--device", "cuda", "--out", tmp_path / "g")
        assert r.code == 0, r.err
        return
    _bad(cli, tmp_path, "fit", "vfa", "--input", vfa_pair[0], "--input", vfa_pair[1], "--device", "cuda",
         "--out", "OUT", match="no CUDA GPU")


def test_console_script_prints_one_line_and_no_traceback(tmp_path):
    exe = Path(sys.executable).with_name("q2mri")
    r = subprocess.run([str(exe), "fit", "vfa", "--input", str(tmp_path / "missing.nii.gz"), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr and "does not exist" in r.stderr
    for cmd in (["--help"], ["fit", "--help"], ["fit", "vfa", "--help"], ["fit", "fatwater", "--help"], ["synth", "--help"],
                ["roi", "--help"], ["evaluate", "--help"]):
        assert subprocess.run([str(exe), *cmd], capture_output=True).returncode == 0


def test_app_with_a_missing_file_is_one_clear_error(cli, tmp_path):
    r = cli("app", tmp_path / "nope.nii.gz", "--port", "0")
    assert r.code != 0 and "no such file" in r.err and "Traceback" not in r.err


def test_fit_vfa_with_a_tr_per_image_and_refusing_two_tes(cli, tmp_path):
    rng = np.random.default_rng(3)
    shape = (2, 6, 7)
    t1, pd = rng.uniform(600, 2500, shape), rng.uniform(0.5, 1.0, shape)
    prot = [(6.0, 28.0), (20.0, 18.0)]
    ims = _write_series(tmp_path, "mpm", [P.spgr(t1, pd, fa, tr) for fa, tr in prot],
                        [{"FlipAngle": fa, "RepetitionTime": tr / 1000, "EchoTime": 0.0025} for fa, tr in prot])
    r = cli("fit", "vfa", *[x for p in ims for x in ("--input", p)], "--out", tmp_path / "o")
    assert r.code == 0, r.err
    got = read_image(tmp_path / "o" / "T1.nii.gz").array
    assert np.abs(got / t1 - 1).max() < 1e-3
    assert json.loads((tmp_path / "o" / "T1.json").read_text())["RepetitionTime"] == [0.028, 0.018]
    # TE must be one for VFA (T2* decay cancels only then): refused in one line, nothing written
    bad = _write_series(tmp_path, "te", [P.spgr(t1, pd, fa, tr) for fa, tr in prot],
                        [{"FlipAngle": fa, "RepetitionTime": tr / 1000, "EchoTime": te}
                         for (fa, tr), te in zip(prot, (0.0025, 0.005))])
    r = cli("fit", "vfa", *[x for p in bad for x in ("--input", p)], "--out", tmp_path / "bad")
    assert r.code == 2 and "Traceback" not in r.err and "needs one te" in r.err.lower()
    assert not (tmp_path / "bad").exists()


def test_fit_b1_dam_recovers_b1_and_flags_where_the_ratio_has_no_angle(cli, tmp_path):
    """Double-angle pair at long TR formed through the SPGR equation (TR >> T1: PD sin(B1 A))."""
    rng = np.random.default_rng(4)
    shape = (2, 8, 9)
    b1, pd, t1 = rng.uniform(0.6, 1.4, shape), rng.uniform(0.4, 1.0, shape), rng.uniform(300, 1500, shape)
    s60, s120 = (P.spgr(t1, pd, fa, 50000.0, b1=b1) for fa in (60.0, 120.0))
    s120[0, 0, 0] = 2.5 * s60[0, 0, 0]                       # a ratio no angle gives (noise, motion)
    ims = _write_series(tmp_path, "dam", [s60, s120], [{"FlipAngle": 60}, {"FlipAngle": 120}])
    r = cli("fit", "b1-dam", "--input", ims[0], "--input", ims[1], "--out", tmp_path / "o")
    assert r.code == 0, r.err
    got = read_image(tmp_path / "o" / "B1.nii.gz").array
    q = read_image(tmp_path / "o" / "quality.nii.gz").array
    assert q[0, 0, 0] == 2 and np.isnan(got[0, 0, 0])
    ok = q == 1
    assert ok.sum() == ok.size - 1 and np.abs(got[ok] - b1[ok]).max() < 1e-4
    assert json.loads((tmp_path / "o" / "flip_angle_actual.json").read_text())["Units"] == "deg"
    r = cli("fit", "b1-dam", "--input", ims[0], "--input", ims[1], "--smooth-mm", "2", "--out", tmp_path / "s")
    assert r.code == 0 and np.nanstd(read_image(tmp_path / "s" / "B1.nii.gz").array) < np.nanstd(got)
    # the images in the wrong order (2A first) are refused in one line, nothing written
    r = cli("fit", "b1-dam", "--input", ims[1], "--input", ims[0], "--out", tmp_path / "bad")
    assert r.code == 2 and "twice the first" in r.err and "Traceback" not in r.err
    assert not (tmp_path / "bad").exists()
