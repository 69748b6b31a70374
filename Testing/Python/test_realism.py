"""Phantoms that behave like real scans: the physical B1+ (dielectric values, the Helmholtz
solve against the Bessel solution, field-strength dependence), whole-head / knee / abdomen
anatomy, texture, k-space image formation and field-strength dependent tissue values."""
import json
import math

import numpy as np
import pytest
from scipy import ndimage
from scipy.special import jv

from q2mri import physics as P
from q2mri.io import read_image
from q2mri.phantoms import tissues as T
from q2mri.phantoms.dielectric import properties
from q2mri.phantoms.imaging import Readout, acquire, truth_case
from q2mri.phantoms.protocols import PRESETS, Protocol
from q2mri.phantoms.simulate import case_rng, make_case, simulate_images
from q2mri.phantoms.transmit import BODY_COIL, HEAD_COIL, solve_plane

# IT'IS / IFAC tabulated values at 128 MHz (both computed from Gabriel 1996's parametric model):
# (relative permittivity, conductivity S/m)
TABLE_128MHZ = {"muscle": (63.5, 0.719), "fat": (5.92, 0.0368), "grey matter": (73.5, 0.591),
                "white matter": (52.5, 0.342), "csf": (84.0, 2.14), "blood": (73.2, 1.25),
                "cortical bone": (14.7, 0.0673), "liver": (64.3, 0.51)}


def _erode(mask, n):
    """In-plane erosion (slices may be few and thick)."""
    st = np.zeros((3, 3, 3), bool)
    st[1] = ndimage.generate_binary_structure(2, 1)
    return ndimage.binary_erosion(mask, st, iterations=n)


def test_dielectric_values_match_the_tabulated_ones_at_3t():
    for kind, (eps, sig) in TABLE_128MHZ.items():
        e, s = properties(kind, 128e6 / 42.577e6)
        assert e == pytest.approx(eps, rel=0.01), kind
        assert s == pytest.approx(sig, rel=0.03), kind
    # permittivity falls and conductivity rises with frequency (Gabriel 1996)
    e15, s15 = properties("grey matter", 1.5)
    e7, s7 = properties("grey matter", 7.0)
    assert e15 > 90 and e7 < 62 and s7 > s15


@pytest.mark.parametrize("field,coil,h", [(3.0, BODY_COIL, 0.004), (7.0, HEAD_COIL, 0.002)])
def test_helmholtz_solve_reduces_to_the_bessel_solution_on_a_uniform_disc(field, coil, h):
    f = 42.577e6 * field
    n = int(np.ceil(2 * coil.shield_m / h)) + 3
    ax = (np.arange(n) - (n - 1) / 2) * h
    y, x = np.meshgrid(ax, ax, indexing="ij")
    rho = np.hypot(x, y)
    radius, eps_r, sigma = 0.09, 60.0, 0.6
    disc = rho <= radius
    b = np.abs(solve_plane(np.where(disc, eps_r, 1.0), np.where(disc, sigma, 0.0), h, f, coil))
    # k^2 = w^2 mu0 eps0 eps_r - i w mu0 sigma, written out here independently of the solver
    w = 2 * math.pi * f
    k = np.sqrt(w ** 2 * 4e-7 * math.pi * 8.8541878128e-12 * eps_r - 1j * w * 4e-7 * math.pi * sigma)
    inner = disc & (rho < radius - 2 * h)
    expected = np.abs(jv(0, k * rho[inner]))
    got = b[inner] / b[n // 2, n // 2]
    assert np.abs(got - expected).max() < 0.02
    assert expected.min() < (0.75 if field == 3.0 else 0.45)     # the check is not trivially flat


def _centre_and_temporal(b1, brain):
    """Mean B1+ within 15 mm of the brain's centre over the mean in the temporal regions
    (lateral to 40 % of the half-width, around mid-AP), averaged over slices."""
    out = []
    for z in range(brain.shape[0]):
        m = brain[z]
        if m.sum() < 1000:
            continue
        yy, xx = np.nonzero(m)
        yc, xc, hw, hl = yy.mean(), xx.mean(), np.ptp(xx) / 2, np.ptp(yy) / 2
        Y, X = np.mgrid[:m.shape[0], :m.shape[1]]
        cen = m & (np.hypot(Y - yc, X - xc) < 15)
        tem = m & (np.abs(X - xc) > 0.4 * hw) & (np.abs(Y - yc) < 0.3 * hl)
        out.append(b1[z][cen].mean() / b1[z][tem].mean())
    return float(np.mean(out))


@pytest.fixture(scope="module")
def heads():
    out = {}
    for f in (1.5, 3.0, 7.0):
        out[f] = [make_case("brain", case_rng(seed, 0), slices=4, field_t=f) for seed in (0, 1)]
    return out


def test_transmit_field_of_the_head_follows_the_field_strength(heads):
    """1.5 T nearly flat; 3 T central brightening; 7 T strong central brightening with dark
    temporal lobes. Ranges: 1.5 T within about +-10 % (Sled and Pike 1998); 3 T centre about
    20-45 % above the periphery and flip angles over about +-25 % (Cunningham et al. 2006);
    7 T centre 1.5-2 times the temporal lobes (Vaughan et al. 2001; Van de Moortele et al. 2005)."""
    for i in range(2):
        r = {}
        spread = {}
        for f in (1.5, 3.0, 7.0):
            c = heads[f][i]
            brain = (c.labels >= 1) & (c.labels <= 7)
            r[f] = _centre_and_temporal(c.maps["B1"], brain)
            b = c.maps["B1"][brain]
            spread[f] = np.percentile(b, 95) / np.percentile(b, 5)
        assert r[1.5] < 1.2 and spread[1.5] < 1.35
        assert 1.15 < r[3.0] < 1.6 and 1.3 < spread[3.0] < 2.0
        assert r[7.0] > 1.35 and spread[7.0] > 2.0 and spread[7.0] > spread[3.0] > spread[1.5]


def test_transmit_calibration_sets_the_centre_to_nominal(heads):
    for f in (1.5, 3.0, 7.0):
        for c in heads[f]:
            body = c.labels > 0
            depth = np.stack([ndimage.distance_transform_edt(p) for p in body])
            centre = body & (depth >= 0.5 * depth.max())
            assert abs(c.maps["B1"][centre].mean() - 1.0) < 0.08      # the scanner's calibration, within a few %
            assert abs(c.drawn["transmit"]["drive_amplitude"] - 1) <= 0.1


def test_abdomen_at_3t_is_far_less_uniform_than_at_1p5t():
    """Dielectric shading in the abdomen at 3 T: flip angles spread over about 50-130 % of
    nominal (Bernstein et al. 2006; Sacolick et al. 2010), against a few tens of % at 1.5 T."""
    s = {}
    for f in (1.5, 3.0):
        c = make_case("liver", case_rng(0, 0), slices=6, matrix=90, field_t=f)
        b = c.maps["B1"][c.labels > 0]
        s[f] = np.percentile(b, 95) / np.percentile(b, 5)
    assert s[3.0] > 1.5 and s[1.5] < 1.45 and s[3.0] > s[1.5] + 0.2


def test_drive_imbalance_breaks_the_left_right_symmetry():
    c = make_case("liver", case_rng(4, 0), slices=4, matrix=80)
    b = np.where(c.labels > 0, c.maps["B1"], 0.0)
    # mirror about the body's own centre line: the field is not symmetric
    x = np.nonzero(c.labels > 0)[2]
    cx = int(round(x.mean()))
    w = min(cx, b.shape[2] - cx - 1)
    left, right = b[..., cx - w:cx], b[..., cx + 1:cx + w + 1][..., ::-1]
    both = (left > 0) & (right > 0)
    assert np.abs(left[both] - right[both]).mean() > 0.02


def test_head_has_scalp_skull_marrow_in_anatomical_order():
    c = make_case("brain", case_rng(0, 0), slices=6)
    names = c.label_names
    present = {names[k] for k in np.unique(c.labels) if k}
    for word in ("scalp", "skull", "marrow"):
        assert any(word in n for n in present), word
    # along a lateral ray from the brain's centre: brain, bone, marrow, bone, then fat/skin, then air
    z = 3
    brain = (c.labels[z] >= 1) & (c.labels[z] <= 7)
    yy, xx = np.nonzero(brain)
    row = c.labels[z, int(yy.mean()), int(xx.mean()):]
    seq = [int(v) for i, v in enumerate(row) if i == 0 or v != row[i - 1]]
    first = lambda lab: seq.index(lab) if lab in seq else None
    assert first(10) is not None and first(11) is not None and first(9) is not None and first(8) is not None
    assert max(first(k) for k in (1, 2, 3) if first(k) is not None) < first(10) < first(11) < first(8)
    assert seq[-1] == 0                                           # air outside the head
    # skull (inner table + diploe + outer table) 4-9 mm, scalp (fat + skin) a few mm, at 0.5 mm pixels
    bone = np.isin(row, (10, 11)).sum() * c.geometry.spacing[0]
    assert 3.5 <= bone <= 10.0
    assert c.maps["PDFF"][c.labels == 9].mean() > 80 and c.maps["PDFF"][c.labels == 11].mean() > 30


def test_a_low_slab_reaches_the_orbits_and_the_neck():
    found = set()
    for seed in range(80):
        c = make_case("brain", case_rng(seed, 0), slices=2, oversample=1)
        if c.drawn["slab_centre_mni_mm"] < -25:
            found |= {int(k) for k in np.unique(c.labels)}
        if {13, 15, 16} <= found:
            break
    assert 13 in found and (15 in found or 16 in found), found        # eyes; vertebral marrow or cord


def test_knee_has_skin_fascia_fat_pad_and_air_all_around():
    c = make_case("knee", case_rng(1, 0), slices=12, matrix=128)
    lab = c.labels
    for k in (10, 11, 12):                                        # skin, fascia, Hoffa's fat pad
        assert (lab == k).sum() > 50, c.label_names[k]
    mid = lab[lab.shape[0] // 2]
    for row in mid:                                               # every SI row: air at both AP ends
        assert row[0] == 0 and row[-1] == 0
    # the outline is anatomical, not a straight band: its AP width changes along the leg
    width = (mid > 0).sum(1)
    assert width.max() > 1.15 * width[width > 0].min()
    # the outermost tissue is skin, fat lies under it
    first = [row[np.nonzero(row)[0][0]] for row in mid if row.any()]
    assert np.mean(np.array(first) == 10) > 0.9
    # trabecular marrow: a sub-voxel bone fraction makes marrow T2* heterogeneous and short
    t2s = c.maps["T2s"][lab == 3]
    assert np.std(t2s) / np.mean(t2s) > 0.05


def test_within_tissue_texture_is_smooth_and_a_few_percent():
    c = make_case("liver", case_rng(2, 0), slices=8, matrix=128)
    liver = _erode(c.labels == 4, 3)
    t1 = np.where(liver, c.maps["T1"], np.nan)
    rel = np.nanstd(t1) / np.nanmean(t1)
    assert 0.01 < rel < 0.08
    # spatially correlated: neighbouring voxels vary together
    a, b = t1[:, :, :-1], t1[:, :, 1:]
    ok = np.isfinite(a) & np.isfinite(b)
    assert np.corrcoef(a[ok], b[ok])[0, 1] > 0.5      # white noise would give 0


def test_direct_formation_is_the_identity():
    rng = np.random.default_rng(0)
    img = rng.standard_normal((2, 16, 12)) + 1j * rng.standard_normal((2, 16, 12))
    assert np.allclose(acquire(img, Readout(oversample=1)), img, atol=1e-6)


def test_kspace_downsampling_keeps_a_band_limited_image_exactly():
    # a smooth periodic image on the fine grid, band-limited within the coarse band, sampled at
    # the coarse pixel centres (fine (j + 0.5)/os - 0.5): k-space truncation must reproduce it
    os_, n = 2, 32
    xf = (np.arange(n * os_) + 0.5) / os_ - 0.5
    xc = np.arange(n).astype(float)
    f = lambda x: 1 + 0.3 * np.cos(2 * np.pi * 3 * x / n) + 0.2 * np.sin(2 * np.pi * 5 * x / n)
    fine = f(xf)[None, :, None] * f(xf)[None, None, :]
    coarse = acquire(fine.astype(np.complex64), Readout(oversample=os_)).real
    assert np.allclose(coarse, f(xc)[None, :, None] * f(xc)[None, None, :], atol=1e-4)


@pytest.fixture(scope="module")
def knee_kspace():
    c = make_case("knee", case_rng(3, 0), slices=6, matrix=96, oversample=2)
    prot = PRESETS["knee-vfa"]
    ro = Readout(oversample=2)
    truth = truth_case(c, ro)
    imgs = simulate_images(c, prot, None, np.random.default_rng(0), readout=ro, body=truth.body)
    return c, truth, imgs


def test_truth_maps_are_on_the_acquisition_grid_and_equal_tissue_values_inside(knee_kspace):
    c, truth, _ = knee_kspace
    assert truth.labels.shape == (6, 96, 96) and truth.geometry.spacing[0] == pytest.approx(2 * c.geometry.spacing[0])
    # the acquisition voxel is centred on its 2 x 2 fine voxels: origin moves by half a fine pixel
    assert truth.geometry.origin[2] == pytest.approx(c.geometry.origin[2] + 0.5 * c.geometry.spacing[0])
    # inside a tissue (away from edges) the resampled T1 is the fine grid's (smooth texture only)
    interior = _erode(truth.labels == 2, 4)
    fine_t1 = c.maps["T1"].reshape(6, 96, 2, 96, 2).mean((2, 4))
    assert np.median(np.abs(truth.maps["T1"][interior] / fine_t1[interior] - 1)) < 0.01


def test_kspace_images_are_their_truth_maps_through_the_physics_in_tissue_interiors(knee_kspace):
    _, truth, imgs = knee_kspace
    m = truth.maps
    # inside single tissues (each label eroded on its own); trabecular marrow mixes bone and
    # marrow below the voxel size, where signal and parameter mixing differ by design
    interior = np.zeros(truth.labels.shape, bool)
    for k in (1, 2, 6, 12):
        interior |= _erode(truth.labels == k, 3)
    for si in imgs:
        if si.image.kind != "spgr":
            continue
        a = si.image.acq
        expected = truth.receive * P.spgr(m["T1"], m["PD"], a.flip_angle_deg, a.tr_ms, a.te_ms, m["T2s"], m["B1"])
        rel = np.abs(si.data[interior] / expected[interior] - 1)
        # what remains is Gibbs ringing of nearby edges (no filter) and sub-voxel fascia: ~1 %
        assert np.median(rel) < 0.02 and np.percentile(rel, 90) < 0.08, si.image.name


def test_truncation_rings_and_a_filter_damps_the_ringing():
    # a sharp edge (a disc) on a fine grid: no filter overshoots (Gibbs), a Hann window does not
    os_, n = 4, 64
    y, x = np.mgrid[:n * os_, :n * os_]
    disc = (np.hypot(y - n * os_ / 2, x - n * os_ / 2) < n * os_ / 4).astype(np.complex64)[None]
    plain = np.abs(acquire(disc, Readout(oversample=os_)))
    hann = np.abs(acquire(disc, Readout(oversample=os_, filter="hann")))
    assert plain.max() > 1.05 and hann.max() < 1.01
    pf = np.abs(acquire(disc, Readout(oversample=os_, partial_fourier=0.625)))
    assert not np.allclose(pf, plain, atol=0.01)      # partial Fourier changes the image (zero-filled lines)


def test_gradient_echo_loses_signal_across_a_b0_gradient_in_kspace_formation():
    """Intravoxel dephasing: a voxel spanning a B0 gradient averages the phases of its parts."""
    c = make_case("knee", case_rng(3, 0), slices=2, matrix=64, oversample=2)
    ro = Readout(oversample=2)
    img = PRESETS["knee-t2star"].images[-1]                      # TE 22 ms
    c.maps["B0"] = np.zeros_like(c.maps["B0"])
    flat = simulate_images(c, Protocol("t", "knee", (img,), ""), None, np.random.default_rng(0), readout=ro)[0]
    # a linear B0 gradient of half a cycle per fine pixel at TE: pairs of fine pixels cancel
    x = np.arange(c.maps["B0"].shape[2])
    c.maps["B0"] = np.broadcast_to((x % 2) * 1000.0 / (2 * 22.0), c.maps["B0"].shape).astype(np.float32).copy()
    c.maps["B0"][c.maps["PD"] == 0] = 0
    grad = simulate_images(c, Protocol("t", "knee", (img,), ""), None, np.random.default_rng(0), readout=ro)[0]
    body = _erode(truth_case(c, ro).labels > 0, 3)
    assert grad.data[body].mean() < 0.8 * flat.data[body].mean()


def test_tissue_values_follow_the_field_strength():
    # white matter: T1 x1.45 and T2 x0.66 at 7 T, x0.80 and x1.13 at 1.5 T (Rooney 2007; Cox and Gowland 2010)
    rng = lambda: np.random.default_rng(5)
    wm = T.BRAIN[3]
    v3, v7, v15 = wm.draw(rng(), 3.0), wm.draw(rng(), 7.0), wm.draw(rng(), 1.5)
    assert v7["T1"] / v3["T1"] == pytest.approx(1.45, rel=1e-6) and v7["T2"] / v3["T2"] == pytest.approx(0.66, rel=1e-6)
    assert v15["T1"] / v3["T1"] == pytest.approx(0.80, rel=1e-6)
    # R2' = R2* - R2 grows in proportion to B0
    r2p = lambda v: 1000 / v["T2s"] - 1000 / v["T2"]
    assert r2p(v7) == pytest.approx(r2p(v3) * 7 / 3, rel=1e-6) and r2p(v15) == pytest.approx(r2p(v3) / 2, rel=1e-6)
    assert v7["PD"] == v3["PD"]                                   # water content does not depend on the field
    # liver: de Bazelaire 2004, 586 ms at 1.5 T against 809 ms at 3 T
    assert T.field_factors("liver", 1.5)[0] == pytest.approx(586 / 809, rel=0.01)


def test_b0_scales_with_the_field_for_the_same_case():
    a = make_case("liver", case_rng(6, 0), slices=4, matrix=64, field_t=1.5)
    b = make_case("liver", case_rng(6, 0), slices=4, matrix=64, field_t=3.0)
    assert np.array_equal(a.labels, b.labels)                     # same anatomy
    m = (a.labels > 0) & (np.abs(a.maps["B0"]) > 5)
    assert np.allclose(b.maps["B0"][m] / a.maps["B0"][m], 2.0, rtol=1e-3)


def test_simulate_cli_field_strength_and_readout(cli, tmp_path):
    r = cli("simulate", "--phantom", "liver", "--cases", "1", "--seed", "2", "--protocol", "liver-me", "--slices", "2",
            "--matrix", "48", "--field-strength", "7", "--kspace-filter", "hamming", "--partial-fourier", "0.75",
            "--workers", "1", "--out", tmp_path / "d", "--quiet")
    assert r.code == 0, r.err
    side = json.loads((tmp_path / "d" / "case-0000" / "me_e2_mag.json").read_text())
    assert side["MagneticFieldStrength"] == 7.0 and side["PartialFourier"] == 0.75
    assert side["Q2MRIKSpaceFilter"] == "hamming" and side["Q2MRIOversample"] == 2
    man = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert man["field_strength_t"] == 7.0 and "k-space" in man["ground_truth"]
    labels = read_image(tmp_path / "d" / "case-0000" / "maps" / "labels.nii.gz").array
    assert labels.shape == (2, 48, 48)
    r = cli("simulate", "--phantom", "liver", "--cases", "1", "--seed", "2", "--protocol", "liver-me",
            "--partial-fourier", "0.3", "--out", tmp_path / "e")
    assert r.code == 2 and "partial Fourier" in r.err and "Traceback" not in r.err


def test_parallel_workers_give_the_same_data(tmp_path):
    from q2mri.phantoms.simulate import simulate_dataset
    simulate_dataset("knee", "knee-vfa", 2, 4, tmp_path / "a", slices=2, matrix=48, workers=1)
    simulate_dataset("knee", "knee-vfa", 2, 4, tmp_path / "b", slices=2, matrix=48, workers=2)
    for p in (tmp_path / "a").rglob("*.nii.gz"):
        assert np.array_equal(read_image(p).array, read_image(tmp_path / "b" / p.relative_to(tmp_path / "a")).array)
