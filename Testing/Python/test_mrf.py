"""MR fingerprinting (papers/002 route): the EPG simulator against a Bloch simulation of isochromats,
dictionary matching within the grid step with and without noise, and the command line round trip
maps -> synthesized series -> matched maps."""
from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from q2mri.io import read_image
from q2mri.mrf import build_dictionary, default_schedule, log_grid, match, simulate
from q2mri.physics.epg import fisp_epg, fisp_isochromats

STEP = 0.05


@pytest.fixture(scope="module")
def schedule():
    return default_schedule(150, seed=1)


@pytest.fixture(scope="module")
def dictionary(schedule):
    return build_dictionary(schedule, log_grid(100, 4000, STEP), log_grid(10, 2000, STEP), rank=15)


@pytest.mark.parametrize("t1, t2, b1, inversion", [(1000, 80, 1.0, None), (400, 40, 0.8, 20.0),
                                                   (2500, 300, 1.15, 20.0), (1400, 1200, 1.0, 50.0)])
def test_epg_agrees_with_a_bloch_simulation_of_isochromats(schedule, t1, t2, b1, inversion):
    e = fisp_epg([t1], [t2], schedule.flip_deg, schedule.tr_ms, 2.0, [b1], inversion)[0].numpy()
    b = fisp_isochromats(t1, t2, schedule.flip_deg, schedule.tr_ms, 2.0, b1, inversion, n_iso=2 * len(schedule.flip_deg)).numpy()
    assert np.abs(e - b).max() < 1e-4 * np.abs(b).max()
    assert np.abs(b).max() > 0.05                              # a real signal, not two zeros


def _steps(est, ref):
    return np.abs(np.log(est / ref)) / np.log1p(STEP)


def test_matching_recovers_t1_t2_within_the_dictionary_step(dictionary, schedule):
    rng = np.random.default_rng(0)
    # on the grid: the very atom, and PD exactly
    pick = rng.choice(len(dictionary.params), 200, replace=False)
    p = dictionary.params[pick]
    pd = rng.uniform(0.5, 1.5, len(pick))
    res = match(dictionary, simulate(schedule, p[:, 0], p[:, 1]) * pd[:, None])
    assert np.array_equal(res["T1"], p[:, 0].astype(np.float32)) and np.array_equal(res["T2"], p[:, 1].astype(np.float32))
    assert np.allclose(res["PD"], pd, rtol=1e-3) and res["match"].min() > 0.9999
    # off the grid: the best atom in signal space is the neighbouring grid point for nearly all;
    # where T1 and T2 trade off along the grid's diagonal it may be a step or two further
    n = 300
    t1 = np.exp(rng.uniform(np.log(200), np.log(3000), n))
    t2 = np.minimum(np.exp(rng.uniform(np.log(20), np.log(500), n)), 0.8 * t1)
    pd = rng.uniform(0.5, 1.5, n)
    sig = simulate(schedule, t1, t2) * pd[:, None]
    res = match(dictionary, sig)
    assert np.mean(_steps(res["T1"], t1) <= 1.01) > 0.95 and np.mean(_steps(res["T2"], t2) <= 1.01) > 0.9
    assert _steps(res["T1"], t1).max() <= 4 and _steps(res["T2"], t2).max() <= 4     # 150 TRs encode long T2 weakly
    assert np.allclose(res["PD"], pd, rtol=0.05)
    # with complex noise at SNR 30 per time point of the mean signal: most within two steps
    sigma = np.abs(sig).mean() / 30
    noisy = sig + sigma * (rng.normal(size=sig.shape) + 1j * rng.normal(size=sig.shape)) / np.sqrt(2)
    res = match(dictionary, noisy.astype(np.complex64))
    assert np.mean(_steps(res["T1"], t1) <= 2.02) > 0.9 and np.mean(_steps(res["T2"], t2) <= 2.02) > 0.8


def test_cli_round_trip_maps_to_series_to_maps(tmp_path, cli, schedule):
    rng = np.random.default_rng(2)
    shape = (2, 8, 10)
    t1 = np.exp(rng.uniform(np.log(300), np.log(2500), shape)).astype(np.float32)
    t2 = np.minimum(np.exp(rng.uniform(np.log(30), np.log(300), shape)), 0.5 * t1).astype(np.float32)
    pd = rng.uniform(0.4, 1.0, shape).astype(np.float32)
    maps = tmp_path / "maps"
    maps.mkdir()
    for name, a in (("T1", t1), ("T2", t2), ("PD", pd)):
        img = sitk.GetImageFromArray(a)
        img.SetSpacing((1.0, 1.0, 3.0))
        sitk.WriteImage(img, str(maps / f"{name}.nii.gz"))
    sched = tmp_path / "schedule.json"
    sched.write_text(json.dumps({"flip_deg": [float(x) for x in schedule.flip_deg],
                                 "tr_ms": [float(x) for x in schedule.tr_ms], "te_ms": 2.0, "inversion_ti_ms": 20.0}))
    r = cli("mrf", "dictionary", "--schedule", sched, "--t1-range", "100,4000", "--t2-range", "10,2000",
            "--out", tmp_path / "dict.npz")
    assert r.code == 0, r.err
    r = cli("mrf", "synth", "--maps", maps, "--schedule", sched, "--out", tmp_path / "mrf.nii.gz")
    assert r.code == 0, r.err
    series = read_image(tmp_path / "mrf.nii.gz")
    assert series.array.shape == (len(schedule.flip_deg),) + shape
    r = cli("mrf", "match", "--input", tmp_path / "mrf.nii.gz", "--dictionary", tmp_path / "dict.npz",
            "--out", tmp_path / "out")
    assert r.code == 0, r.err
    got = {k: read_image(tmp_path / "out" / f"{k}.nii.gz").array for k in ("T1", "T2", "PD")}
    assert np.mean(_steps(got["T1"], t1) <= 1.01) > 0.95 and np.mean(_steps(got["T2"], t2) <= 1.01) > 0.9
    assert _steps(got["T1"], t1).max() <= 3 and _steps(got["T2"], t2).max() <= 3
    assert np.allclose(got["PD"], pd, rtol=0.05)
    # a series of another length than the dictionary's schedule is refused in one line
    short = sitk.JoinSeries([sitk.GetImageFromArray(t1) for _ in range(20)])
    sitk.WriteImage(short, str(tmp_path / "short.nii.gz"))
    r = cli("mrf", "match", "--input", tmp_path / "short.nii.gz", "--dictionary", tmp_path / "dict.npz",
            "--out", tmp_path / "bad")
    assert r.code == 2 and "time points" in r.err and not (tmp_path / "bad").exists()
