"""Phantoms and simulated data: physics consistency, drawn ranges, determinism, anatomy,
the papers' presets, the datasets and the simulate command."""
import json
import math

import numpy as np
import pytest
from scipy import ndimage

from q2mri import physics as P
from q2mri.io import read_image
from q2mri.phantoms import tissues as T
from q2mri.phantoms.dataset import Augment, FolderDataset, InputSpec, SimulatedSliceDataset
from q2mri.phantoms.protocols import PRESETS
from q2mri.phantoms.simulate import case_rng, make_case, simulate_dataset

SMALL = {"brain": dict(slices=4), "knee": dict(slices=6, matrix=96), "liver": dict(slices=4, matrix=96)}
PROTO = {"brain": "brain-qiu", "knee": "knee-vfa", "liver": "liver-me"}


def _erode(mask, n):
    """In-plane erosion (slices may be few and thick)."""
    st = np.zeros((3, 3, 3), bool)
    st[1] = ndimage.generate_binary_structure(2, 1)
    return ndimage.binary_erosion(mask, st, iterations=n)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("sim")
    out = {}
    for ph, kw in SMALL.items():
        for snr in (None, 100.0):
            d = root / f"{ph}-{snr}"
            simulate_dataset(ph, PROTO[ph], 2, 11, d, snr=snr, oversample=1, **kw)
            out[(ph, snr)] = d
    simulate_dataset("knee", "knee-t2star", 1, 11, root / "knee-t2s", snr=None, oversample=1, **SMALL["knee"])
    out[("knee-t2s", None)] = root / "knee-t2s"
    return out


def _maps(case_dir):
    return {p.name.split(".")[0]: read_image(p).array.astype(np.float64) for p in (case_dir / "maps").glob("*.nii.gz")}


def _side(case_dir, name):
    return json.loads((case_dir / f"{name}.json").read_text())


def _recompute(case_dir, name, m):
    """The image from the saved maps, composed here from the core physics (not the simulator)."""
    sc = _side(case_dir, name if (case_dir / f"{name}.json").exists() else f"{name}_mag")
    te = sc.get("EchoTime", 0) * 1000
    c = m["receive"]
    if name.startswith("spgr") or name.startswith("gre") or name.startswith("me_"):
        fa, tr = sc["FlipAngle"], sc["RepetitionTime"] * 1000
        e = P.spgr(m["T1"], 1.0, fa, tr, 0.0, math.inf, m["B1"])
        f = m.get("PDFF", 0 * m["PD"]) / 100
        s = P.gre_complex(m["PD"] * (1 - f) * e, m["PD"] * f * e, m["R2s"], m["B0"], np.array([te]), 3.0)[..., 0]
        if name.startswith("me_"):
            return c * s * np.exp(1j * m["phase0"])
        return c * np.abs(s)
    if name.startswith("afi"):
        a = P.afi(m["T1"], m["PD"], 45.0, 20.0, 100.0, te, np.where(m["T2s"] > 0, m["T2s"], 1), m["B1"])
        return c * a[..., 0 if name == "afi_tr1" else 1]
    if name == "mprage":
        return c * P.mprage(m["T1"], m["PD"], 9.0, 1900.0, 900.0, 7.0, 176, te, np.where(m["T2s"] > 0, m["T2s"], 1), m["B1"])
    if name == "flair":
        return c * P.flair(m["T1"], np.where(m["T2"] > 0, m["T2"], 1), m["PD"], 1800.0, 4800.0, te)
    raise AssertionError(name)


@pytest.mark.parametrize("key", [("brain", None), ("knee", None), ("liver", None), ("knee-t2s", None)])
def test_noiseless_images_are_exactly_the_maps_through_the_physics(datasets, key):
    """Images formed directly on the acquisition grid (--oversample 1); with k-space formation
    the same holds in tissue interiors (test_realism)."""
    case = datasets[key] / "case-0000"
    m = _maps(case)
    names = sorted({p.name.split(".")[0].replace("_mag", "").replace("_phase", "") for p in case.glob("*.nii.gz")})
    assert names
    for name in names:
        exp = _recompute(case, name, m)
        if np.iscomplexobj(exp):
            got = read_image(case / f"{name}_mag.nii.gz").array * np.exp(1j * read_image(case / f"{name}_phase.nii.gz").array)
        else:
            got = read_image(case / f"{name}.nii.gz").array
        scale = np.abs(exp).max()
        assert np.abs(got - exp).max() < 1e-4 * scale, name


@pytest.mark.parametrize("ph", ["brain", "knee", "liver"])
def test_noisy_images_differ_from_the_physics_by_the_stated_noise(datasets, ph):
    case = datasets[(ph, 100.0)] / "case-0000"
    m = _maps(case)
    body = m["labels"] > 0
    for p in case.glob("*.nii.gz"):
        name = p.name.split(".")[0]
        if name.endswith("_phase"):
            continue
        base = name.replace("_mag", "")
        sigma = _side(case, name)["NoiseSigma"]
        clean = np.abs(_recompute(case, base, m))
        img = read_image(p).array
        assert sigma == pytest.approx(np.median(clean[body]) / 100, rel=0.01)    # SNR 100 by its definition
        high = clean > 20 * sigma            # Rician ~ Gaussian of SD sigma at high SNR
        assert (img[high] - clean[high]).std() == pytest.approx(sigma, rel=0.05), name
        empty = clean == 0                   # no signal: Rayleigh, E[|n|^2] = 2 sigma^2
        if empty.sum() > 1000:
            assert (img[empty] ** 2).mean() == pytest.approx(2 * sigma ** 2, rel=0.05), name


def test_drawn_parameters_in_stated_ranges():
    for table, ph in ((T.BRAIN, "brain"), (T.KNEE, "knee"), (T.LIVER, "liver")):
        for seed in range(4):
            case = make_case(ph, case_rng(seed, 0), **SMALL[ph])
            for lab, vals in case.drawn["tissues"].items():
                t = table[lab]
                assert t.t1_ms[0] <= vals["T1"] <= t.t1_ms[1]
                assert t.t2_ms[0] <= vals["T2"] <= t.t2_ms[1]
                assert vals["T2s"] <= vals["T2"]
                if t.pd is None:   # coupled: 1/PD = A + B R1 with a few percent scatter
                    line = 1 / (T.PD_A + T.PD_B_S * 1000 / vals["T1"])
                    assert abs(vals["PD"] / line - 1) < 5 * T.PD_SCATTER
                elif ph != "liver" or lab != 4:
                    assert t.pd[0] <= vals["PD"] <= t.pd[1]
            # a physical transmit field at 3 T: within 0.2-1.8 of nominal everywhere in the body
            assert 0.2 <= case.maps["B1"][case.maps["PD"] > 0].min() and case.maps["B1"].max() <= 1.8
            if ph == "liver":
                assert 0 <= case.drawn["liver_pdff_pct"] <= 40 and 30 <= case.drawn["liver_r2s_per_s_3t"] <= 1200


def test_pd_and_t1_are_coupled_but_not_exactly():
    case = make_case("brain", case_rng(3, 0), slices=8)
    labs = [k for k in (1, 2, 3, 4, 5) if (case.labels == k).sum() > 50]
    r1 = np.array([np.median(1000 / case.maps["T1"][case.labels == k]) for k in labs])
    inv_pd = np.array([np.median(1 / case.maps["PD"][case.labels == k]) for k in labs])
    assert np.corrcoef(r1, inv_pd)[0, 1] > 0.95          # coupled across tissues (papers/000 A.5)
    slope, icpt = np.polyfit(r1, inv_pd, 1)
    assert slope == pytest.approx(T.PD_B_S, rel=0.35) and icpt == pytest.approx(T.PD_A, rel=0.1)
    wm = case.labels == 3
    r1w, ipw = 1000 / case.maps["T1"][wm], 1 / case.maps["PD"][wm]
    resid = ipw - np.polyval(np.polyfit(r1w, ipw, 1), r1w)
    assert resid.std() > 0.005                            # with scatter: not an exact function


def test_same_seed_same_data_different_seed_different_anatomy(tmp_path):
    a = make_case("knee", case_rng(5, 0), **SMALL["knee"])
    b = make_case("knee", case_rng(5, 0), **SMALL["knee"])
    c = make_case("knee", case_rng(6, 0), **SMALL["knee"])
    assert np.array_equal(a.labels, b.labels) and all(np.array_equal(a.maps[k], b.maps[k]) for k in a.maps)
    changed = (a.labels != c.labels).mean()
    assert changed > 0.02, "different seeds must change the shape, not only the values"
    ba = make_case("brain", case_rng(1, 0), slices=4)
    bb = make_case("brain", case_rng(2, 0), slices=4)
    assert (ba.labels != bb.labels).mean() > 0.05
    d1, d2 = tmp_path / "1", tmp_path / "2"
    simulate_dataset("liver", "liver-me", 1, 9, d1, slices=2, matrix=64)
    simulate_dataset("liver", "liver-me", 1, 9, d2, slices=2, matrix=64)
    for p in (d1 / "case-0000").glob("*.nii.gz"):
        assert np.array_equal(read_image(p).array, read_image(d2 / "case-0000" / p.name).array)


# plausible volumes (mL) of every label, per phantom and default-size case
VOLUMES_ML = {
    # knee (150 x 150 x 108 mm slab): skin ~2 mm over a ~40 cm perimeter, fascia sheets about 1 mm,
    # Hoffa's fat pad and the popliteal vessels a few mL
    "knee": {1: (40, 900), 2: (150, 1500), 3: (40, 400), 4: (5, 80), 5: (1.5, 25), 6: (0.5, 30), 7: (0.2, 10),
             8: (1, 40), 9: (0.0, 2), 10: (20, 200), 11: (5, 150), 12: (2, 40), 13: (1, 30)},
    # abdomen (160 mm slab): skin ~2 mm over a ~95 cm perimeter; gallbladder in some cases (0-150 mL)
    "liver": {1: (300, 5000), 2: (50, 3000), 3: (100, 2500), 4: (300, 3200), 5: (20, 500), 6: (10, 400),
              7: (10, 300), 8: (10, 300), 9: (2, 200), 10: (2, 60), 11: (0, 150), 12: (100, 700)},
}


@pytest.mark.parametrize("ph,kw", [("knee", dict(slices=36, matrix=128)), ("liver", dict(slices=32, matrix=90))])
def test_every_label_present_with_plausible_volume(ph, kw):
    for seed in (0, 1):
        case = make_case(ph, case_rng(seed, 0), **kw)
        vml = float(np.prod(case.geometry.spacing)) / 1000
        for lab, (lo, hi) in VOLUMES_ML[ph].items():
            v = (case.labels == lab).sum() * vml
            if (lab == 9 and ph == "knee") or (lab == 11 and ph == "liver"):   # lesions, gallbladder: some cases
                assert v <= hi
                continue
            assert lo <= v <= hi, f"{ph} {case.label_names[lab]}: {v:.1f} mL"


def test_brain_labels_and_lesions():
    seen = set()
    for seed in range(6):
        case = make_case("brain", case_rng(seed, 0), slices=24)
        if case.drawn["slab_centre_mni_mm"] < -30:      # a slab through the skull base: little cerebrum
            continue
        vml = 0.001
        vol = {lab: (case.labels == lab).sum() * vml for lab in range(1, 8)}
        assert 20 <= vol[2] <= 400 and 20 <= vol[3] <= 400 and 5 <= vol[1] <= 200   # a 24-mm slab
        seen |= {lab for lab, v in vol.items() if v > 0}
        lesion = case.labels == 6
        if lesion.any():  # lesions carry values outside normal white matter
            assert case.maps["T1"][lesion].mean() > 1000 and case.maps["T2"][lesion].mean() > 90
    assert seen >= {1, 2, 3, 5, 6}


def test_knee_anatomy_where_a_radiologist_expects_it():
    case = make_case("knee", case_rng(2, 0), slices=36, matrix=128)
    lab = case.labels
    si = lambda k: np.argwhere(lab == k)[:, 1].mean()      # axis 1 = superior-inferior (index grows superior)
    ap = lambda k: np.argwhere(lab == k)[:, 2].mean()      # axis 2 = anterior-posterior (grows anterior)
    bone = np.argwhere(lab == 3)
    assert (bone[:, 1].max() - bone[:, 1].min()) > 0.6 * lab.shape[1]   # femur above and tibia below span the FOV
    assert ap(8) > ap(5) - 5                                             # tendons (patellar, quadriceps) lie anterior
    cart_depth = np.argwhere(lab == 5)[:, 1]
    assert abs(cart_depth.mean() - lab.shape[1] / 2) < 0.2 * lab.shape[1]  # cartilage at the joint line
    assert si(7) < lab.shape[1] / 2 + 5                                    # menisci at/below the joint line
    # ultrashort T2* in the cortical rim and tendons (partial volume with marrow/muscle raises the rest)
    assert np.percentile(case.maps["T2s"][lab == 4], 25) < 3 and np.percentile(case.maps["T2s"][lab == 8], 25) < 4


def test_presets_equal_the_papers_numbers():
    te = lambda p: [i.acq.te_ms for i in PRESETS[p].images]
    v = PRESETS["knee-vfa"].images
    assert [i.acq.flip_angle_deg for i in v[:4]] == [5, 10, 20, 30]
    assert all(i.acq.tr_ms == 20 and i.acq.te_ms == 0.032 for i in v[:4])
    assert [(i.acq.flip_angle_deg, i.acq.tr_ms, i.acq.te_ms) for i in v[4:]] == [(45, 20, 0.032), (45, 100, 0.032)]
    g = PRESETS["knee-t2star"].images[1:]
    assert [i.acq.te_ms for i in g] == [0.032, 4.4, 8.8, 13.2, 17.6, 22]
    assert all(i.acq.tr_ms == 28 and i.acq.flip_angle_deg == 16 for i in g)
    assert te("liver-me") == [0.036, 1.048, 2.060, 3.072, 4.084, 5.096]
    assert all(i.acq.tr_ms == 11 and i.acq.flip_angle_deg == 3 for i in PRESETS["liver-me"].images)
    mp, gre, fl = PRESETS["brain-qiu"].images
    assert (mp.acq.tr_ms, mp.acq.ti_ms, mp.acq.te_ms, mp.acq.flip_angle_deg) == (1900, 900, 2.93, 9)
    assert (gre.acq.tr_ms, gre.acq.flip_angle_deg) == (3.0, 18)
    assert (fl.acq.tr_ms, fl.acq.ti_ms, fl.acq.te_ms) == (4800, 1800, 352)


def test_simulated_dataset_draws_protocols_within_ranges():
    spgr = PRESETS["knee-vfa"].images[2]
    ds = SimulatedSliceDataset("knee", [InputSpec(spgr, {"flip_angle_deg": (3, 35), "tr_ms": (5, 30)})],
                               ["T1", "PD", "B1"], n_cases=2, samples_per_case=6, slices=4, matrix=64,
                               augment=Augment(patch=48))
    fas = []
    for i in range(len(ds)):
        s = ds[i]
        assert s["inputs"].shape == (1, 48, 48) and s["targets"].shape == (3, 48, 48) and s["mask"].shape == (48, 48)
        fa, tr = float(s["acq"][0]), float(s["acq"][1])
        assert 3 <= fa <= 35 and 5 <= tr <= 30
        fas.append(fa)
        t1 = s["targets"][0][s["mask"]]
        assert t1.numel() == 0 or (t1.min() > 100 and t1.max() < 5000)
    assert np.std(fas) > 3                      # protocols really vary
    a, b = ds[3], ds[3]
    assert np.array_equal(a["inputs"].numpy(), b["inputs"].numpy())   # deterministic per index


def test_simulated_sample_matches_physics_of_its_own_acq():
    spgr = PRESETS["knee-vfa"].images[2]
    ds = SimulatedSliceDataset("knee", [InputSpec(spgr, {"flip_angle_deg": (3, 35)})], ["T1", "PD", "B1", "T2s", "PDFF"],
                               n_cases=1, samples_per_case=2, slices=3, matrix=48, snr=(1e9, 1e9),
                               augment=Augment(flips=False, scale=(1, 1)), normalise=False)
    s = ds[0]
    t1, pd, b1, t2s, pdff = (s["targets"][k].numpy().astype(np.float64) for k in range(5))
    case = ds.case(0)
    water = s["mask"].numpy() & (pdff == 0)
    fa, tr, te = (float(s["acq"][i]) for i in range(3))
    phys = P.spgr(t1, pd, fa, tr, te, np.where(t2s > 0, t2s, 1.0), b1)    # papers/000 A.4 with T2* decay
    ratio = s["inputs"][0].numpy()[water] / phys[water]
    # what is left is the receive sensitivity of the slice the sample came from
    assert any(np.allclose(ratio, case.receive[z][water], rtol=1e-3) for z in range(case.receive.shape[0]))


def test_spin_echo_on_the_fly():
    from q2mri import Acquisition
    from q2mri.phantoms.protocols import Image
    se = Image("se", "se", Acquisition(tr_ms=3000.0, te_ms=80.0))
    ds = SimulatedSliceDataset("brain", [InputSpec(se, {"te_ms": (20, 120)})], ["T1", "T2", "PD"], n_cases=1,
                               samples_per_case=2, slices=2, snr=(1e9, 1e9), augment=Augment(flips=False, scale=(1, 1)),
                               normalise=False)
    s = ds[1]
    t1, t2, pd = (s["targets"][k].numpy().astype(np.float64) for k in range(3))
    te = float(s["acq"][2])
    assert 20 <= te <= 120
    expected = P.spin_echo(t1, t2, pd, 3000.0, te)
    # where the signal has decayed to nothing (skull, T2 ~1 ms) float32 cannot hold the ratio
    m = s["mask"].numpy() & (expected > 0.01 * expected.max())
    ratio = s["inputs"][0].numpy()[m] / expected[m]
    case = ds.case(0)
    assert any(np.allclose(ratio, case.receive[z][m], rtol=1e-3) for z in range(case.receive.shape[0]))


@pytest.mark.parametrize("folder", ["knee-vfa", "knee-t2star", "liver-me", "brain-qiu"])
def test_bundled_sample_is_its_maps_through_the_physics_plus_noise(folder):
    from conftest import ROOT
    case = ROOT / "Resources" / "SampleData" / folder / "case-0000"
    m = _maps(case)
    body = m["labels"] > 0
    names = sorted({p.name.split(".")[0].replace("_mag", "").replace("_phase", "") for p in case.glob("*.nii.gz")})
    expected = {"knee-vfa": 6, "knee-t2star": 7, "liver-me": 6, "brain-qiu": 3}[folder]
    assert len(names) == expected
    # formed in k-space from a finer phantom: the physics holds in tissue interiors (docs/phantoms.md);
    # at edges the image mixes signals where the maps mix parameters
    interior = np.zeros(body.shape, bool)
    for k in np.unique(m["labels"]):
        if k > 0:
            interior |= _erode(m["labels"] == k, 3)
    far = ~ndimage.binary_dilation(body, np.ones((1, 25, 25), bool))
    assert far.sum() > 1000
    for name in names:
        mag = case / (f"{name}_mag.nii.gz" if (case / f"{name}_mag.nii.gz").exists() else f"{name}.nii.gz")
        sigma = json.loads(mag.with_name(mag.name.replace(".nii.gz", ".json")).read_text())["NoiseSigma"]
        clean = np.abs(_recompute(case, name, m))
        img = read_image(mag).array
        high = interior & (clean > 20 * sigma)
        assert high.sum() > 100, name
        rel = img[high] / clean[high] - 1
        te_ms = _side(case, mag.name.replace(".nii.gz", "")).get("EchoTime", 0) * 1000
        if name == "flair":
            # the inversion puts CSF near its null, where sub-voxel texture in T1 mixes signs
            assert np.median(np.abs(rel)) < 0.08, name
        elif te_ms > 3:
            # a long echo also dephases across the B0 gradient inside each voxel (test_realism):
            # the image can only lose signal against its maps, never gain it
            assert np.median(rel) < 0.01 and np.median(np.abs(rel)) < 0.15, (name, np.median(rel))
        else:
            # what remains is Gibbs ringing of nearby edges and sub-voxel fat/water mixing
            assert np.median(np.abs(rel)) < 0.03 and np.percentile(np.abs(rel), 90) < 0.08, name
        # and the noise is there: far from the body the magnitude is at least the Rician floor
        # of NoiseSigma (more where edge ringing reaches, as on a scanner without a filter)
        assert np.sqrt((img[far] ** 2).mean() / 2) > 0.9 * sigma, name


def test_folder_dataset_reads_simulate_output(datasets):
    fd = FolderDataset(datasets[("liver", 100.0)], ["me_e2_mag", "me_e2_phase", "me_e5_mag", "me_e5_phase"],
                       ["PDFF", "R2s", "B0"])
    assert len(fd) == 2 * 4
    s = fd[5]
    assert s["inputs"].shape == (4, 96, 96) and s["targets"].shape == (3, 96, 96)
    assert [round(float(v), 3) for v in s["acq"][[2, 7, 12, 17]]] == [1.048, 1.048, 4.084, 4.084]


def test_simulate_cli(cli, tmp_path):
    r = cli("simulate", "--phantom", "knee", "--cases", "2", "--seed", "3", "--protocol", "knee-vfa", "--slices", "3",
            "--matrix", "64", "--out", tmp_path / "d", "--quiet")
    assert r.code == 0, r.err
    man = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert man["protocol"] == "knee-vfa" and len(man["cases"]) == 2
    case = tmp_path / "d" / "case-0001"
    for f in ("maps/T1.nii.gz", "maps/PD.nii.gz", "maps/B1.nii.gz", "maps/PDFF.nii.gz", "maps/labels.nii.gz",
              "maps/labels.json", "spgr_fa05.nii.gz", "spgr_fa05.json", "afi_tr2.nii.gz"):
        assert (case / f).exists(), f
    assert json.loads((case / "spgr_fa30.json").read_text())["RepetitionTime"] == pytest.approx(0.02)
    names = json.loads((case / "maps" / "labels.json").read_text())["labels"]
    assert names["5"] == "cartilage"
    r = cli("simulate", "--phantom", "brain", "--cases", "1", "--seed", "1", "--protocol", "knee-vfa", "--out",
            tmp_path / "x")
    assert r.code == 2 and "knee phantom" in r.err and not (tmp_path / "x" / "manifest.json").exists()
