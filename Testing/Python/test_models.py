"""Networks: shapes and padding, the attention layer against its definition, conditioning,
the loss against the metrics' SSIM, and a short training run whose loss falls."""
import numpy as np
import pytest
import torch

from q2mri.metrics import ssim as ssim_numpy
from q2mri.models.layers import FiLM, SelfAttention2d
from q2mri.models.losses import laplace_nll, paper_loss, ssim_map
from q2mri.models.quantnet import ModelConfig, QuantNet


@pytest.mark.parametrize("arch", ["sacnn", "unet"])
@pytest.mark.parametrize("hw", [(32, 32), (37, 53), (17, 64)])
def test_any_size_is_padded_and_cropped(arch, hw):
    torch.manual_seed(0)
    cfg = ModelConfig(arch, 2, ["T1", "PD", "B1"], [3000.0, 1.0, 1.0], levels=3, width=8, acq_dim=10)
    net = QuantNet(cfg).eval()
    x = torch.randn(3, 2, *hw)
    mean, sd = net(x, torch.rand(3, 10))
    assert mean.shape == (3, 3, *hw) and sd.shape == (3, 3, *hw)
    assert (sd > 0).all()
    # each slice of a batch is predicted independently of the others
    one, _ = net(x[:1], torch.ones(1, 10))
    both, _ = net(x[:2], torch.ones(2, 10))
    torch.testing.assert_close(one[0], both[0], rtol=1e-4, atol=1e-4)


def test_self_attention_matches_its_definition():
    torch.manual_seed(1)
    layer = SelfAttention2d(16, reduction=4)
    with torch.no_grad():
        layer.alpha.fill_(0.7)
    x = torch.randn(2, 16, 5, 6)
    f = layer.f(x).flatten(2)                                  # (B, k, N)
    g = layer.g(x).flatten(2)
    h = layer.h(x).flatten(2)                                  # (B, C, N)
    s = torch.exp(torch.einsum("bki,bkj->bij", f, g))          # s(X_i, X_j) = exp((W_f X_i)^T (W_g X_j))
    a = s / s.sum(-1, keepdim=True)
    y = torch.einsum("bij,bcj->bci", a, h).reshape(x.shape)
    torch.testing.assert_close(layer(x), x + 0.7 * y, rtol=1e-4, atol=1e-5)


def test_chunked_attention_equals_the_whole():
    torch.manual_seed(2)
    layer = SelfAttention2d(8, reduction=4)
    with torch.no_grad():
        layer.alpha.fill_(1.0)
    x = torch.randn(1, 8, 12, 10)
    whole = layer(x)
    layer.QUERY_CHUNK = 16          # 120 tokens in 8 chunks
    torch.testing.assert_close(layer(x), whole, rtol=1e-5, atol=1e-6)


def test_film_starts_as_identity():
    film = FiLM(5, [8, 16])
    out = film(torch.randn(4, 5))
    assert all(torch.all(g == 0) and torch.all(b == 0) for g, b in out)


def test_ssim_loss_equals_the_metric():
    rng = np.random.default_rng(0)
    r = rng.uniform(0, 1, (24, 30))
    p = r + rng.normal(0, 0.1, r.shape)
    L = r.max() - r.min()
    t = ssim_map(torch.tensor(p)[None, None], torch.tensor(r)[None, None], data_range=L).mean().item()
    assert t == pytest.approx(ssim_numpy(p, r), rel=1e-6)


def test_losses_are_zero_or_minimal_at_the_truth():
    y = torch.rand(2, 3, 16, 16)
    assert paper_loss(y, y).item() == pytest.approx(0.0, abs=1e-6)
    # the Laplace NLL is minimised at b = |y - mu|
    mu = y + 0.2
    nll = [laplace_nll(mu, torch.full_like(y, b), y).item() for b in (0.1, 0.2, 0.4)]
    assert nll[1] < nll[0] and nll[1] < nll[2]


def test_a_short_training_run_lowers_the_loss():
    from q2mri.phantoms.dataset import Augment, InputSpec, SimulatedSliceDataset
    from q2mri.phantoms.protocols import PRESETS
    torch.manual_seed(0)
    spgr = PRESETS["knee-vfa"].images[2]
    ds = SimulatedSliceDataset("knee", [InputSpec(spgr, {"flip_angle_deg": (10, 30)})], ["T1", "PD"], n_cases=1,
                               samples_per_case=8, slices=4, matrix=48, augment=Augment(patch=32))
    cfg = ModelConfig("sacnn", 1, ["T1", "PD"], [3000.0, 1.0], levels=3, width=8, acq_dim=5)
    net = QuantNet(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.89, 0.89), eps=1e-8)   # papers/000
    batch = [ds[i] for i in range(8)]
    x = torch.stack([b["inputs"] for b in batch])
    a = torch.stack([b["acq"] for b in batch])
    y = torch.stack([b["targets"] for b in batch]) / net.scales
    m = torch.stack([b["mask"] for b in batch])
    losses = []
    for _ in range(40):
        mean, b = net.forward_normalised(x, a)
        loss = paper_loss(mean, y, m) + 0.1 * laplace_nll(mean, b, y, m)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


def test_targets_follow_the_issue_thresholds():
    from q2mri.models.targets import check, meets_all
    t = {"corr": 0.995, "l1": 0.04, "ssim": 0.93, "mae": 30.0, "mpe": 1.0, "coverage68": 0.7, "coverage95": 0.95,
         "lesion": {"mae": 50.0, "relative_sd_ratio": 1.3}}
    two = {"targets": {"T1": dict(t, l1=0.03, lesion={"mae": 1.0}), "B1": dict(t, corr=0.96)},
           "despot1_no_b1_T1": {"l1": 0.08, "corr": 0.95}}
    good = {"FA 20 deg (papers/000)": {"targets": {"T1": t, "B1": dict(t, corr=0.96)}, "T1_error_slope_per_0.1_B1": 0.015},
            "FA 17 deg (unseen)": {"targets": {"T1": dict(t, corr=0.99, l1=0.043, ssim=0.92)}},
            "FA 30 deg (papers/000 A.4 input)": {"targets": {"T1": t}, "resynthesis": {"r_5": 0.98, "r_10": 0.99}},
            "two flip angles 5 + 20 deg": two, "two flip angles 3 + 20 deg, TR 15 ms": two}
    assert meets_all("spgr-t1", good)
    bad = {**good, "FA 17 deg (unseen)": {"targets": {"T1": dict(t, l1=0.046)}}}   # > 1.1 x 0.04
    assert not meets_all("spgr-t1", bad)
    m20 = good["FA 20 deg (papers/000)"]
    assert not meets_all("spgr-t1", {**good, "FA 20 deg (papers/000)": {**m20, "T1_error_slope_per_0.1_B1": -0.021}})
    assert not meets_all("spgr-t1", {**good, "FA 20 deg (papers/000)": {**m20, "targets": {
        "T1": t, "B1": dict(t, corr=0.94)}}})                                            # B1 r >= 0.95
    assert not meets_all("spgr-t1", {**good, "two flip angles 3 + 20 deg, TR 15 ms": {
        **two, "despot1_no_b1_T1": {"l1": 0.02, "corr": 0.999}}})                        # never worse than DESPOT1
    assert not meets_all("spgr-t1", {**good, "FA 20 deg (papers/000)": {**m20, "targets": {
        "T1": dict(t, coverage68=0.85), "B1": dict(t, corr=0.96)}}})                     # 1-SD coverage 0.60-0.75
    assert not meets_all("spgr-t1", {**good, "FA 20 deg (papers/000)": {**m20, "targets": {
        "T1": dict(t, lesion={"mae": 50.0, "relative_sd_ratio": 1.1}), "B1": dict(t, corr=0.96)}}})  # lesion SD >= 1.2
    assert not meets_all("spgr-t1", {**good, "FA 30 deg (papers/000 A.4 input)": {
        "targets": {"T1": t}, "resynthesis": {"r_5": 0.96}}})                             # re-synthesis r >= 0.97
    brain = {"MPRAGE + GRE + FLAIR (papers/001)": {
        "targets": {"T1": dict(t, mae=49.0), "T2": dict(t, mae=4.9)},
        "bland_altman_roi_means": {"T1": {"bias_pct": 0.9, "loa_pct": [-4.9, 4.0]},
                                   "T2": {"bias_pct": -1.5, "loa_pct": [-9.0, 10.5]}}}}
    rows = {r[0]: r[3] for r in check("brain-t1t2", brain)}
    assert rows["T1 MAE without CSF (ms)"] and rows["T2 MAE without CSF (ms)"]
    assert rows["T1 Bland-Altman bias, GM/WM/putamen/thalamus means (%)"]
    assert not rows["T2 Bland-Altman bias, GM/WM/putamen/thalamus means (%)"]
    fw = {"x": {"targets": {"PDFF": dict(t, mae=1.4), "B0": {"mae": 3.0}}, "R2s_mae_by_range": {"below 200 1/s": 10.5}}}
    assert not meets_all("fatwater-ipop", fw)
