"""Water-fat separation that survives real scans: the global graph-cut field map, swap evidence,
the precession sign, bipolar readouts, the Dixon phase check and a network that stays physical."""
import json

import numpy as np
import pytest

from q2mri.errors import Q2MRIError
from q2mri.fitting.fatwater import _swap_suspects, fit_fatwater
from q2mri.physics import gre_complex
from q2mri.phantoms.protocols import LIVER_TE
from q2mri.phantoms.stress import liver_with_large_b0

TE = np.array(LIVER_TE)


def test_graph_cut_field_map_keeps_swaps_below_half_a_percent_with_large_b0():
    c, body, s = liver_with_large_b0()
    assert np.percentile(np.abs(c.maps["B0"][body]), 99) > 300
    visible = body & (c.maps["R2s"] < 500)          # cortical bone has no signal by the second echo
    rep = {}
    out = fit_fatwater(s, TE, 3.0, mask=body, device="cpu", spacing_mm=(5.0, 2.1, 2.1), report=rep)
    err = np.abs(out["PDFF"] - c.maps["PDFF"])
    assert float((err[visible] > 30).mean()) < 0.005
    before = fit_fatwater(s, TE, 3.0, mask=body, device="cpu", spacing_mm=(5.0, 2.1, 2.1), field_map="region-growing")
    assert float((np.abs(before["PDFF"] - c.maps["PDFF"])[visible] > 30).mean()) > 0.008    # the earlier method
    assert len(rep["graph_cut"]["energy"]) >= 2 and rep["graph_cut"]["energy"][-1] <= rep["graph_cut"]["energy"][0]


def _small(conj=False, bipolar=None):
    z, y, x = np.meshgrid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 40), np.linspace(-1, 1, 48), indexing="ij")
    body = (x / 0.9) ** 2 + (y / 0.75) ** 2 < 1
    pdff = np.where(body, np.clip(0.1 + 0.8 * (x > 0.3) + 0.2 * y, 0, 1), 0)
    b0 = 120.0 * x + 60.0 * y
    s = gre_complex((1 - pdff) * body, pdff * body, 40.0, b0, TE, 3.0)
    rng = np.random.default_rng(1)
    s = s + (rng.standard_normal(s.shape) + 1j * rng.standard_normal(s.shape)) / 200.0
    if bipolar is not None:
        theta = bipolar[0] + bipolar[1] * np.arange(48)[None, None, :]
        s = s * np.exp(1j * theta[..., None] * np.array([(-1.0) ** k for k in range(TE.size)]))
    if conj:
        s = np.conj(s)
    return body, 100 * pdff, b0, s


def test_precession_auto_recognises_conjugated_data():
    body, pdff, b0, s = _small(conj=True)
    rep = {}
    out = fit_fatwater(s, TE, 3.0, mask=body, device="cpu", report=rep)
    assert rep["precession"]["chosen"] == "counterclockwise"
    assert np.nanmean(np.abs(out["PDFF"] - pdff)[body]) < 1.5
    assert np.nanmedian(np.abs(out["B0"] + b0)[body]) < 3.0          # B0 in the sign of the data as stored
    wrong = fit_fatwater(s, TE, 3.0, mask=body, device="cpu", precession="clockwise")
    assert np.nanmean(np.abs(wrong["PDFF"] - pdff)[body]) > 2 * np.nanmean(np.abs(out["PDFF"] - pdff)[body])
    plain = {}
    fit_fatwater(_small()[3], TE, 3.0, mask=body, device="cpu", report=plain)
    assert plain["precession"]["chosen"] == "clockwise"


def test_bipolar_readout_phase_is_removed():
    body, pdff, b0, s = _small(bipolar=(0.4, 0.01))
    mono = fit_fatwater(s, TE, 3.0, mask=body, device="cpu", precession="clockwise")
    bip = fit_fatwater(s, TE, 3.0, mask=body, device="cpu", precession="clockwise", readout="bipolar", readout_axis=2)
    err_m = np.nanmean(np.abs(mono["PDFF"] - pdff)[body])
    err_b = np.nanmean(np.abs(bip["PDFF"] - pdff)[body])
    assert err_b < 2.0 and err_m > 3 * err_b


def test_swap_evidence_flags_a_region_off_by_a_fat_shift():
    z, y, x = np.meshgrid(np.arange(3), np.linspace(-1, 1, 30), np.linspace(-1, 1, 30), indexing="ij")
    mask = np.ones(x.shape, bool)
    b0 = 40.0 * x
    b0[:, 5:12, 5:12] += 434.0                    # a block that took the swapped solution
    sus = _swap_suspects(b0, mask, np.ones(x.shape), 434.0, (3.0, 2.0, 2.0))
    assert sus[:, 6:11, 6:11].all() and sus.sum() < 1.3 * 3 * 7 * 7


def test_confidence_is_the_evidence_against_the_swap_and_falls_with_noise():
    z, y, x = np.meshgrid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 40), np.linspace(-1, 1, 48), indexing="ij")
    body = (x / 0.9) ** 2 + (y / 0.75) ** 2 < 1
    pdff = np.where(body, np.clip(0.5 + 0.6 * x, 0, 1), 0)               # 0 to 100 % across
    clean = gre_complex((1 - pdff) * body, pdff * body, 40.0, 50.0 * y, TE, 3.0)
    med = {}
    for snr in (200.0, 8.0):
        rng = np.random.default_rng(2)
        s = clean + (rng.standard_normal(clean.shape) + 1j * rng.standard_normal(clean.shape)) / snr
        out = fit_fatwater(s, TE, 3.0, mask=body, device="cpu")
        med[snr] = float(np.nanmedian(out["confidence"][body]))
        assert set(np.unique(out["quality"])) <= {0, 1, 2}
    # at high SNR the swapped solution misfits clearly (1 - r / r_alt near 1); noise blurs the evidence
    assert med[200.0] > 0.9 and med[8.0] < med[200.0] - 0.2


def test_fatwater_cli_says_what_it_chose(cli, tmp_path):
    from q2mri.io.writer import write_single
    from q2mri.io.images import Geometry
    body, pdff, b0, s = _small(conj=True)
    g = Geometry((48, 40, 3), (2.0, 2.0, 5.0), (0, 0, 0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    args = []
    for i, te in enumerate(TE):
        m = write_single(tmp_path / f"m{i}.nii.gz", np.abs(s[..., i]).astype(np.float32), g, quantity="magnitude", unit="a.u.")
        p = write_single(tmp_path / f"p{i}.nii.gz", np.angle(s[..., i]).astype(np.float32), g, quantity="phase", unit="rad")
        for f in (m, p):
            f.with_name(f.name.replace(".nii.gz", ".json")).write_text(json.dumps({"EchoTime": te / 1000,
                                                                                  "MagneticFieldStrength": 3.0}))
        args += ["--input", m, "--phase", p]
    r = cli("fit", "fatwater", *args, "--out", tmp_path / "o", "--quiet")
    assert r.code == 0, r.err
    assert "precession auto: counterclockwise" in r.err
    side = json.loads((tmp_path / "o" / "PDFF.json").read_text())
    assert side["Precession"] == "counterclockwise" and "Hernando" in side["Method"]
    assert (tmp_path / "o" / "confidence.nii.gz").exists() and (tmp_path / "o" / "quality.nii.gz").exists()


@pytest.mark.parametrize("over,match", [({"field_strength_t": 1.5}, "field strength"), ({"te_ms": 9.8}, "TE")])
def test_the_network_refuses_protocols_far_from_its_training(over, match):
    from q2mri.acquisition import Acquisition
    from q2mri.models.predict import predict
    acqs = [Acquisition(flip_angle_deg=3.0, tr_ms=11.0, te_ms=1.048, field_strength_t=3.0),
            Acquisition(flip_angle_deg=3.0, tr_ms=11.0, te_ms=4.084, field_strength_t=3.0)]
    acqs = [a.with_overrides(**over) for a in acqs]
    im = np.ones((1, 16, 16), np.complex64)
    with pytest.raises(Q2MRIError, match=f"(?s){match}.*fit fatwater"):
        predict("fatwater-ipop", [im, im], acqs, device="cpu")


def test_magnitude_sides_are_blind_to_phase_and_precession():
    from q2mri.fitting.fatwater_magnitude import FAT, WATER, magnitude_sides
    te = np.array([1.744, 4.820, 7.896, 10.972])       # the ISMRM 2012 abdomen protocol, 1.5 T
    f = np.repeat([0.0, 0.1, 0.9, 1.0], 200)[:, None, None]
    rng = np.random.default_rng(2)
    s = gre_complex(1 - f, f, 30.0, rng.uniform(-200, 200, f.shape), te, 1.5)
    s = s + (rng.standard_normal(s.shape) + 1j * rng.standard_normal(s.shape)) / 200.0
    mask = np.ones(f.shape, bool)
    loose = magnitude_sides(np.abs(s), te, 1.5, mask).ravel()
    water, fat = f.ravel() < 0.5, f.ravel() > 0.5
    assert not ((loose == FAT) & water).any() and not ((loose == WATER) & fat).any()    # never the wrong side
    sure = magnitude_sides(np.abs(s), te, 1.5, mask, margin=20.0).ravel()
    assert (sure[f.ravel() == 0] == WATER).all() and (sure[f.ravel() == 1] == FAT).all()
    # conjugated data (the other precession) and any common phase: the same sides
    assert np.array_equal(magnitude_sides(np.abs(np.conj(s) * np.exp(1.3j)), te, 1.5, mask).ravel(), loose)


def test_a_water_organ_the_smoothness_would_carry_onto_the_swapped_field_stays_water():
    """Like the real liver of ISMRM 2012 case 12: a large pure-water organ inside a fat ring, its field one
    fat shift away from the ring's (a steep step at the boundary, as at an air-tissue interface). The
    smoothness prefers the swapped field there; the echo magnitudes say water (Yu et al. 2011)."""
    te = np.array([1.744, 4.820, 7.896, 10.972])
    z, y, x = np.meshgrid([0.0], np.linspace(-1, 1, 48), np.linspace(-1, 1, 56), indexing="ij")
    r = np.hypot(x / 0.95, y / 0.9)
    body, organ = r < 1, r < 0.7
    pdff = np.where(organ, 0.0, np.where(body, 0.9, 0.0))
    shift = 217.8                                       # the main fat peak at 1.5 T, Hz
    b0 = np.where(organ, -shift + 20.0 * x, 20.0 * x)
    s = gre_complex((1 - pdff) * body, pdff * body, 30.0, b0, te, 1.5)
    rng = np.random.default_rng(5)
    s = s + (rng.standard_normal(s.shape) + 1j * rng.standard_normal(s.shape)) / 300.0
    out = fit_fatwater(s, te, 1.5, mask=body, device="cpu", spacing_mm=(5.0, 2.0, 2.0))
    assert np.nanmedian(out["PDFF"][organ]) < 5.0
    assert float((out["PDFF"][organ] > 50).mean()) < 0.02
    assert np.nanmedian(out["PDFF"][body & ~organ]) > 80.0
