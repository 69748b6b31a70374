"""Real scanner data in, right numbers out: vendor DICOM (written with pydicom, as scanners write
it) converted by dcm2niix as users convert it, then fitted through the command line. Each test
would fail without the feature it names."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from vendor_dicom import dcm2niix, write_mr_series

from q2mri import physics as P
from q2mri.io import read_image

SHAPE = (3, 10, 12)
RNG = np.random.default_rng(12)


def _truth():
    zz, yy, xx = np.meshgrid(*[np.linspace(0, 1, n) for n in SHAPE], indexing="ij")
    t1 = 400.0 + 2000.0 * xx
    pd = 0.7 + 0.2 * yy
    return t1, pd


def _philips_vfa(tmp_path, fas=(4.0, 12.0, 30.0), tr=15.0, te=2.0, scaling="n", drop_keys=False):
    """One Philips series per flip angle, each with its own display scaling (as on the scanner)."""
    t1, pd = _truth()
    paths = []
    for i, fa in enumerate(fas):
        fp = P.spgr(t1, pd, fa, tr)                                  # the true (floating-point) signal
        rs, ss = 0.8 + 0.7 * i, 3.0e4 / (1 + 2.5 * i)                # the scale drifts from series to series
        dv = np.round(fp * ss).astype(int)                           # stored: FP = DV RS / (RS SS) (RI = 0)
        folder = write_mr_series(tmp_path / "dicom" / f"fa{i}", dv, series_number=10 + i, description=f"VFA {fa:g}",
                                 manufacturer="Philips Medical Systems",
                                 acq={"FlipAngle": fa, "RepetitionTime": tr, "EchoTime": te, "MagneticFieldStrength": 3},
                                 rescale=(rs, 0.0), private={(0x2005, 0x100E): ("FL", ss)})
        nii = dcm2niix(folder, tmp_path / f"nii-{scaling}", f"vfa{i}", "-p", scaling)
        if drop_keys:        # the control: a sidecar without Philips' keys, as older converters wrote
            side = nii.with_name(nii.name.replace(".nii.gz", ".json"))
            d = json.loads(side.read_text())
            for k in ("PhilipsRescaleSlope", "PhilipsRescaleIntercept", "PhilipsScaleSlope", "UsePhilipsFloatNotDisplayScaling"):
                d.pop(k, None)
            side.write_text(json.dumps(d))
        paths.append(nii)
    return paths, t1


def _on_grid_of(path, truth, spacing=(1.5, 1.5, 3.0)):
    """The truth (written as DICOM: identity orientation, origin 0, in (z, y, x) order) on the
    grid of a converted image: dcm2niix reorders voxels, the patient positions do not change."""
    import SimpleITK as sitk
    ref = read_image(path)
    src = sitk.GetImageFromArray(np.asarray(truth, np.float64))
    src.SetSpacing(spacing)
    target = ref.geometry.apply(sitk.Image(list(ref.geometry.size), sitk.sitkFloat64))
    return sitk.GetArrayFromImage(sitk.Resample(src, target, sitk.Transform(), sitk.sitkNearestNeighbor, np.nan))


def _fit(cli, args, out):
    r = cli(*args, "--out", out, "--quiet")
    return r


def test_philips_display_values_are_converted_to_floating_point(cli, tmp_path):
    paths, t1 = _philips_vfa(tmp_path)
    r = _fit(cli, ["fit", "vfa", *sum((["--input", p] for p in paths), []), "--mask", _ones(tmp_path, paths[0])], tmp_path / "o")
    assert r.code == 0, r.err
    assert r.err.count("Philips display values converted") == 3           # said once per series
    got = read_image(tmp_path / "o" / "T1.nii.gz").array
    t1 = _on_grid_of(paths[0], t1)
    assert np.nanmax(np.abs(got / t1 - 1)) < 0.02
    # the control: without the scale keys the same numbers give a wrong T1 (the bug of the issue)
    bad, _ = _philips_vfa(tmp_path / "ctl", drop_keys=True)
    r = _fit(cli, ["fit", "vfa", *sum((["--input", p] for p in bad), []), "--mask", _ones(tmp_path, bad[0])],
             tmp_path / "bad")
    wrong = read_image(tmp_path / "bad" / "T1.nii.gz").array
    assert r.code != 0 or np.nanmedian(np.abs(wrong / t1 - 1)) > 0.2


def test_philips_float_scaling_from_dcm2niix_is_left_alone(cli, tmp_path):
    paths, t1 = _philips_vfa(tmp_path, scaling="y")
    r = _fit(cli, ["fit", "vfa", *sum((["--input", p] for p in paths), []), "--mask", _ones(tmp_path, paths[0])], tmp_path / "o")
    assert r.code == 0, r.err
    assert "Philips" not in r.err
    assert np.nanmax(np.abs(read_image(tmp_path / "o" / "T1.nii.gz").array / _on_grid_of(paths[0], t1) - 1)) < 0.02


def test_philips_dicom_folders_read_directly_are_converted_too(cli, tmp_path):
    _philips_vfa(tmp_path)
    dirs = [tmp_path / "dicom" / f"fa{i}" for i in range(3)]
    r = _fit(cli, ["fit", "vfa", *sum((["--input", d] for d in dirs), [])], tmp_path / "o")
    assert r.code == 0, r.err
    assert "Philips display values converted" in r.err
    t1, _ = _truth()
    got = read_image(tmp_path / "o" / "T1.nii.gz").array
    assert np.nanmedian(np.abs(got / t1 - 1)) < 0.02


def _set_flag(nii, value):
    side = nii.with_name(nii.name.replace(".nii.gz", ".json"))
    d = json.loads(side.read_text())
    d["UsePhilipsFloatNotDisplayScaling"] = value
    side.write_text(json.dumps(d))


def test_philips_header_decides_when_the_sidecar_flag_contradicts_it(cli, tmp_path):
    """As in a real Philips IR series: the sidecar says floating point (flag 1), but the NIfTI's
    scl_slope is the rescale slope, so the voxels hold display values and must be converted."""
    paths, t1 = _philips_vfa(tmp_path, scaling="n")
    for p in paths:
        _set_flag(p, 1)
    r = _fit(cli, ["fit", "vfa", *sum((["--input", p] for p in paths), []), "--mask", _ones(tmp_path, paths[0])], tmp_path / "o")
    assert r.code == 0, r.err
    assert r.err.count("Philips display values converted") == 3
    assert r.err.count("UsePhilipsFloatNotDisplayScaling = 1, but the NIfTI header") == 3
    got = read_image(tmp_path / "o" / "T1.nii.gz").array
    assert np.nanmax(np.abs(got / _on_grid_of(paths[0], t1) - 1)) < 0.02
    # the other contradiction: floating-point values (slope 1 / SS) under a flag of 0 are left alone
    fps, _ = _philips_vfa(tmp_path / "fp", scaling="y")
    for p in fps:
        _set_flag(p, 0)
    r = _fit(cli, ["fit", "vfa", *sum((["--input", p] for p in fps), []), "--mask", _ones(tmp_path / "fp", fps[0])],
             tmp_path / "o2")
    assert r.code == 0, r.err
    assert "already floating-point values" in r.err and "display values converted" not in r.err
    got = read_image(tmp_path / "o2" / "T1.nii.gz").array
    assert np.nanmax(np.abs(got / _on_grid_of(fps[0], t1) - 1)) < 0.02


def test_philips_header_slope_that_fits_neither_is_refused(cli, tmp_path):
    import nibabel as nib
    paths, _ = _philips_vfa(tmp_path, scaling="n")
    img = nib.load(str(paths[1]))
    data = np.asanyarray(img.dataobj.get_unscaled())
    out = nib.Nifti1Image(data, img.affine, img.header)
    out.header.set_slope_inter(7.0, 0.0)
    before = paths[1].read_bytes()
    nib.save(out, str(paths[1]))
    r = _fit(cli, ["fit", "vfa", *sum((["--input", p] for p in paths), [])], tmp_path / "o")
    assert r.code == 2 and "Traceback" not in r.err
    assert "scl_slope 7" in r.err and "RS 1.5" in r.err and f"SS {3.0e4 / 3.5:g}" in r.err     # the fixture's second series
    assert len(r.err.strip().splitlines()) == 1 or r.err.strip().splitlines()[-1].startswith("q2mri: error:")
    assert not (tmp_path / "o").exists()
    assert before != paths[1].read_bytes()


def _ones(tmp_path, like):
    from q2mri.io.writer import write_single
    v = read_image(like)
    p = tmp_path / "mask.nii.gz"
    if not p.exists():
        write_single(p, np.ones(v.array.shape, np.float32), v.geometry, quantity="mask", unit="label")
    return p


def _ir_series(tmp_path, tes=(12.0, 12.0, 12.0, 12.0), tis=(50.0, 400.0, 1100.0, 2500.0), tr=5000.0, t1=None):
    t1 = _truth()[0] if t1 is None else t1
    paths = []
    for i, (ti, te) in enumerate(zip(tis, tes)):
        s = np.abs(P.inversion_recovery(t1, 0.8, ti, tr))
        folder = write_mr_series(tmp_path / "dicom" / f"ir{i}", np.round(s * 3000).astype(int), series_number=20 + i,
                                 description=f"IR {ti:g}", manufacturer="SIEMENS",
                                 acq={"InversionTime": ti, "RepetitionTime": tr, "EchoTime": te, "FlipAngle": 90,
                                      "MagneticFieldStrength": 3})
        paths.append(dcm2niix(folder, tmp_path / "nii", f"ir{i}"))
    return paths


def test_an_image_at_another_te_is_refused_or_fitted_with_a_warning(cli, tmp_path):
    paths = _ir_series(tmp_path, tes=(12.0, 12.0, 14.5, 12.0))
    args = ["fit", "t1-ir", *sum((["--input", p] for p in paths), [])]
    r = _fit(cli, args, tmp_path / "o")
    assert r.code == 2 and "ir2" in r.err and "14.5" in r.err and "12" in r.err and "--allow-mixed" in r.err
    assert "Traceback" not in r.err and not (tmp_path / "o" / "T1.nii.gz").exists()
    r = _fit(cli, args + ["--allow-mixed"], tmp_path / "o")
    assert r.code == 0 and "warning" in r.err and "--allow-mixed" in r.err


def test_units_that_look_wrong_are_errors_naming_the_unit(cli, tmp_path):
    paths = _ir_series(tmp_path)
    r = _fit(cli, ["fit", "t1-ir", *sum((["--input", p] for p in paths), []), "--ti", "0.05,0.4,1.1,2.5"], tmp_path / "a")
    assert r.code == 2 and "seconds" in r.err
    r = _fit(cli, ["fit", "t1-ir", *sum((["--input", p] for p in paths), []), "--tr", "2000"], tmp_path / "b")
    assert r.code == 2 and "not shorter than TR" in r.err
    mags, phs = _dual_echo(tmp_path / "b0", "GE", "mrad")
    r = _fit(cli, ["fit", "b0", "--input", mags[0], "--input", mags[1], "--phase", phs[0], "--phase", phs[1],
                   "--te", "0.0023,0.0046"], tmp_path / "c")
    assert r.code == 2 and "seconds" in r.err
    r = _fit(cli, ["fit", "vfa", "--input", paths[0], "--input", paths[1], "--flip-angles", "0,10", "--tr", "20"],
             tmp_path / "d")
    assert r.code == 2 and "flip angle" in r.err


def _dual_echo(tmp_path, vendor, encoding, b0=None, tes=(2.3, 4.6)):
    """Two echoes of a field b0 (Hz) with the phase stored as the vendor stores it."""
    zz, yy, xx = np.meshgrid(*[np.linspace(-1, 1, n) for n in (4, 24, 28)], indexing="ij")
    body = (xx ** 2 + yy ** 2) < 0.8
    if b0 is None:
        b0 = 60.0 + 80.0 * xx
    mags, phs = [], []
    for i, te in enumerate(tes):
        s = body * P.gre_complex(np.ones(xx.shape), np.zeros(xx.shape), 20.0, b0, np.array([te]), 3.0)[..., 0]
        mag = np.round(np.abs(s) * 2000 + 5 * RNG.random(xx.shape)).astype(int)
        ph = np.angle(s * np.exp(0.02j * RNG.standard_normal(xx.shape)))     # stored within +-pi
        ph = np.where(body, ph, RNG.uniform(-np.pi, np.pi, xx.shape))
        if encoding == "mrad":                          # GE / Philips: integer milliradians, +-3142
            stored, resc, signed = np.round(ph * 1000).astype(int), (1.0, 0.0), True
        elif encoding == "siemens":                     # Siemens: 0..4095 with slope 2, intercept -4096
            stored, resc, signed = np.round((ph / np.pi * 4096 + 4096) / 2).clip(0, 4095).astype(int), (2.0, -4096.0), False
        else:                                           # something no scanner writes: degrees x 100
            stored, resc, signed = np.round(np.degrees(ph) * 100).astype(int), (1.0, 0.0), True
        acq = {"EchoTime": te, "RepetitionTime": 20.0, "FlipAngle": 20, "MagneticFieldStrength": 3}
        fm = write_mr_series(tmp_path / "dicom" / f"m{i}", mag, series_number=30 + i, description=f"echo{i}",
                             manufacturer=vendor, acq=acq)
        fp = write_mr_series(tmp_path / "dicom" / f"p{i}", stored, series_number=40 + i, description=f"phase{i}",
                             manufacturer=vendor, acq=acq, rescale=resc, signed=signed,
                             image_type=("ORIGINAL", "PRIMARY", "P", "ND"))
        mags.append(dcm2niix(fm, tmp_path / "nii", f"mag{i}"))
        phs.append(dcm2niix(fp, tmp_path / "nii", f"phase{i}"))
    return mags, phs


@pytest.mark.parametrize("vendor,encoding", [("GE", "mrad"), ("SIEMENS", "siemens")])
def test_integer_phase_is_rescaled_with_a_note(cli, tmp_path, vendor, encoding):
    mags, phs = _dual_echo(tmp_path, vendor, encoding)
    r = _fit(cli, ["fit", "b0", "--input", mags[0], "--input", mags[1], "--phase", phs[0], "--phase", phs[1]], tmp_path / "o")
    assert r.code == 0, r.err
    assert "rescaled to radians" in r.err
    b0 = read_image(tmp_path / "o" / "B0.nii.gz").array
    q = read_image(tmp_path / "o" / "quality.nii.gz").array
    zz, yy, xx = np.meshgrid(*[np.linspace(-1, 1, n) for n in (4, 24, 28)], indexing="ij")
    truth = _on_grid_of(mags[0], 60.0 + 80.0 * xx)
    inner = (q == 1) & _on_grid_of(mags[0], ((xx ** 2 + yy ** 2) < 0.6).astype(float)).astype(bool)
    err = np.abs(b0[inner] - truth[inner])      # phase noise 0.02 rad per echo: about 2 Hz SD
    assert np.median(err) < 2.0 and err.max() < 12.0


def test_an_unknown_phase_encoding_is_refused_and_phase_scale_fits_it(cli, tmp_path):
    mags, phs = _dual_echo(tmp_path, "GE", "centidegrees")
    args = ["fit", "b0", "--input", mags[0], "--input", mags[1], "--phase", phs[0], "--phase", phs[1]]
    r = _fit(cli, args, tmp_path / "o")
    assert r.code == 2 and "--phase-scale" in r.err and "Traceback" not in r.err
    r = _fit(cli, args + ["--phase-scale", str(math.pi / 18000.0)], tmp_path / "o")
    assert r.code == 0, r.err


def test_b0_is_unwrapped_in_space_masked_to_the_body_and_its_sign_documented(cli, tmp_path):
    # a field spanning +-400 Hz against a wrap range of +-217 Hz (dTE 2.3 ms)
    zz, yy, xx = np.meshgrid(*[np.linspace(-1, 1, n) for n in (4, 24, 28)], indexing="ij")
    field = 400.0 * xx + 50.0 * yy
    mags, phs = _dual_echo(tmp_path, "GE", "mrad", b0=field)
    args = ["fit", "b0", "--input", mags[0], "--input", mags[1], "--phase", phs[0], "--phase", phs[1]]
    r = _fit(cli, args, tmp_path / "o")
    assert r.code == 0, r.err
    b0 = read_image(tmp_path / "o" / "B0.nii.gz").array
    q = read_image(tmp_path / "o" / "quality.nii.gz").array
    body = _on_grid_of(mags[0], ((xx ** 2 + yy ** 2) < 0.8).astype(float)).astype(bool)
    assert (q[~body] == 0).mean() > 0.95                     # the default mask keeps the body, not the noise
    inner = (q == 1) & _on_grid_of(mags[0], ((xx ** 2 + yy ** 2) < 0.6).astype(float)).astype(bool)
    field = _on_grid_of(mags[0], field)
    err = np.abs(b0[inner] - field[inner])        # voxel-wise it would be off by 435 Hz where it wraps
    assert np.median(err) < 2.0 and err.max() < 12.0
    side = json.loads((tmp_path / "o" / "B0.json").read_text())
    assert "positive where the phase grows with echo time" in side["B0SignConvention"]
    r = _fit(cli, args + ["--negate"], tmp_path / "n")
    assert np.allclose(read_image(tmp_path / "n" / "B0.nii.gz").array[inner], -b0[inner])


def test_failed_voxels_are_flagged_nan_and_counted(cli, tmp_path):
    t1 = _truth()[0]
    t1[:, :3, :] = 8.0             # far shorter than the first TI (50 ms): fully recovered everywhere
    paths = _ir_series(tmp_path, t1=t1)
    r = _fit(cli, ["fit", "t1-ir", *sum((["--input", p] for p in paths), [])], tmp_path / "o")
    assert r.code == 0, r.err
    got = read_image(tmp_path / "o" / "T1.nii.gz").array
    q = read_image(tmp_path / "o" / "quality.nii.gz").array
    short = np.zeros(SHAPE)
    short[:, :3, :] = 1
    short = _on_grid_of(paths[0], short).astype(bool)
    assert np.isnan(got[short]).all() and (q[short] == 2).all()
    assert np.isfinite(got[~short]).all() and (q[~short] == 1).all()
    assert "flagged" in r.out
    # ROI statistics exclude and count them
    from q2mri.io.writer import write_single
    lab = write_single(tmp_path / "lab.nii.gz", np.ones(SHAPE, np.float32), read_image(paths[0]).geometry,
                       quantity="labels", unit="label")
    r = cli("roi", "--map", tmp_path / "o" / "T1.nii.gz", "--labels", lab, "--json")
    row = json.loads(r.out)[0]
    assert row["Flagged"] == 3 * 3 * 12 and row["Voxels"] == int(np.prod(SHAPE)) - 3 * 3 * 12
    assert abs(row["Mean"] - np.mean(got[np.isfinite(got)])) < 1e-3


def test_4d_components_need_component_and_real_imaginary_pairs_combine(cli, tmp_path):
    from q2mri.io.writer import write_single
    mags, phs = _dual_echo(tmp_path, "GE", "mrad")
    m0 = read_image(mags[0])
    comp = np.stack([m0.array, m0.array * 0.5, m0.array * 0.1])          # magnitude, real, imaginary in the 4th dim
    four = tmp_path / "four.nii.gz"
    import SimpleITK as sitk
    img = sitk.JoinSeries([m0.geometry.apply(sitk.GetImageFromArray(c.astype(np.float32))) for c in comp])
    sitk.WriteImage(img, str(four))
    four.with_name("four.json").write_text(json.dumps({"EchoTime": 0.0023, "RepetitionTime": 0.02, "FlipAngle": 20}))
    r = _fit(cli, ["fit", "t2star", "--input", four], tmp_path / "x")
    assert r.code == 2 and "--component" in r.err
    # real and imaginary parts as separate files (ImageType REAL / IMAGINARY): combined into complex echoes
    s = P.gre_complex(np.ones((2, 6, 7)), np.zeros((2, 6, 7)), 20.0, 75.0, np.array([2.3, 4.6]), 3.0)
    files = []
    for i, te in enumerate((2.3, 4.6)):
        for part, kind in ((s[..., i].real, "REAL"), (s[..., i].imag, "IMAGINARY")):
            p = tmp_path / f"e{i}_{kind.lower()}.nii.gz"
            write_single(p, part.astype(np.float32), m0.geometry.__class__((7, 6, 2), (1, 1, 1), (0, 0, 0),
                                                                           (1, 0, 0, 0, 1, 0, 0, 0, 1)),
                         quantity=kind.lower(), unit="a.u.")
            p.with_name(p.name.replace(".nii.gz", ".json")).write_text(json.dumps(
                {"EchoTime": te / 1000, "ImageType": ["ORIGINAL", "PRIMARY", kind], "RepetitionTime": 0.02, "FlipAngle": 20}))
            files.append(p)
    r = _fit(cli, ["fit", "b0", *sum((["--input", f] for f in files), [])], tmp_path / "ri")
    assert r.code == 0, r.err
    assert "real and imaginary parts combined" in r.err
    assert np.allclose(read_image(tmp_path / "ri" / "B0.nii.gz").array, 75.0, atol=0.5)


def test_synthesis_from_predicted_maps_at_ute_te_needs_no_t2star(cli, tmp_path):
    from q2mri.io.writer import OutputWriter
    from q2mri.io.images import Geometry
    g = Geometry((5, 4, 2), (1, 1, 1), (0, 0, 0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    with OutputWriter(tmp_path / "maps") as w:
        for name, v in (("T1", 1000.0), ("PD", 0.8), ("B1", 1.0)):
            w.write_image(f"{name}.nii.gz", np.full((2, 4, 5), v, np.float32), g)
    r = cli("synth", "--maps", tmp_path / "maps", "--sequence", "spgr", "--flip-angle", "20", "--tr", "20", "--te", "0.032",
            "--out", tmp_path / "s.nii.gz")
    assert r.code == 0, r.err
    assert np.allclose(read_image(tmp_path / "s.nii.gz").array, P.spgr(1000.0, 0.8, 20.0, 20.0), rtol=1e-5)
    assert "none" in json.loads((tmp_path / "s.json").read_text())["T2sDecay"]
    r = cli("synth", "--maps", tmp_path / "maps", "--sequence", "spgr", "--flip-angle", "20", "--tr", "20", "--te", "2",
            "--out", tmp_path / "t.nii.gz")
    assert r.code == 2 and "T2s" in r.err


def test_the_command_line_starts_quietly_and_without_torch(tmp_path):
    probe = ("import sys\nfrom q2mri.cli.main import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "print('TORCH', 'torch' in sys.modules, 'SITK', 'SimpleITK' in sys.modules)")
    for args in (["--version"], ["fit", "vfa", "--help"]):
        r = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True)
        assert "TORCH False" in r.stdout, (args, r.stdout)
    # ITK's own warnings (an oblique qform against its sform) do not reach the terminal
    import nibabel as nib
    aff = np.diag([1.0, 1.0, 1.0, 1.0])
    img = nib.Nifti1Image(np.ones((6, 5, 2), np.float32) * 100, aff)
    q = aff.copy()
    q[:3, :3] = [[0.9, -0.43, 0], [0.43, 0.9, 0], [0, 0, 1]]
    img.set_qform(q, code=1)
    img.set_sform(aff, code=2)
    p = tmp_path / "odd.nii.gz"
    nib.save(img, p)
    p.with_name("odd.json").write_text(json.dumps({"EchoTime": 0.002}))
    r = subprocess.run([sys.executable, "-m", "q2mri.cli.main", "fit", "t2star", "--input", str(p), "--input", str(p),
                        "--te", "2,2", "--out", str(tmp_path / "o")], capture_output=True, text=True,
                       env={**__import__("os").environ, "Q2MRI_LOG": str(tmp_path / "debug.log")})
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("q2mri: error:"), r.stderr


def test_inversion_recovery_without_tr_and_with_rounding_negatives(cli, tmp_path):
    """As the real IR brain is stored: magnitude images at 9 TIs, no TR recorded, and a tiny
    negative offset (-6.5e-6 against a maximum of 77) left by the reconstruction in the background."""
    from conftest import write_nifti
    rng = np.random.default_rng(21)
    shape = (2, 6, 7)
    t1, pd = rng.uniform(500, 2500, shape), rng.uniform(0.5, 1.0, shape)
    ti = [350, 500, 650, 800, 950, 1100, 1250, 1400, 1700]
    series = np.stack([np.abs(P.inversion_recovery(t1, 70.0 * pd, float(t), 3000.0)) for t in ti]).astype(np.float32)
    series[:, 0, 0, :] = -6.488583e-06                      # background rounding
    t1[0, 0, :] = np.nan
    path = write_nifti(tmp_path / "IR.nii.gz", series, sidecar={"InversionTime": [t / 1000 for t in ti],
                                                                  "MagneticFieldStrength": 3})
    r = cli("fit", "t1-ir", "--input", path, "--out", tmp_path / "o")
    assert r.code == 0, r.err
    assert "slightly negative" in r.err and "TR is not recorded" in r.err
    got = read_image(tmp_path / "o" / "T1.nii.gz").array
    ok = np.isfinite(t1)
    # exact: a + b exp(-TI/T1) needs no TR (the start grid is 2 % apart: a frozen fit fails this)
    assert np.nanmax(np.abs(got[ok] / t1[ok] - 1)) < 1e-3
    assert not (tmp_path / "o" / "PD.nii.gz").exists()
    # a real negative in a magnitude image is still refused
    series[0, 1, 1, 1] = -5.0
    bad = write_nifti(tmp_path / "bad.nii.gz", series, sidecar={"InversionTime": [t / 1000 for t in ti]})
    r = cli("fit", "t1-ir", "--input", bad, "--out", tmp_path / "b")
    assert r.code == 2 and "negative intensities" in r.err and not (tmp_path / "b").exists()
