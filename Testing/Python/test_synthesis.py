"""Contrast synthesis: each sequence equals its physics equation; missing maps are errors."""

import numpy as np
import pytest
import torch

from q2mri import Acquisition, Q2MRIError
from q2mri import physics as P
from q2mri.synthesis import synthesize

R = np.random.default_rng(4)
MAPS = {"T1": R.uniform(300, 3000, (4, 8, 8)), "PD": R.uniform(0.5, 1, (4, 8, 8)), "T2": R.uniform(30, 200, (4, 8, 8)),
        "T2s": R.uniform(10, 80, (4, 8, 8)), "B1": R.uniform(0.7, 1.3, (4, 8, 8))}


def test_spgr_synthesis_is_papers000_a4_with_b1():
    acq = Acquisition(flip_angle_deg=17.0, tr_ms=20.0)
    m = MAPS
    a = np.radians(17.0) * m["B1"]
    e1 = np.exp(-20.0 / m["T1"])
    hand = m["PD"] * np.sin(a) * (1 - e1) / (1 - np.cos(a) * e1)   # papers/000 A.4, typed here for the check
    np.testing.assert_allclose(synthesize(m, "spgr", acq), hand, rtol=1e-12)


def test_missing_b1_means_nominal():
    maps = {k: v for k, v in MAPS.items() if k != "B1"}
    acq = Acquisition(flip_angle_deg=10.0, tr_ms=15.0)
    np.testing.assert_allclose(synthesize(maps, "spgr", acq), P.spgr(maps["T1"], maps["PD"], 10.0, 15.0))


@pytest.mark.parametrize("seq,acq,expected", [
    ("gre", Acquisition(flip_angle_deg=16, tr_ms=28, te_ms=8.8),
     lambda m: P.spgr(m["T1"], m["PD"], 16, 28, 8.8, m["T2s"], m["B1"])),
    ("se", Acquisition(tr_ms=3000, te_ms=80), lambda m: P.spin_echo(m["T1"], m["T2"], m["PD"], 3000, 80)),
    ("ir", Acquisition(tr_ms=5000, ti_ms=400), lambda m: np.abs(P.inversion_recovery(m["T1"], m["PD"], 400, 5000))),
    ("flair", Acquisition(tr_ms=9000, ti_ms=2500, te_ms=120), lambda m: P.flair(m["T1"], m["T2"], m["PD"], 2500, 9000, 120)),
    ("mprage", Acquisition(flip_angle_deg=9, tr_ms=1900, ti_ms=900, te_ms=2.93, echo_spacing_ms=7, n_excitations=176),
     lambda m: P.mprage(m["T1"], m["PD"], 9, 1900, 900, 7, 176, 2.93, m["T2s"], m["B1"])),
])
def test_each_sequence_calls_its_physics(seq, acq, expected):
    np.testing.assert_allclose(synthesize(MAPS, seq, acq), expected(MAPS), rtol=1e-12)


def test_torch_maps_give_torch():
    tm = {k: torch.from_numpy(v) for k, v in MAPS.items()}
    out = synthesize(tm, "spgr", Acquisition(flip_angle_deg=5, tr_ms=20))
    assert isinstance(out, torch.Tensor)


def test_missing_map_is_named():
    with pytest.raises(Q2MRIError, match="T2"):
        synthesize({"T1": MAPS["T1"], "PD": MAPS["PD"]}, "se", Acquisition(tr_ms=3000, te_ms=80))


def test_missing_parameter_is_named():
    with pytest.raises(Q2MRIError, match="flip angle"):
        synthesize(MAPS, "spgr", Acquisition(tr_ms=20))


def test_vfa_synthesis_from_fitted_maps_matches_truth():
    """papers/000 A.4 / Table 2 in miniature: fit from 4 angles, synthesize unseen angles."""
    from q2mri.fitting.vfa import fit_vfa
    fa = np.array([5.0, 10.0, 20.0, 30.0])
    imgs = np.stack([synthesize(MAPS, "spgr", Acquisition(flip_angle_deg=a, tr_ms=20)) for a in fa], -1)
    fit = fit_vfa(imgs, fa, 20.0, b1=MAPS["B1"], mask=np.ones(MAPS["T1"].shape, bool), dtype=torch.float64)
    fit["B1"] = MAPS["B1"]
    for new in (3.0, 15.0, 45.0):
        acq = Acquisition(flip_angle_deg=new, tr_ms=20)
        np.testing.assert_allclose(synthesize(fit, "spgr", acq), synthesize(MAPS, "spgr", acq), rtol=1e-4)
