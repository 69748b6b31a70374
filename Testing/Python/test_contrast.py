"""Virtual contrast (papers/000 Discussion): a tissue's T1 set, or a gadolinium agent added through
the relaxivity equations, then re-synthesized; checked against the equations written out here."""
from __future__ import annotations

import json

import numpy as np
import pytest

from q2mri import physics as P
from q2mri.contrast import parse_setting, relaxivity, with_agent
from q2mri.io import read_image


def test_relaxivity_equation_by_hand():
    # gadobutrol at 3 T, r1 = 5.0 L/(mmol s) (Rohrer et al. 2005): 1/T1 = 1/1.2 s + 5.0 * 0.5 = 3.3333 /s
    out = with_agent({"T1": np.array([1200.0, 800.0]), "T2": np.array([50.0, 40.0]), "R2s": np.array([30.0, 30.0])},
                     np.array([True, False]), "gadobutrol", 0.5, 3.0)
    assert out["T1"][0] == pytest.approx(300.0) and out["T1"][1] == 800.0
    # r2 = 7.1: 1/T2 = 20 + 3.55 = 23.55 /s
    assert out["T2"][0] == pytest.approx(1000.0 / 23.55) and out["R2s"][0] == pytest.approx(33.55)
    assert relaxivity("gadoterate", 1.5) == (3.6, 4.3)
    assert relaxivity("gadobutrol", 2.25)[0] == pytest.approx(5.1)      # between the tabulated fields
    assert parse_setting("lesion:agent=gadobutrol:0.5mM").conc_mm == 0.5
    assert parse_setting("3:T1=300,T2=50").values == (("T1", 300.0), ("T2", 50.0))


def test_synth_with_an_agent_in_one_label_follows_the_equations(sample, tmp_path, cli):
    maps = sample / "maps"
    names = json.loads((maps / "labels.json").read_text())["labels"]
    muscle = int(next(k for k, v in names.items() if v == "muscle"))
    base = ["synth", "--maps", maps, "--sequence", "spgr", "--flip-angle", "20", "--tr", "20", "--te", "2"]
    r = cli(*base, "--out", tmp_path / "plain.nii.gz")
    assert r.code == 0, r.err
    r = cli(*base, "--labels", maps / "labels.nii.gz", "--set", "muscle:agent=gadoterate:1mM", "--field-strength", "1.5",
            "--out", tmp_path / "enh.nii.gz")
    assert r.code == 0, r.err
    assert "muscle: gadoterate 1 mM at 1.5 T" in r.out
    plain, enh = (read_image(tmp_path / f).array for f in ("plain.nii.gz", "enh.nii.gz"))
    lab = read_image(maps / "labels.nii.gz").array.round().astype(int)
    t1, pd, b1, t2s = (read_image(maps / f"{k}.nii.gz").array.astype(np.float64) for k in ("T1", "PD", "B1", "T2s"))
    m = lab == muscle
    # written out: 1/T1 = 1/T1_0 + r1 C with r1 = 3.6 L/(mmol s) at 1.5 T; 1/T2* = 1/T2*_0 + r2 C, r2 = 4.3
    t1_new = 1.0 / (1.0 / t1[m] + 3.6 * 1.0 / 1000.0)
    t2s_new = 1.0 / (1.0 / t2s[m] + 4.3 * 1.0 / 1000.0)
    expected = P.spgr(t1_new, pd[m], 20.0, 20.0, 2.0, t2s_new, b1[m])
    assert np.allclose(enh[m], expected, rtol=2e-3)
    assert np.array_equal(enh[~m], plain[~m])                     # elsewhere nothing changes
    assert (enh[m] > plain[m]).mean() > 0.95                       # T1 shortening enhances a T1w SPGR
    side = json.loads((tmp_path / "enh.json").read_text())
    assert side["VirtualContrast"] == ["muscle: gadoterate 1 mM at 1.5 T (r1 3.6, r2 4.3 L/mmol/s)"]


@pytest.mark.parametrize("args, message", [
    (["--set", "muscle:T1=300"], "give --labels"),
    (["--labels", "LAB", "--set", "nosuch:T1=300"], "no label named"),
    (["--labels", "LAB", "--set", "muscle:agent=gadobutrol:1mM"], "--field-strength"),
    (["--labels", "LAB", "--set", "muscle:agent=unobtainium:1mM", "--field-strength", "3"], "unknown contrast agent"),
    (["--labels", "LAB", "--set", "muscle:agent=gadobutrol:1mM", "--field-strength", "7"], "outside"),
    (["--labels", "LAB", "--set", "muscle:X1=3"], "set one of"),
])
def test_bad_settings_are_one_line(sample, tmp_path, cli, args, message):
    args = [str(sample / "maps" / "labels.nii.gz") if a == "LAB" else a for a in args]
    r = cli("synth", "--maps", sample / "maps", "--sequence", "spgr", "--flip-angle", "20", "--tr", "20", "--te", "2",
            *args, "--out", tmp_path / "x.nii.gz")
    assert r.code == 2 and message in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert not (tmp_path / "x.nii.gz").exists()
