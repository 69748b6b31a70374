"""Prediction API and command: outputs on the input geometry, uncertainty, the
physics-consistency residual, model checksums, and bad input."""
import json
import shutil

import nibabel as nib
import numpy as np
import pytest
import torch

from q2mri.io import read_image
from q2mri.models.tasks import consistency
from q2mri.models.train import TrainConfig, train
from q2mri.phantoms.dataset import Augment, InputSpec, SimulatedSliceDataset
from q2mri.phantoms.protocols import PRESETS


def test_predict_writes_every_map_on_the_input_geometry(cli, sample, tiny_model, tmp_path):
    src = sample / "spgr_fa30.nii.gz"
    r = cli("predict", "--task", "spgr-t1", "--input", src, "--model", tiny_model, "--out", tmp_path / "p", "--quiet")
    assert r.code == 0, r.err
    ref = nib.load(src)
    for name in ("T1", "PD", "B1", "T1_sd", "PD_sd", "B1_sd", "consistency"):
        out = nib.load(tmp_path / "p" / f"{name}.nii.gz")
        assert out.shape == ref.shape
        np.testing.assert_allclose(out.affine, ref.affine, atol=1e-5)
    t1 = read_image(tmp_path / "p" / "T1.nii.gz").array
    sd = read_image(tmp_path / "p" / "T1_sd.nii.gz").array
    assert (sd[t1 != 0] > 0).all()
    side = json.loads((tmp_path / "p" / "consistency.json").read_text())
    assert side["MeanConsistency"] >= 0 and json.loads((tmp_path / "p" / "T1.json").read_text())["Units"] == "ms"


def test_consistency_is_small_for_the_true_maps_and_large_for_a_corrupted_input():
    spgr = PRESETS["knee-vfa"].images[2]
    ds = SimulatedSliceDataset("knee", [InputSpec(spgr, {"flip_angle_deg": (10, 30)}), InputSpec(spgr)],
                               ["T1", "PD", "B1"], n_cases=1, samples_per_case=4, slices=3, matrix=64,
                               snr=(200, 200), augment=Augment(flips=False, scale=(1, 1)))
    s = ds[2]
    x, a, m = s["inputs"][None], s["acq"][None], s["mask"][None]
    maps = {k: s["targets"][i][None] for i, k in enumerate(("T1", "PD", "B1"))}
    _, clean = consistency("spgr-t1", x, maps, a, m)
    bad = x.clone()
    bad[..., 20:40, 20:40] *= 1.8             # a corrupted region the maps cannot explain
    rmap, corrupted = consistency("spgr-t1", bad, maps, a, m)
    # clean: only the noise remains (the smooth receive field is fitted), far below the corruption
    assert clean.item() < 0.06 and corrupted.item() > 1.5 * clean.item()
    assert rmap[0, 25:35, 25:35][m[0, 25:35, 25:35]].mean() > 3 * rmap[0][m[0]].median()


def test_checksum_mismatch_is_a_clear_error(cli, sample, tiny_model, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    w = broken / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    r = cli("predict", "--task", "spgr-t1", "--input", sample / "spgr_fa30.nii.gz", "--model", broken,
            "--out", tmp_path / "o")
    assert r.code == 2 and "SHA256" in r.err and "Traceback" not in r.err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_predict_bad_input(cli, sample, tiny_model, tmp_path):
    src = sample / "spgr_fa30.nii.gz"
    r = cli("predict", "--task", "spgr-t1", "--input", src, "--te", "30", "--model", tiny_model, "--out", tmp_path / "a")
    assert r.code == 2 and "not shorter than TR" in r.err
    r = cli("predict", "--task", "spgr-t1", "--input", src, "--flip-angle", "50", "--model", tiny_model,
            "--out", tmp_path / "b", "--quiet")
    assert r.code == 0 and "outside the model's trained range" in r.err
    r = cli("predict", "--task", "spgr-t1", "--input", src, "--input", src, "--input", src, "--model", tiny_model,
            "--out", tmp_path / "c")
    assert r.code == 2 and "takes 1 to 2 input" in r.err
    r = cli("predict", "--task", "spgr-t1", "--input", src, "--model", tmp_path / "nomodel", "--out", tmp_path / "d")
    assert r.code == 2 and "no model" in r.err


def test_training_resumes_from_its_checkpoint(tmp_path):
    cfg = TrainConfig("spgr-t1", tmp_path / "m", steps=4, batch=2, patch=32, levels=3, width=8, cases=1, slices=2,
                      matrix=48, checkpoint_every=2)
    train(cfg)
    state = torch.load(tmp_path / "m" / "checkpoint.pt", weights_only=False)
    assert state["step"] == 4
    assert state["opt"]["param_groups"][0]["lr"] == pytest.approx(1e-3)
    cfg.steps, cfg.resume, cfg.lr = 7, True, 2e-4      # a lower-lr phase: the saved Adam state must not undo it
    train(cfg)
    state = torch.load(tmp_path / "m" / "checkpoint.pt", weights_only=False)
    assert state["step"] == 7 and state["opt"]["param_groups"][0]["lr"] == pytest.approx(2e-4)
    log = (tmp_path / "m" / "loss_log.csv").read_text().splitlines()
    assert [int(row.split(",")[0]) for row in log[1:]] == list(range(1, 8))


@pytest.mark.parametrize("task_name", ["spgr-t1", "fatwater-ipop", "brain-t1t2"])
def test_normalisation_sets_the_body_p95_to_one_and_keeps_series_ratios(task_name):
    from q2mri.models.tasks import TASKS
    from q2mri.phantoms.dataset import normalise_inputs
    t = TASKS[task_name]
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 0.3, (t.channels, 20, 24)).astype(np.float32)
    mask = rng.uniform(size=(20, 24)) > 0.3
    got = normalise_inputs(x, mask, t.normalise, t.complex_inputs)
    mag = lambda a, c: np.hypot(a[c], a[c + 1]) if t.complex_inputs else np.abs(a[c])
    assert np.percentile(mag(got, 0)[mask], 95) == pytest.approx(1.0, rel=1e-5)   # papers/001: body p95
    if t.normalise == "joint":   # ratios between the images of a physical series survive
        np.testing.assert_allclose(got[-1] / got[0], x[-1] / x[0], rtol=1e-5)
    else:
        step = 2 if t.complex_inputs else 1
        for c in range(0, t.channels, step):
            assert np.percentile(mag(got, c)[mask], 95) == pytest.approx(1.0, rel=1e-5)


def test_prediction_does_not_depend_on_the_intensity_scale(sample, tiny_model):
    from q2mri.io import read_acquisitions
    from q2mri.models.predict import predict
    vol = read_image(sample / "spgr_fa30.nii.gz")
    acq = read_acquisitions(vol)[:1]
    a = predict("spgr-t1", [vol.array[:2]], acq, model=str(tiny_model), device="cpu")
    b = predict("spgr-t1", [vol.array[:2] * 37.0], acq, model=str(tiny_model), device="cpu")
    np.testing.assert_allclose(b.maps["T1"], a.maps["T1"], rtol=1e-3, atol=1e-2)
    for k in ("T1", "PD", "B1"):        # physical maps are never negative, not even -0.0 outside the mask
        assert not np.signbit(a.maps[k]).any(), k


@pytest.mark.parametrize("task_name,phantom", [("fatwater-ipop", "liver"), ("brain-t1t2", "brain"), ("t2star", "knee")])
def test_consistency_of_every_task_is_small_for_truth_and_grows_with_corruption(task_name, phantom):
    from q2mri.models.tasks import TASKS
    t = TASKS[task_name]
    ds = SimulatedSliceDataset(phantom, t.inputs, t.targets, n_cases=1, samples_per_case=4, slices=2,
                               matrix=None if phantom == "brain" else 64, snr=(300, 300),
                               augment=Augment(flips=False, scale=(1, 1)), normalise=t.normalise)
    s = ds[1]
    x, a, m = s["inputs"][None], s["acq"][None], s["mask"][None]
    maps = {k: s["targets"][i][None] for i, k in enumerate(t.targets)}
    _, clean = consistency(task_name, x, maps, a, m)
    wrong = {k: v.clone() for k, v in maps.items()}
    key = t.targets[0]
    wrong[key] = torch.flip(wrong[key], dims=[-1])     # the first map of another (mirrored) anatomy
    _, bad = consistency(task_name, x, wrong, a, m)
    # brain-t1t2 has no B1 or PDFF output: the head's physical B1+ (+-30 % at 3 T) and the fatty scalp
    # near opposed phase at the GRE's TE leave a residual the true T1, T2, PD cannot remove
    limit = 0.15 if task_name == "brain-t1t2" else 0.06
    assert clean.item() < limit and bad.item() > 1.5 * clean.item(), (clean.item(), bad.item())


def test_spgr_resynthesis_is_the_water_fat_model_with_no_fat_and_no_decay():
    # spgr-t1's consistency skips the fat phasors; it must equal |spgr_water_fat| at PDFF = 0,
    # R2* = 0, at each slice's own FA, TR and TE, and spgr's closed form by hand at one voxel
    import math
    from q2mri import physics
    from q2mri.models.tasks import spgr_resynthesis
    g = torch.Generator().manual_seed(0)
    t1, pd = 100 + 3000 * torch.rand(3, 8, 8, generator=g), torch.rand(3, 8, 8, generator=g)
    b1 = 0.7 + 0.6 * torch.rand(3, 8, 8, generator=g)
    acq = torch.tensor([[5.0, 15.0, 0.032, 0, 3, 20.0, 15.0, 0.032, 0, 3]] * 2 + [[30.0, 8.0, 2.0, 0, 3, 0, 0, 0, 0, 0]])
    out = spgr_resynthesis({"T1": t1, "PD": pd, "B1": b1}, acq)
    for b in range(3):
        for i in range(2):
            fa, tr, te = (acq[b, 5 * i + k].reshape(1, 1, 1) for k in range(3))
            full = physics.spgr_water_fat(t1[b:b + 1], pd[b:b + 1], torch.zeros(1, 8, 8), torch.zeros(1, 8, 8),
                                          torch.zeros(1, 8, 8), fa, tr.clamp_min(1e-3), te.reshape(1), b1[b:b + 1])
            assert torch.allclose(out[b, i], full[0, ..., 0].abs(), rtol=1e-5, atol=1e-7)
    a, e = math.radians(5.0 * b1[0, 0, 0].item()), math.exp(-15.0 / t1[0, 0, 0].item())
    assert math.isclose(out[0, 0, 0, 0].item(), pd[0, 0, 0].item() * math.sin(a) * (1 - e) / (1 - math.cos(a) * e),
                        rel_tol=1e-5)


def test_scan_specific_refinement_lowers_the_physics_residual(sample, tiny_model):
    from q2mri.io import read_acquisitions
    from q2mri.models.predict import predict
    ims = [read_image(sample / f"spgr_fa{fa}.nii.gz") for fa in ("05", "30")]
    acqs = [read_acquisitions(v)[0] for v in ims]
    base = predict("spgr-t1", [v.array for v in ims], acqs, model=str(tiny_model), device="cpu")
    refined = predict("spgr-t1", [v.array for v in ims], acqs, model=str(tiny_model), device="cpu", refine_steps=25)
    assert refined.consistency < 0.9 * base.consistency
    from q2mri.errors import Q2MRIError
    with pytest.raises(Q2MRIError, match="two flip angles"):
        predict("spgr-t1", [ims[0].array], acqs[:1], model=str(tiny_model), device="cpu", refine_steps=5)


def test_training_on_a_folder_splits_by_subject(tmp_path):
    from q2mri.models.train import split_cases
    from q2mri.phantoms.simulate import simulate_dataset
    names = [f"case-{i:04d}" for i in range(10)]
    folds = [split_cases(names, 5, f, seed=3) for f in range(5)]
    held = [h for _, h in folds]
    assert sorted(sum(held, [])) == names                       # every subject held out exactly once
    assert all(set(tr).isdisjoint(h) for tr, h in folds)        # never in training and test at once
    data = simulate_dataset("knee", "knee-t2star", 3, 4, tmp_path / "d", slices=2, matrix=48)
    out = train(TrainConfig("t2star", tmp_path / "m", data=str(data), steps=3, batch=2, patch=32, levels=3, width=8,
                            folds=3, fold=1))
    card = json.loads((out / "card.json").read_text())
    held_case = card["held_out"].split("cases ")[1]
    assert held_case.startswith("case-") and card["training"]["data"] == str(data)


def test_cuda_out_of_memory_halves_the_batch_then_falls_back(monkeypatch, sample, tiny_model):
    from q2mri.io import read_acquisitions
    from q2mri.models import predict as P
    from q2mri.models.quantnet import QuantNet
    calls = []
    real = QuantNet.forward

    def flaky(self, x, acq=None):
        calls.append(x.shape[0])
        if x.shape[0] > 1:
            raise torch.cuda.OutOfMemoryError("simulated")
        return real(self, x, acq)

    monkeypatch.setattr(QuantNet, "forward", flaky)
    v = read_image(sample / "spgr_fa30.nii.gz")
    res = P.predict("spgr-t1", [v.array], read_acquisitions(v), model=str(tiny_model), device="cpu", batch=4)
    assert calls[:3] == [4, 2, 1] and res.maps["T1"].shape == v.array.shape


def test_predicted_pdff_stays_within_0_and_100_percent():
    """A fat fraction outside 0-100 % is not a number to show (the issue saw 135 %): the bundled
    fatwater-ipop, on a liver with subcutaneous fat, stays inside."""
    from q2mri.models.predict import predict
    from q2mri.models.tasks import TASKS
    from q2mri.phantoms.imaging import Readout
    from q2mri.phantoms.protocols import Protocol
    from q2mri.phantoms.simulate import case_rng, simulate_case
    imgs = tuple(s.image for s in TASKS["fatwater-ipop"].inputs)
    case, sim, _ = simulate_case("liver", Protocol("t", "liver", imgs, ""), case_rng(50021, 0), 100.0, slices=3,
                                 matrix=96, readout=Readout(2))
    pred = predict("fatwater-ipop", [s.data for s in sim], [s.image.acq for s in sim], device="cpu")
    pdff = pred.maps["PDFF"][case.maps["PD"] > 0]
    assert np.isfinite(pdff).all() and pdff.min() >= 0.0 and pdff.max() <= 100.0


@pytest.mark.parametrize("task", ["t2star", "brain-t1t2", "spgr-t1", "fatwater-ipop"])
def test_the_papers_protocols_raise_no_out_of_range_warning_and_a_moved_one_does(task):
    """The task's protocol ranges apply to the inputs they describe: the papers' own protocols
    (the UTE SPGR beside the GRE echo of t2star, the FLAIR's TI beside the MPRAGE's) are inside;
    the same protocol with one input's TE or TI far off is not."""
    import dataclasses
    from q2mri.models.predict import check_acquisitions
    from q2mri.models.tasks import TASKS
    t = TASKS[task]
    acqs = [s.image.acq for s in t.inputs]
    assert check_acquisitions(t, acqs) == []
    field = next(iter(t.ranges))
    lo, hi = t.ranges[field]
    i = next(k for k, a in enumerate(acqs) if getattr(a, field) is not None and lo <= getattr(a, field) <= hi)
    moved = list(acqs)
    moved[i] = dataclasses.replace(acqs[i], **{field: hi * 1.2})
    notes = check_acquisitions(t, moved)
    assert len(notes) == 1 and "outside the model's trained range" in notes[0]


def test_two_flip_angles_flag_voxels_they_give_no_t1_instead_of_a_clamped_number():
    """With two flip angles the T1 comes from the DESPOT1 line (papers/000 A.2): y = S/sin(a)
    against x = S/tan(a), slope E1 = exp(-TR/T1). Where noise tilts that line out of (0, 1), as in
    low-signal bone and tendon, there is no T1: those voxels are NaN with quality 2, not the
    network's clamp. The slope is written out here with the predicted B1 (a = B1 * nominal)."""
    from q2mri.models.evaluate import HELD_OUT_SEED, _protocol_images
    from q2mri.models.predict import predict
    from q2mri.phantoms.imaging import Readout
    from q2mri.phantoms.protocols import Protocol
    from q2mri.phantoms.simulate import case_rng, simulate_case
    imgs = _protocol_images("spgr-t1", [{"flip_angle_deg": 5.0, "tr_ms": 20.0}, {"flip_angle_deg": 20.0, "tr_ms": 20.0}])
    _, sim, _ = simulate_case("knee", Protocol("t", "knee", tuple(imgs), "test"), case_rng(HELD_OUT_SEED + 2, 0), 100.0,
                              slices=8, matrix=128, readout=Readout(2))
    images, acqs = [s.data for s in sim], [s.image.acq for s in sim]
    pred = predict("spgr-t1", images, acqs, device="cpu", refine_steps=0)
    q, t1, b1 = pred.maps["quality"], pred.maps["T1"], pred.maps["B1"]
    inside = q > 0
    a1, a2 = (np.radians(a.flip_angle_deg) * b1.astype(np.float64) for a in acqs)
    s1, s2 = (np.abs(im).astype(np.float64) for im in images)
    with np.errstate(divide="ignore", invalid="ignore"):
        e1 = (s2 / np.sin(a2) - s1 / np.sin(a1)) / (s2 / np.tan(a2) - s1 / np.tan(a1))
        t1_hand = -20.0 / np.log(e1)
    # no T1, or one no tissue has (shorter than TR/10, where both angles are recovered), or one beyond the
    # network's DESPOT1 layer (10 s; its T1 there would be the clamp)
    expected = inside & ~((e1 > 0) & (e1 < 1) & (t1_hand > 2.0) & (t1_hand < 10000.0))
    flagged = q == 2
    assert expected.sum() > 100, "the held-out knee should hold voxels without a T1"
    assert (flagged ^ expected).sum() <= 0.01 * expected.sum() + 5, ((flagged ^ expected).sum(), expected.sum())
    assert np.isnan(t1[flagged]).all() and np.isnan(pred.maps["PD"][flagged]).all()
    assert np.isfinite(b1[inside]).all()                     # B1 is a smooth field, valid there too
    kept = inside & ~flagged
    assert np.isfinite(t1[kept]).all() and t1[kept].max() < 8000.0   # no clamp value left as a T1
    assert any("flagged" in n for n in pred.warnings)


def test_predict_command_writes_the_quality_map_of_two_flip_angles(cli, sample, tmp_path):
    r = cli("predict", "--task", "spgr-t1", "--input", sample / "spgr_fa05.nii.gz", "--input", sample / "spgr_fa20.nii.gz",
            "--refine-steps", "0", "--out", tmp_path / "p", "--quiet")
    assert r.code == 0, r.err
    q = nib.load(tmp_path / "p" / "quality.nii.gz")
    assert q.get_data_dtype() == np.uint8
    qa = read_image(tmp_path / "p" / "quality.nii.gz").array
    t1 = read_image(tmp_path / "p" / "T1.nii.gz").array
    assert set(np.unique(qa)) <= {0, 1, 2} and (qa == 1).any()
    assert np.isnan(t1[qa == 2]).all() and np.isfinite(t1[qa == 1]).all()
    assert json.loads((tmp_path / "p" / "quality.json").read_text())["Values"]["2"].startswith("flagged")
    assert "flagged" in r.out


def test_an_unfamiliar_slice_is_said_widened_and_flagged(tmp_path):
    """models.familiarity: a slice whose maps change when it is turned by 180 degrees beyond the card's
    limit is said in one line, its SD widened by the score over the limit, and its voxels 2 in quality."""
    import json
    import shutil
    import warnings

    from q2mri.models.familiarity import turned_disagreement
    from q2mri.models.predict import predict
    from q2mri.models.registry import MODELS_DIR, load_model
    from q2mri.phantoms.dataset import normalise_inputs
    from q2mri.acquisition import Acquisition
    m = tmp_path / "spgr-t1"
    shutil.copytree(MODELS_DIR / "spgr-t1", m)
    card = json.loads((m / "card.json").read_text())
    rng = np.random.default_rng(0)
    img = (0.5 + 0.5 * rng.random((3, 40, 48))).astype(np.float32)
    acq = [Acquisition(flip_angle_deg=20.0, tr_ms=20.0, te_ms=0.032, field_strength_t=3.0)]
    mask = np.ones(img.shape, bool)
    card.pop("familiarity", None)
    (m / "card.json").write_text(json.dumps(card))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = predict("spgr-t1", [img], acq, model=str(m), device="cpu", mask=mask)
    assert plain.familiarity is None and "quality" not in plain.maps
    # the score by hand on the middle slice, then a limit at half of it: that slice must be unfamiliar
    net, _ = load_model(m)
    x = torch.from_numpy(np.stack([normalise_inputs(np.stack([img[1], 0 * img[1]]), mask[1], "joint")]))
    a = torch.tensor([[20.0, 20.0, 0.032, 0.0, 3.0, 0, 0, 0, 0, 0]])
    score = float(turned_disagreement(net.eval(), x, a, torch.from_numpy(mask[1:2]))[0])
    card["familiarity"] = {"limit": score / 2.0}
    (m / "card.json").write_text(json.dumps(card))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = predict("spgr-t1", [img], acq, model=str(m), device="cpu", mask=mask)
    said = [str(w.message) for w in caught if "unfamiliar input" in str(w.message)]
    assert len(said) == 1 and "\n" not in said[0] and said[0] in got.warnings
    assert got.familiarity[1] == pytest.approx(2.0, rel=0.05)
    far = got.familiarity > 1
    assert (got.maps["quality"][far] == 2).all() and (got.maps["quality"][~far] == 1).all()
    ratio = got.maps["T1_sd"][1] / plain.maps["T1_sd"][1]
    np.testing.assert_allclose(ratio, got.familiarity[1], rtol=1e-4)
    np.testing.assert_array_equal(got.maps["T1"], plain.maps["T1"])          # the maps themselves are kept
