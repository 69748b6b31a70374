"""Signal equations against hand-computed values and independent Bloch recursions."""
import math

import numpy as np
import pytest
import torch

from q2mri import physics as P


def test_spgr_hand_values():
    # T1 1000 ms, TR 20 ms, FA 20 deg, PD 1: E1 = exp(-0.02)
    e1 = math.exp(-20 / 1000)
    a = math.radians(20)
    expected = math.sin(a) * (1 - e1) / (1 - math.cos(a) * e1)
    assert P.spgr(1000.0, 1.0, 20.0, 20.0) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.0858200860, rel=1e-8)  # worked by hand
    # B1 scales the flip angle: FA 20 at B1 1.5 equals FA 30 at B1 1
    assert P.spgr(800.0, 0.7, 20.0, 15.0, b1=1.5) == pytest.approx(P.spgr(800.0, 0.7, 30.0, 15.0), rel=1e-12)
    # T2* decay at TE
    assert P.spgr(800.0, 1.0, 10.0, 20.0, 5.0, 25.0) == pytest.approx(P.spgr(800.0, 1.0, 10.0, 20.0) * math.exp(-0.2))


def test_spgr_steady_state_matches_pulse_by_pulse_bloch():
    t1, tr, fa = 900.0, 12.0, 25.0
    a = math.radians(fa)
    mz = 1.0
    for _ in range(5000):  # ideal spoiling: Mz only
        sig = mz * math.sin(a)
        mz = 1 + (mz * math.cos(a) - 1) * math.exp(-tr / t1)
    assert P.spgr(t1, 1.0, fa, tr) == pytest.approx(sig, rel=1e-9)


def test_ernst_angle_maximises_spgr():
    fa = np.linspace(1, 60, 5901)
    s = P.spgr(1000.0, 1.0, fa, 20.0)
    assert fa[np.argmax(s)] == pytest.approx(float(P.ernst_angle_deg(1000.0, 20.0)), abs=0.02)


def test_spin_echo_and_ir_hand_values():
    t1, t2, tr, te = 1000.0, 80.0, 2000.0, 40.0
    exp = (1 - 2 * math.exp(-(tr - te / 2) / t1) + math.exp(-tr / t1)) * math.exp(-te / t2)
    assert P.spin_echo(t1, t2, 1.0, tr, te) == pytest.approx(exp, rel=1e-12)
    ti = 300.0
    assert P.inversion_recovery(t1, 1.0, ti, tr) == pytest.approx(1 - 2 * math.exp(-0.3) + math.exp(-2.0), rel=1e-12)
    # null point of an ideal IR with TR >> T1 at TI = T1 ln 2
    assert abs(P.inversion_recovery(t1, 1.0, t1 * math.log(2), 1e9)) < 1e-12


def _ir_bloch(t1, ti, tr, te, spin_echo, d=1.0, cycles=60, dt=0.01):
    """Event-by-event Mz over many TR cycles: inversion, TI, 90 (Mz = 0), [180 at TE/2], recover."""
    mz = 1.0
    rec = lambda m, t: 1 + (m - 1) * math.exp(-t / t1)
    for _ in range(cycles):
        mz = -d * mz
        mz = rec(mz, ti)
        sig = mz
        m = 0.0
        if spin_echo:
            m = rec(m, te / 2)
            m = -m
            m = rec(m, tr - ti - te / 2)
        else:
            m = rec(m, tr - ti)
        mz = m
    return sig


@pytest.mark.parametrize("spin_echo", [False, True])
def test_inversion_recovery_matches_event_simulation(spin_echo):
    t1, ti, tr, te, d = 1200.0, 500.0, 2500.0, 30.0, 0.93
    got = P.inversion_recovery(t1, 1.0, ti, tr, te if spin_echo else 0.0, math.inf, d, spin_echo)
    assert got == pytest.approx(_ir_bloch(t1, ti, tr, te, spin_echo, d), rel=1e-9)


def test_flair_nulls_fluid():
    tr, te = 9000.0, 120.0
    ti = P.fluid_null_ti_ms(4000.0, tr, te)
    assert P.flair(4000.0, 2000.0, 1.0, ti, tr, te) == pytest.approx(0.0, abs=1e-12)
    s_csf = P.flair(4000.0, 2000.0, 1.0, ti, tr, te)
    s_wm = P.flair(830.0, 70.0, 0.7, ti, tr, te)
    assert s_csf < 0.02 * s_wm


def _mprage_bloch(t1, fa, tr, ti, esp, n, d=1.0, cycles=40):
    """Pulse-by-pulse MPRAGE: Mz before the centre excitation in the steady state."""
    a = math.radians(fa)
    nc = n // 2
    ta = ti - nc * esp
    tb = tr - ta - n * esp
    rec = lambda m, t: 1 + (m - 1) * math.exp(-t / t1)
    mz, centre = 1.0, None
    for _ in range(cycles):
        mz = rec(-d * mz, ta)
        for k in range(n):
            if k == nc:
                centre = mz
            mz = rec(mz * math.cos(a), esp)
        mz = rec(mz, tb)
    return abs(centre) * math.sin(a)


@pytest.mark.parametrize("t1", [800.0, 1300.0, 4000.0])
def test_mprage_closed_form_matches_pulse_by_pulse(t1):
    # papers/001 protocol: TR 1900, TI 900, FA 9; 176 excitations at 7 ms
    got = P.mprage(t1, 1.0, 9.0, 1900.0, 900.0, 7.0, 176, inversion_efficiency=0.96)
    assert got == pytest.approx(_mprage_bloch(t1, 9.0, 1900.0, 900.0, 7.0, 176, 0.96), rel=1e-9)


def test_mprage_rejects_impossible_timing():
    from q2mri.errors import Q2MRIError
    with pytest.raises(Q2MRIError, match="TI"):
        P.mprage(1000.0, 1.0, 9.0, 1900.0, 300.0, 7.0, 176)


def test_afi_matches_two_interval_recursion_and_inverts():
    t1, fa, tr1, tr2, b1 = 1100.0, 45.0, 20.0, 100.0, 1.13
    a = math.radians(fa * b1)
    mz, s = 1.0, None
    for _ in range(3000):
        s1 = mz * math.sin(a)
        mz = 1 + (mz * math.cos(a) - 1) * math.exp(-tr1 / t1)
        s2 = mz * math.sin(a)
        mz = 1 + (mz * math.cos(a) - 1) * math.exp(-tr2 / t1)
        s = (s1, s2)
    got = P.afi(t1, 1.0, fa, tr1, tr2, b1=b1)
    assert got == pytest.approx(np.array(s), rel=1e-9)
    cos_a = P.afi_cos_alpha(got[1] / got[0], tr1, tr2, t1)
    assert math.degrees(math.acos(cos_a)) / fa == pytest.approx(b1, rel=1e-9)


def test_gre_complex_hand_value_and_in_phase():
    # water only: S = W exp(-R2* t) exp(i 2 pi psi t)
    s = P.gre_complex(2.0, 0.0, 50.0, 100.0, np.array([2.0]), 3.0)
    assert s[0] == pytest.approx(2 * math.exp(-0.1) * complex(math.cos(0.4 * math.pi), math.sin(0.4 * math.pi)), rel=1e-12)
    # fat only at TE = 0 equals the summed amplitudes (= 1)
    assert P.gre_complex(0.0, 1.0, 0.0, 0.0, np.array([0.0]), 3.0)[0] == pytest.approx(1.0)
    # single-peak fat is back in phase with water after one period of the main peak
    op, ip = P.in_out_phase_echo_times_ms(3.0)
    s = P.gre_complex(0.5, 0.5, 0.0, 0.0, np.array([op, ip]), 3.0, single_peak=True)
    assert abs(s[0]) == pytest.approx(0.0, abs=1e-12) and abs(s[1]) == pytest.approx(1.0, rel=1e-12)
    assert op == pytest.approx(1000 / (2 * 3.40 * 42.577 * 3.0), rel=1e-12)


def test_fat_spectrum_values():
    f = P.fat_frequencies_hz(3.0)
    assert f[1] == pytest.approx(-3.40 * 42.577 * 3.0)
    assert sum(P.FAT_AMPLITUDES) == pytest.approx(1.0)


@pytest.mark.parametrize("fn,args", [
    (P.spgr, lambda r: (r.uniform(200, 3000, 50), r.uniform(0.1, 1, 50), r.uniform(3, 35, 50), 20.0, 2.0, r.uniform(5, 60, 50), r.uniform(0.6, 1.4, 50))),
    (P.spin_echo, lambda r: (r.uniform(200, 3000, 50), r.uniform(20, 200, 50), 1.0, 3000.0, 80.0)),
    (P.inversion_recovery, lambda r: (r.uniform(200, 3000, 50), 1.0, r.uniform(50, 2000, 50), 5000.0)),
    (P.flair, lambda r: (r.uniform(200, 4000, 50), r.uniform(20, 2000, 50), 1.0, 2500.0, 9000.0, 120.0)),
    (P.mprage, lambda r: (r.uniform(300, 4000, 50), 1.0, 9.0, 1900.0, 900.0, 7.0, 176, 2.9, r.uniform(10, 80, 50), r.uniform(0.7, 1.3, 50))),
    (P.afi, lambda r: (r.uniform(300, 3000, 50), 1.0, 45.0, 20.0, 100.0, 0.0, math.inf, r.uniform(0.6, 1.4, 50))),
    (P.gre_complex, lambda r: (r.uniform(0, 1, 50), r.uniform(0, 1, 50), r.uniform(20, 800, 50), r.uniform(-300, 300, 50), np.array([1.048, 4.084]), 3.0)),
])
def test_torch_and_numpy_agree(fn, args):
    a = args(np.random.default_rng(3))
    out_np = fn(*a)
    ta = [torch.from_numpy(x) if isinstance(x, np.ndarray) else x for x in a]
    out_t = fn(*ta)
    assert isinstance(out_np, np.ndarray) and isinstance(out_t, torch.Tensor)
    np.testing.assert_allclose(out_t.numpy(), out_np, rtol=1e-6, atol=0)
    # float32 inputs stay float32 and agree to single precision
    a32 = [x.astype(np.float32) if isinstance(x, np.ndarray) and x.dtype == np.float64 else x for x in a]
    out32 = fn(*a32)
    assert out32.dtype in (np.float32, np.complex64)
    np.testing.assert_allclose(out32, out_np, rtol=2e-4, atol=1e-6)


def test_physics_is_differentiable():
    t1 = torch.tensor([1000.0], dtype=torch.float64, requires_grad=True)
    s = P.spgr(t1, 1.0, 20.0, 20.0)
    (g,) = torch.autograd.grad(s.sum(), t1)
    h = 1e-3
    fd = (P.spgr(1000.0 + h, 1.0, 20.0, 20.0) - P.spgr(1000.0 - h, 1.0, 20.0, 20.0)) / (2 * h)
    assert g.item() == pytest.approx(fd, rel=1e-6)
