"""Metrics against hand-computed small examples and brute-force definitions."""
import math

import numpy as np
import pytest

from q2mri.metrics import bland_altman, ccc, ccc_bootstrap, mae, mpe, pearson, psnr, relative_l1, roi_statistics, ssim
from q2mri.metrics.agreement import bland_altman_plot


def test_simple_metrics_by_hand():
    ref = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([1.5, 2.0, 2.0, 4.0])
    assert mae(pred, ref) == pytest.approx(1.5 / 4)
    assert relative_l1(pred, ref) == pytest.approx(1.5 / 10)
    assert mpe(pred, ref) == pytest.approx(100 * (0.5 + 0 + 1 / 3 + 0) / 4)
    assert psnr(pred, ref) == pytest.approx(20 * math.log10(4 / math.sqrt((0.25 + 1) / 4)))
    assert pearson(pred, ref) == pytest.approx(np.corrcoef(pred, ref)[0, 1])
    mask = np.array([True, True, False, True])
    assert mae(pred, ref, mask) == pytest.approx(0.5 / 3)


def test_ccc_hand_example():
    # x = 1,2,3; y = 2,3,5: means 2, 10/3; pop. var 2/3, 14/9; pop. cov 1
    x, y = np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 5.0])
    expected = 2 * 1.0 / (2 / 3 + 14 / 9 + (2 - 10 / 3) ** 2)
    assert ccc(x, y) == pytest.approx(expected)
    assert ccc(x, x) == pytest.approx(1.0)
    assert ccc(x, x + 1) < 1.0


def test_ccc_clustered_bootstrap_matches_a_brute_force_loop():
    rng = np.random.default_rng(0)
    subj = np.repeat(np.arange(8), 47)                  # subjects x 47 regions (papers/002)
    truth = rng.uniform(800, 1400, subj.size)
    pred = truth + rng.normal(0, 20, subj.size) + rng.normal(0, 120, 8)[subj]
    c, lo, hi = ccc_bootstrap(pred, truth, subj, n_boot=4000)
    assert lo < c < hi
    assert c == pytest.approx(ccc(pred, truth))
    # the same statistic by an explicit loop: draw whole subjects with replacement
    loop = np.random.default_rng(99)
    reps = []
    for _ in range(4000):
        pick = loop.integers(0, 8, 8)
        idx = np.concatenate([np.flatnonzero(subj == k) for k in pick])
        reps.append(ccc(pred[idx], truth[idx]))
    blo, bhi = np.quantile(reps, [0.025, 0.975])
    assert lo == pytest.approx(blo, abs=0.02) and hi == pytest.approx(bhi, abs=0.02)
    # ignoring the clusters understates the uncertainty when subjects differ
    _, lo_ind, hi_ind = ccc_bootstrap(pred, truth, None, n_boot=4000)
    assert (hi - lo) > 1.5 * (hi_ind - lo_ind)


def test_bland_altman_hand_example(tmp_path):
    a = np.array([10.0, 12.0, 14.0, 16.0])
    b = np.array([11.0, 11.0, 15.0, 15.0])
    st = bland_altman(a, b)
    d = a - b                                          # -1, 1, -1, 1: mean 0, sd sqrt(4/3)
    assert st.bias == pytest.approx(0.0)
    assert st.sd == pytest.approx(math.sqrt(4 / 3))
    assert st.loa_upper == pytest.approx(1.96 * math.sqrt(4 / 3))
    assert st.loa_lower == pytest.approx(-1.96 * math.sqrt(4 / 3))
    assert d.size == st.n
    png = tmp_path / "ba.png"
    bland_altman_plot(a, b, png, label="T1", unit="ms")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _ssim_brute(p, r, L):
    """SSIM by explicit 11x11 Gaussian windows around every pixel (reflect padding)."""
    g = np.exp(-(np.arange(-5, 6) ** 2) / (2 * 1.5 ** 2))
    w = np.outer(g, g)
    w /= w.sum()
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    pp, rr = np.pad(p, 5, mode="symmetric"), np.pad(r, 5, mode="symmetric")
    out = np.zeros(p.shape)
    for i in range(p.shape[0]):
        for j in range(p.shape[1]):
            a, b = pp[i:i + 11, j:j + 11], rr[i:i + 11, j:j + 11]
            ma, mb = (w * a).sum(), (w * b).sum()
            va, vb = (w * a * a).sum() - ma ** 2, (w * b * b).sum() - mb ** 2
            cov = (w * a * b).sum() - ma * mb
            out[i, j] = (2 * ma * mb + c1) * (2 * cov + c2) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2))
    return out.mean()


def test_ssim_matches_brute_force_window_definition():
    rng = np.random.default_rng(1)
    r = rng.uniform(0, 1, (20, 24))
    p = r + rng.normal(0, 0.1, r.shape)
    assert ssim(p, r) == pytest.approx(_ssim_brute(p, r, r.max() - r.min()), rel=1e-6)
    assert ssim(r, r) == pytest.approx(1.0)


def test_roi_statistics_equal_numpy():
    rng = np.random.default_rng(2)
    t1 = rng.uniform(500, 1500, (3, 10, 12))
    labels = np.zeros(t1.shape, int)
    labels[:, 2:6, 3:9] = 1
    labels[1, 7:9, :] = 2
    rows = roi_statistics({"T1": t1}, labels, voxel_volume_ml=0.002, names={1: "cartilage"}, units={"T1": "ms"})
    assert [r["Segment"] for r in rows] == ["cartilage", "2"]
    v = t1[labels == 1]
    r = rows[0]
    assert r["Voxels"] == v.size and r["Volume_mL"] == pytest.approx(v.size * 0.002)
    assert r["Mean"] == pytest.approx(v.sum() / v.size)
    assert r["SD"] == pytest.approx(math.sqrt(((v - v.mean()) ** 2).sum() / (v.size - 1)))
    s = np.sort(v)
    assert r["Median"] == pytest.approx((s[v.size // 2 - 1] + s[v.size // 2]) / 2 if v.size % 2 == 0 else s[v.size // 2])
    k = 0.05 * (v.size - 1)
    assert r["P5"] == pytest.approx(s[int(k)] + (k - int(k)) * (s[int(k) + 1] - s[int(k)]))


def test_ssim_leaves_flagged_voxels_out_instead_of_returning_nan():
    from q2mri.metrics.image import ssim
    a = np.random.default_rng(0).random((3, 20, 20))
    b = a.copy()
    b[1, 5, 5] = np.nan                     # one voxel a fit flagged
    s = ssim(b, a)
    assert np.isfinite(s) and 0.99 < s < 1.0 and ssim(a, a) == pytest.approx(1.0)
