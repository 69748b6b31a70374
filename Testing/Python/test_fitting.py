"""Fits: noiseless round trips through the physics, and noise behaviour against a
per-voxel scipy curve_fit on the same data."""

import numpy as np
import pytest
import torch
from scipy.optimize import curve_fit

from q2mri import physics as P
from q2mri.fitting.afi import fit_b1_afi
from q2mri.fitting.b0 import fit_b0_dual_echo
from q2mri.fitting.dixon import fit_dixon_two_point
from q2mri.fitting.fatwater import fit_fatwater
from q2mri.fitting.inversion_recovery import fit_t1_ir
from q2mri.fitting.relaxation import fit_t2, fit_t2star
from q2mri.fitting.vfa import fit_vfa

RNG = np.random.default_rng(11)
ALL = None


def ones(n):
    return np.ones(n, bool)


def rician(s, sigma, rng):
    return np.abs(s + sigma * (rng.standard_normal(s.shape) + 1j * rng.standard_normal(s.shape)))


# ---------------------------------------------------------------- noiseless round trips
def test_vfa_roundtrip_with_b1():
    n = 5000
    t1, pd, b1 = RNG.uniform(200, 4000, n), RNG.uniform(0.2, 1.0, n), RNG.uniform(0.6, 1.4, n)
    fa = np.array([5.0, 10.0, 20.0, 30.0])
    s = P.spgr(t1[:, None], pd[:, None], fa, 20.0, b1=b1[:, None])
    out = fit_vfa(s, fa, 20.0, b1=b1, mask=ones(n), dtype=torch.float64)
    assert np.abs(out["T1"] / t1 - 1).max() < 1e-3
    assert np.abs(out["PD"] / pd - 1).max() < 1e-3
    assert out["residual"].max() < 1e-6


def test_vfa_without_b1_is_biased_as_papers000_says():
    # papers/000 A.1: a 20 % B1 error gives a 44 % T1 error when B1 is ignored (T1 ~ B1^2)
    fa = np.array([5.0, 10.0, 20.0, 30.0])
    s = P.spgr(np.array([[1000.0]]), 1.0, fa, 20.0, b1=1.2)
    t1 = fit_vfa(s, fa, 20.0, mask=ones(1), dtype=torch.float64)["T1"][0]
    assert t1 / 1000.0 == pytest.approx(1.2 ** 2, abs=0.03)


NIST_T1 = np.array([1989, 1454, 984, 706, 496, 351, 247, 175, 126, 89, 63, 44, 31, 22.0])


def test_ir_roundtrip_nist_plate():
    ti = np.array([10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5000.0])
    tr = 10000.0
    s = np.abs(P.inversion_recovery(NIST_T1[:, None], 0.9, ti, tr, inversion_efficiency=0.97))
    out = fit_t1_ir(s, ti, tr, mask=ones(len(NIST_T1)))
    np.testing.assert_allclose(out["T1"], NIST_T1, rtol=1e-3)
    np.testing.assert_allclose(out["inversion_efficiency"], 0.97, rtol=1e-3)


def test_ir_roundtrip_challenge_protocol():
    # ISMRM 2020 T1 challenge: TI 50/400/1100/2500 ms, TR 2550 ms; resolves T1 >= ~100 ms
    ti, tr = np.array([50, 400, 1100, 2500.0]), 2550.0
    t1 = NIST_T1[NIST_T1 >= 120]
    s = np.abs(P.inversion_recovery(t1[:, None], 1.0, ti, tr))
    out = fit_t1_ir(s, ti, tr, mask=ones(len(t1)))
    np.testing.assert_allclose(out["T1"], t1, rtol=1e-3)


def test_t2star_and_t2_roundtrip():
    n = 4000
    t2s, s0 = RNG.uniform(1.0, 100.0, n), RNG.uniform(0.2, 1.0, n)
    te = np.array([0.032, 4.4, 8.8, 13.2, 17.6, 22.0])  # knee-t2star (papers/000 A.1)
    out = fit_t2star(P.mono_exponential(s0[:, None], t2s[:, None], te), te, mask=ones(n), dtype=torch.float64)
    assert np.abs(out["T2s"] / t2s - 1).max() < 1e-3
    assert np.abs(out["R2s"] / (1000.0 / t2s) - 1).max() < 1e-3
    t2 = RNG.uniform(20, 300, n)
    te2 = np.arange(1, 17) * 10.0
    s = P.spin_echo(1000.0, t2[:, None], s0[:, None], 3000.0, te2)
    # a multi-echo CPMG train shares the T1 factor; here it varies slightly with TE, so
    # synthesize the train as S0 exp(-TE/T2) with S0 from the first echo's T1 factor
    s = P.mono_exponential(s[:, :1] * np.exp(te2[0] / t2[:, None]), t2[:, None], te2)
    out = fit_t2(s, te2, mask=ones(n), dtype=torch.float64)
    assert np.abs(out["T2"] / t2 - 1).max() < 1e-3


def test_afi_roundtrip():
    n = 5000
    t1, b1 = RNG.uniform(300, 3000, n), RNG.uniform(0.6, 1.4, n)
    s = P.afi(t1, 1.0, 45.0, 20.0, 100.0, b1=b1)
    exact = fit_b1_afi(s[:, 0], s[:, 1], 45.0, 20.0, 100.0, t1_ms=t1, mask=ones(n))
    assert np.abs(exact["B1"] / b1 - 1).max() < 1e-3
    approx = fit_b1_afi(s[:, 0], s[:, 1], 45.0, 20.0, 100.0, mask=ones(n))
    assert np.abs(approx["B1"] / b1 - 1).max() < 0.02  # Yarnykh's TR << T1 limit


def test_b0_roundtrip():
    n = 2000
    b0 = RNG.uniform(-240, 240, n)
    s = P.gre_complex(np.ones(n), np.zeros(n), 30.0, b0, np.array([2.0, 4.0]), 3.0)
    out = fit_b0_dual_echo(s[:, 0], s[:, 1], 2.0, 4.0, mask=ones(n))
    assert np.abs(out["B0"] - b0).max() < 1e-3 * 240


def _fat_phantom(ny=40, nx=60):
    y, x = np.mgrid[0:ny, 0:nx]
    pdff = x / (nx - 1)                                   # 0 .. 100 % across
    b0 = 300.0 * (2 * y / (ny - 1) - 1) * 0.8 + 60 * np.sin(x / 9.0)   # smooth, within +-300 Hz
    r2s = 30 + 150 * (y / ny)
    phase = 0.4 + 0.3 * x / nx
    w = (1 - pdff) * np.exp(1j * phase)
    f = pdff * np.exp(1j * phase)
    return pdff * 100, b0, r2s, w[None], f[None]


LIVER_TE = np.array([0.036, 1.048, 2.060, 3.072, 4.084, 5.096])  # liver-me (papers/000 A.1)


def test_fatwater_roundtrip_noiseless():
    pdff, b0, r2s, w, f = _fat_phantom()
    s = P.gre_complex(w, f, r2s[None], b0[None], LIVER_TE, 3.0)
    out = fit_fatwater(s, LIVER_TE, 3.0, mask=np.ones(s.shape[:-1], bool), device="cpu")
    assert np.abs(out["PDFF"][0] - pdff).max() < 0.1          # 0.1 percentage point
    assert np.abs(out["B0"][0] - b0).max() < 0.1
    assert np.abs(out["R2s"][0] / r2s - 1).max() < 1e-3


def test_fatwater_no_swaps_with_noise_and_300hz_field():
    pdff, b0, r2s, w, f = _fat_phantom()
    s = P.gre_complex(w, f, r2s[None], b0[None], LIVER_TE, 3.0)
    rng = np.random.default_rng(5)
    s = s + (rng.standard_normal(s.shape) + 1j * rng.standard_normal(s.shape)) / 40.0
    out = fit_fatwater(s, LIVER_TE, 3.0, mask=np.ones(s.shape[:-1], bool), device="cpu")
    err = np.abs(out["PDFF"][0] - pdff)
    # a swap flips PDFF to 100 - PDFF and moves B0 by ~ one fat shift (434 Hz at 3 T)
    assert err.max() < 15, f"swap-like PDFF error {err.max():.1f} pp"
    assert np.abs(out["B0"][0] - b0).max() < 60
    assert np.median(err) < 2.0


def test_fatwater_t1_correction_recovers_pdff():
    fa, tr, t1w, t1f = 10.0, 11.0, 809.0, 380.0
    pdff = np.linspace(0, 0.5, 30)
    w = (1 - pdff) * P.spgr(t1w, 1.0, fa, tr)
    f = pdff * P.spgr(t1f, 1.0, fa, tr)
    s = P.gre_complex(w[None, None], f[None, None], 40.0, 20.0, LIVER_TE, 3.0)
    raw = fit_fatwater(s, LIVER_TE, 3.0, mask=np.ones(s.shape[:-1], bool), device="cpu")
    cor = fit_fatwater(s, LIVER_TE, 3.0, mask=np.ones(s.shape[:-1], bool), device="cpu",
                       t1_correction=(fa, tr, t1w, t1f))
    assert np.abs(cor["PDFF"][0, 0] - 100 * pdff).max() < 0.1
    assert np.abs(raw["PDFF"][0, 0] - 100 * pdff).max() > 2   # the T1 bias it removes


def test_dixon_two_point_exact_for_its_assumptions():
    pdff = np.linspace(0, 0.5, 26)
    op, ip = P.in_out_phase_echo_times_ms(3.0)
    s = P.gre_complex(1 - pdff, pdff, 0.0, 0.0, np.array([ip, op]), 3.0, single_peak=True)
    out = fit_dixon_two_point(np.abs(s[:, 0]), np.abs(s[:, 1]), mask=np.ones(26, bool))
    np.testing.assert_allclose(out["PDFF"], 100 * pdff, atol=1e-3)


# ---------------------------------------------------------------- noise (Rician, SNR 100)
def _curve_fit_spread(func, x, ys, p0):
    est = []
    for y in ys:
        p, _ = curve_fit(func, x, y, p0=p0, maxfev=2000)
        est.append(p)
    return np.array(est)


def test_vfa_noise_bias_and_spread_match_per_voxel_nls():
    n, t1, pd, tr = 400, 1000.0, 1.0, 20.0
    fa = np.array([5.0, 10.0, 20.0, 30.0])
    clean = P.spgr(np.full((n, 1), t1), pd, fa, tr)
    sigma = clean.max() / 100.0
    s = rician(clean, sigma, np.random.default_rng(1))
    ours = fit_vfa(s, fa, tr, mask=ones(n), dtype=torch.float64)["T1"]
    model = lambda a, p, t: P.spgr(t, p, a, tr)
    ref = _curve_fit_spread(model, fa, s, (pd, t1))[:, 1]
    assert abs(ours.mean() / t1 - 1) < 0.01
    assert abs(ours.std() / ref.std() - 1) < 0.2
    assert np.median(np.abs(ours - ref) / ref) < 1e-3  # the same minimum, voxel by voxel


def test_t2star_noise_bias_and_spread_match_per_voxel_nls():
    n, t2s = 400, 20.0
    te = np.array([0.032, 4.4, 8.8, 13.2, 17.6, 22.0])
    clean = P.mono_exponential(np.ones((n, 1)), t2s, te)
    s = rician(clean, 1.0 / 100.0, np.random.default_rng(2))
    ours = fit_t2star(s, te, mask=ones(n), dtype=torch.float64)["T2s"]
    ref = _curve_fit_spread(lambda t, s0, t2: s0 * np.exp(-t / t2), te, s, (1.0, t2s))[:, 1]
    assert abs(ours.mean() / t2s - 1) < 0.01
    assert abs(ours.std() / ref.std() - 1) < 0.2
    assert np.median(np.abs(ours - ref) / ref) < 1e-3


def test_fits_handle_volumes_and_masks():
    fa = np.array([5.0, 20.0])
    t1 = np.full((3, 4, 5), 900.0)
    s = P.spgr(t1[..., None], 1.0, fa, 15.0)
    mask = np.zeros((3, 4, 5), bool)
    mask[1, 1:3, 2:4] = True
    out = fit_vfa(s, fa, 15.0, mask=mask)
    assert out["T1"].shape == (3, 4, 5)
    assert np.all(out["T1"][~mask] == 0)
    np.testing.assert_allclose(out["T1"][mask], 900.0, rtol=1e-3)


def test_vfa_with_one_tr_per_image_round_trip():
    """MPM/MTsat protocols (Helms et al. 2008): PDw 6 deg at TR 28 ms, T1w 20 deg at TR 18 ms."""
    from q2mri.fitting.vfa import helms_closed_form
    n = 4000
    t1, pd, b1 = RNG.uniform(300, 4000, n), RNG.uniform(0.2, 1.0, n), RNG.uniform(0.7, 1.3, n)
    fa, tr = np.array([6.0, 20.0]), np.array([28.0, 18.0])
    s = P.spgr(t1[:, None], pd[:, None], fa, tr, b1=b1[:, None])
    out = fit_vfa(s, fa, list(tr), b1=b1, mask=ones(n), dtype=torch.float64)
    assert np.abs(out["T1"] / t1 - 1).max() < 1e-3
    assert np.abs(out["PD"] / pd - 1).max() < 1e-3
    # Helms' closed form by hand for two images (his eq. for R1 with the small-angle approximation)
    a = np.deg2rad(fa)[None] * b1[:, None]
    r1 = 0.5 * (s[:, 1] * a[:, 1] / tr[1] - s[:, 0] * a[:, 0] / tr[0]) / (s[:, 0] / a[:, 0] - s[:, 1] / a[:, 1])
    _, t1_cf = helms_closed_form(torch.from_numpy(s), torch.from_numpy(a), torch.from_numpy(tr))
    assert np.allclose(t1_cf.numpy(), 1.0 / r1, rtol=1e-6)
    assert np.median(np.abs(t1_cf.numpy() / t1 - 1)) < 0.1          # a start, not the answer
    # the control: one TR assumed for both images gives another T1
    wrong = fit_vfa(s, fa, 18.0, b1=b1, mask=ones(n), dtype=torch.float64)
    assert np.median(np.abs(wrong["T1"] / t1 - 1)) > 0.1
