"""The physics inside the networks (models.physicsnet): smooth bounded B1, the DESPOT1 layer,
PD through the signal equation, bounded PDFF, ensemble uncertainty, the case bank, training on
it, and the calibration of the uncertainty."""
import math

import numpy as np
import pytest
import torch

from q2mri import physics as P
from q2mri.models.calibrate import K68, K95, fit_factors
from q2mri.models.physicsnet import PhysicsNet
from q2mri.models.quantnet import ModelConfig
from q2mri.models.tasks import TASKS


def _net(task, width=8, levels=4):
    t = TASKS[task]
    return PhysicsNet(ModelConfig("physics", t.channels, list(t.targets), list(t.target_scales), levels, width, t.acq_dim,
                                  extra={"task": task, "ensemble": 3, "convs": 2})).eval()


def _acq(*inputs):
    v = []
    for fa, tr, te in inputs:
        v += [fa, tr, te, 0.0, 3.0]
    return torch.tensor([v], dtype=torch.float32)


def test_b1_is_smooth_and_bounded_whatever_the_weights():
    torch.manual_seed(0)
    net = _net("spgr-t1")
    for p in net.coarse.parameters():
        torch.nn.init.normal_(p, std=3.0)        # push the B1 head hard
    x = torch.rand(2, 2, 64, 64)
    with torch.no_grad():
        mean, _ = net(x, torch.cat([_acq((20, 20, 0.03), (0, 0, 0))] * 2))
    b1 = mean[:, 2]
    assert b1.min() >= 0.4 - 1e-6 and b1.max() <= 1.6 + 1e-6
    # no voxel-level noise: neighbouring differences are small against the field's own range
    d = (b1[:, 1:, :] - b1[:, :-1, :]).abs()
    assert d.max() < 0.15 * (b1.max() - b1.min()) + 1e-6


def _spgr_pair(t1, pd, b1, fas=(5.0, 20.0), tr=20.0):
    return torch.stack([P.spgr(t1, pd, fa, tr, 0.0, math.inf, b1) for fa in fas], 0)[None].float()


def test_two_flip_angles_give_the_despot1_closed_form_with_the_predicted_b1():
    net = _net("spgr-t1")
    torch.nn.init.zeros_(net.backbone.head.weight)
    torch.nn.init.zeros_(net.backbone.head.bias)       # residual 0: T1 is the DESPOT1 layer's alone
    t1 = torch.linspace(300.0, 3000.0, 64)[None].repeat(64, 1).double()
    pd = torch.full_like(t1, 0.8)
    acq = _acq((5, 20, 0.03), (20, 20, 0.03))
    x = _spgr_pair(t1, pd, torch.ones_like(t1))
    with torch.no_grad():
        mean, _ = net(x, acq)
    assert torch.allclose(mean[0, 0].double(), t1, rtol=2e-3)          # B1 head at 1, true B1 1: exact
    assert torch.allclose(mean[0, 1].double(), pd, rtol=2e-3)          # PD through the signal equation
    # the true B1 is 0.9: the layer with B1 = 1 is biased like DESPOT1 without B1 ...
    x9 = _spgr_pair(t1, pd, torch.full_like(t1, 0.9))
    with torch.no_grad():
        biased, _ = net(x9, acq)
        torch.nn.init.constant_(net.coarse.bias[:1], math.atanh((0.9 - 1.0) / 0.6))
        right, _ = net(x9, acq)                                       # ... and exact once it predicts 0.9
    assert (biased[0, 0].double() / t1 - 1).abs().median() > 0.1
    assert torch.allclose(right[0, 0].double(), t1, rtol=5e-3)


def test_one_image_maps_resynthesize_the_input_through_the_gain():
    torch.manual_seed(1)
    net = _net("spgr-t1")
    for p in net.coarse.parameters():
        torch.nn.init.normal_(p, std=0.5)
    x = torch.rand(1, 2, 64, 64) + 0.1
    x[:, 1] = 0
    acq = _acq((20, 15, 0.03), (0, 0, 0))
    with torch.no_grad():
        feats, ctx = net.phys.features(x, acq)
        full_f, coarse_f = net.backbone.features(torch.cat([x, feats], 1), acq / net.acq_scale)
        coarse = torch.nn.functional.interpolate(net.coarse(coarse_f), size=(64, 64), mode="bicubic", align_corners=False)
        maps, _, _ = net.phys.assemble(x, acq, ctx, net.backbone.head(full_f), coarse)
    gain = torch.exp(coarse[:, 1])
    resyn = gain * P.spgr(maps["T1"], maps["PD"], 20.0, 15.0, 0.0, math.inf, maps["B1"])
    assert torch.allclose(resyn, x[:, 0], rtol=1e-4)


def test_t2star_centre_divides_out_the_t1_b1_and_fat_weightings_of_the_two_sequences():
    """The T1w UTE SPGR and the T2*w GRE echo of known voxels (through physics.spgr_water_fat):
    the closed form recovers T2* within 1 % for long-T1 muscle, fat and fatty marrow, where the
    plain echo ratio (no weighting correction) is off by more than 20 % or saturates."""
    from q2mri.models.physicsnet import _t2star_from_ratio
    t1 = torch.tensor([[[1400.0, 380.0, 370.0, 1100.0, 2400.0]]])
    pdff = torch.tensor([[[0.0, 90.0, 80.0, 5.0, 0.0]]])
    b1 = torch.tensor([[[1.0, 0.8, 1.2, 0.9, 1.1]]])
    t2s = torch.tensor([[[28.0, 34.0, 12.0, 25.0, 150.0]]])
    acq = _acq((20.0, 20.0, 0.032), (16.0, 28.0, 8.8))
    img = [P.spgr_water_fat(t1, 0.8, pdff, 1000.0 / t2s, 0.0, fa, tr, torch.tensor([te]), b1)[..., 0].abs()
           for fa, tr, te in ((20.0, 20.0, 0.032), (16.0, 28.0, 8.8))]
    x = torch.stack(img, 1)
    got = _t2star_from_ratio(x, acq, t1, b1, pdff)
    np.testing.assert_allclose(got.numpy(), t2s.numpy(), rtol=0.01)
    plain = (-8.8 / torch.log(x[:, 1] / x[:, 0]).clamp(max=-1e-3)).clamp(max=300.0)
    assert ((plain - t2s).abs() / t2s)[0, 0, :3].min() > 0.2


def test_pdff_is_bounded_for_any_input_and_weights():
    torch.manual_seed(2)
    net = _net("fatwater-ipop")
    for p in net.backbone.head.parameters():
        torch.nn.init.normal_(p, std=5.0)
    x = torch.randn(2, 4, 48, 48) * 3
    acq = torch.cat([_acq((3, 11, 1.048), (3, 11, 4.084))] * 2)
    with torch.no_grad():
        mean, sd = net(x, acq)
    pdff = mean[:, 2]
    assert pdff.min() >= 0 and pdff.max() <= 100 and torch.isfinite(sd).all()


def test_a_saturated_pdff_head_still_learns_through_its_logit():
    # A head whose sigmoid saturates on the wrong side (0 % in fat) must still get the gradient
    # back: for the cross-entropy on the logit it is (p - y) per kept voxel, by hand, where an L1
    # on the fraction gives p (1 - p) ~ 0 there (three of four bundled heads were stuck so).
    torch.manual_seed(4)
    net = _net("fatwater-ipop").train()
    x = torch.randn(1, 4, 48, 48)
    acq = _acq((3, 11, 1.048), (3, 11, 4.084))
    net(x, acq)
    logit = net.phys.logits["PDFF"]
    with torch.no_grad():
        logit.fill_(-9.0)                                   # every head stuck near 0 %
    logit.retain_grad()
    i = net.cfg.targets.index("PDFF")
    yn = torch.zeros(1, len(net.cfg.targets), 48, 48)
    yn[:, i] = 90.0 / net.scales[0, i, 0, 0]                # the truth: 90 % fat
    net._aux = {"PDFF": 100 * torch.sigmoid(logit) / net.scales[0, i, 0, 0]}
    net.aux_loss(yn, torch.ones(1, 48, 48, dtype=torch.bool)).backward()
    g = logit.grad
    kept = g != 0
    assert 0.4 < kept.float().mean() < 0.8                   # each head's bootstrap share of voxels
    p = 1 / (1 + math.exp(9.0))
    expected = (p - 0.9) / kept.sum().item()                # (p - y) / kept (head, voxel) pairs
    assert torch.allclose(g[kept], torch.tensor(expected), rtol=1e-4)


def test_ensemble_spread_enters_the_uncertainty():
    torch.manual_seed(3)
    net = _net("spgr-t1")
    x = torch.rand(1, 2, 64, 64) + 0.1
    x[:, 1] = 0
    acq = _acq((20, 15, 0.03), (0, 0, 0))
    with torch.no_grad():
        net.sd_scale.fill_(1.0)
        net.epi_scale.fill_(0.0)
        _, sd_a = net(x, acq)
        net.epi_scale.fill_(1.0)
        _, sd_b = net(x, acq)
    assert (sd_b[0, 0] >= sd_a[0, 0] - 1e-6).all() and (sd_b[0, 0] > sd_a[0, 0] + 1e-6).any()


def test_calibration_finds_the_factor_of_a_known_miscalibration():
    rng = np.random.default_rng(0)
    n = 100_000
    b_true = rng.uniform(0.5, 2.0, n)
    err = np.abs(rng.laplace(0.0, b_true))
    les = np.zeros(n, bool)
    les[:2000] = True
    c1, c2, rep = fit_factors(err, 0.5 * b_true, np.zeros(n), les)   # the head says half the truth
    b = c1 * 0.5 * b_true
    assert np.mean(err <= K68 * b) == pytest.approx(0.68, abs=0.02)
    assert np.mean(err <= K95 * b) == pytest.approx(0.95, abs=0.015)
    assert c1 == pytest.approx(2.0, rel=0.15)


def test_recalibration_records_the_factor_its_weights_carry_since_training(tmp_path):
    from safetensors.torch import load_file
    from q2mri.models.calibrate import recalibrate_on_subjects
    from q2mri.models.registry import save_model
    torch.manual_seed(5)
    net = _net("fatwater-ipop")
    folder = save_model(net, tmp_path / "fw", {"task": "fatwater-ipop", "inputs": [], "outputs": list(net.cfg.targets)})
    sd0 = net.sd_scale.detach().clone()
    small = dict(cases=1, slices=2, matrix=64)
    r1 = recalibrate_on_subjects(folder, "fatwater-ipop", **small)
    r2 = recalibrate_on_subjects(folder, "fatwater-ipop", **small)
    sd2 = load_file(str(folder / "weights.safetensors"))["sd_scale"]
    for j, k in enumerate(net.cfg.targets):
        assert r1[k]["cumulative_factor"] == pytest.approx(r1[k]["factor"])
        assert r2[k]["cumulative_factor"] == pytest.approx(r1[k]["factor"] * r2[k]["factor"])
        assert (sd2[j] / sd0[j]).item() == pytest.approx(r2[k]["cumulative_factor"], rel=1e-5)   # what the weights carry
    save_model(net, folder, {"task": "fatwater-ipop", "inputs": [], "outputs": list(net.cfg.targets)})   # as training does
    r3 = recalibrate_on_subjects(folder, "fatwater-ipop", **small)
    sd3 = load_file(str(folder / "weights.safetensors"))["sd_scale"]
    for j, k in enumerate(net.cfg.targets):
        assert r3[k]["cumulative_factor"] == pytest.approx(r3[k]["factor"])
        assert (sd3[j] / sd0[j]).item() == pytest.approx(r3[k]["cumulative_factor"], rel=1e-5)


def test_bank_samples_are_images_of_their_truth_and_training_on_them_learns(tmp_path):
    from q2mri.models.bank import BankDataset, build_bank
    from q2mri.models.train import TrainConfig, train
    for ph in ("knee", "brain"):
        build_bank(tmp_path / "bank", ph, 3, 5, slices=4, keep=2, matrix=64 if ph == "knee" else None)
    ds = BankDataset(tmp_path / "bank", TASKS["spgr-t1"], patch=48, seed=1)
    s = ds[0]
    assert s["inputs"].shape == (2, 48, 48) and s["targets"].shape == (3, 48, 48)
    fa1, tr1, te1, fa2, tr2, te2 = (float(s["acq"][i]) for i in (0, 1, 2, 5, 6, 7))
    assert tr1 == tr2 and te1 == te2 and abs(fa1 - fa2) >= 5      # one VFA series
    out = train(TrainConfig(task="spgr-t1", out=tmp_path / "m", arch="physics", levels=4, width=8, steps=40, batch=4,
                            patch=48, bank=str(tmp_path / "bank"), calibration_cases=1, checkpoint_every=1000))
    import csv
    rows = list(csv.DictReader(open(out / "loss_log.csv")))
    first = np.mean([float(r["paper_loss"]) for r in rows[:8]])
    last = np.mean([float(r["paper_loss"]) for r in rows[-8:]])
    assert last < first
    import json
    card = json.loads((out / "card.json").read_text())
    assert card["config"]["arch"] == "physics" and card["calibration"]["T1"]["aleatoric_factor"] > 0
