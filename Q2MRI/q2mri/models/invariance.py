"""Does a network answer from the tissue? The same simulated case, changed only in ways that
leave the tissue alone (phantoms.variants), must give the same maps (issue [generalize]).

    rows = invariance(task)          # one row per variant against the reference prediction

Variants: the field of view's content (a skull-stripped brain, eroded or grown by 3 mm, a slab of
half the field of view), the image's scale (x0.01, x100), in-plane flips and quarter turns,
resolution (k-space truncated to 2 mm), SNR (20 and 200 against the reference's 100) and a
surface coil's receive field (3x brighter at one edge). Each row holds, for the task's primary
map, the median per tissue of the reference and of the variant over the voxels both cover, their
largest difference (relative; for PDFF in percentage points over 100), the voxel correlation, and
the 1-SD coverage of the truth by the variant's own SD.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..phantoms.imaging import Readout
from ..phantoms.protocols import Protocol
from ..phantoms.simulate import case_rng, simulate_case
from ..phantoms.variants import INTRACRANIAL, brain_mask, crop_box, surface_receive, truncate_kspace
from .evaluate import _protocol_images
from .predict import predict
from .tasks import TASKS

INVARIANCE_SEED = 50021         # subjects never drawn by training (bank), evaluation (10007+) or calibration (20011+)
# The map each task is judged on, the tissues compared (phantoms.tissues labels) and the tolerance
# of the issue: 5 % of the median per tissue (PDFF: 5 percentage points).
PRIMARY = {"spgr-t1": "T1", "t2star": "T2s", "fatwater-ipop": "PDFF", "brain-t1t2": "T1"}
TISSUES = {"brain": {"WM": (3,), "GM": (2,)}, "knee": {"muscle": (2,), "cartilage": (5,), "marrow": (3,)},
           "liver": {"liver": (4,), "spleen": (5,), "muscle": (3,)}}


@dataclass
class Case:
    """A simulated case: its images (Z, Y, X), acquisitions, truth maps and labels."""
    phantom: str
    images: list[np.ndarray]
    acqs: list
    truth: dict[str, np.ndarray]
    labels: np.ndarray


@dataclass
class Variant:
    """name; images -> (images, mask or None); undo maps a variant's output back onto the
    reference grid (orientation); region: the voxels (on the reference grid) it covers."""
    name: str
    change: Callable[[Case], tuple[list[np.ndarray], np.ndarray | None]]
    undo: Callable[[np.ndarray], np.ndarray] = lambda a: a
    region: Callable[[Case], np.ndarray] | None = None
    kind: str = "tissue"          # tissue (5 %), orientation (3 %), scale (identical)
    crop: tuple | None = None


def make_case(task: str, phantom: str | None = None, seed: int = INVARIANCE_SEED, slices: int = 4,
              snr: float | None = 100.0, overrides: list[dict] | None = None) -> Case:
    t = TASKS[task]
    ph = phantom or t.phantoms[-1]
    imgs = _protocol_images(task, overrides)
    rng = case_rng(seed, 0)
    truth, sim, _ = simulate_case(ph, Protocol("invariance", ph, tuple(imgs), "invariance"), rng, snr, slices=slices,
                                  matrix=None if ph == "brain" else 128, readout=Readout(2))
    return Case(ph, [s.data for s in sim], [s.image.acq for s in sim], truth.maps, truth.labels)


def _stripped(margin: int):
    def change(c: Case):
        keep = brain_mask(c.labels, margin)
        return [im * keep for im in c.images], keep & (np.abs(c.images[0]) > 0)
    return change


def _slab(c: Case):
    by, bx = crop_box(c.truth["PD"] > 0, 0.5, 1.0, 0.5, 0.0)
    return by, bx


def variants(task: str, phantom: str) -> list[Variant]:
    v = []
    if phantom == "brain":
        v += [Variant("skull-stripped", _stripped(0), region=lambda c: brain_mask(c.labels, 0)),
              Variant("stripped, eroded 3 mm", _stripped(-3), region=lambda c: brain_mask(c.labels, -3)),
              Variant("stripped, grown 3 mm", _stripped(3), region=lambda c: brain_mask(c.labels, 3))]
    v.append(Variant("slab, half the field of view", lambda c: ([im[(..., *_slab(c))] for im in c.images], None),
                     kind="crop"))
    v += [Variant("scale x0.01", lambda c: ([im * 0.01 for im in c.images], None), kind="scale"),
          Variant("scale x100", lambda c: ([im * 100.0 for im in c.images], None), kind="scale"),
          Variant("flipped left-right", lambda c: ([im[..., ::-1] for im in c.images], None),
                  undo=lambda a: a[..., ::-1], kind="orientation"),
          Variant("flipped up-down", lambda c: ([im[..., ::-1, :] for im in c.images], None),
                  undo=lambda a: a[..., ::-1, :], kind="orientation"),
          Variant("turned 90 degrees", lambda c: ([np.rot90(im, 1, (-2, -1)) for im in c.images], None),
                  undo=lambda a: np.rot90(a, -1, (-2, -1)), kind="orientation"),
          Variant("2 mm in-plane (k-space truncated)", lambda c: ([truncate_kspace(im, 2.0, 2.0) for im in c.images],
                                                                  None)),
          Variant("receive field 3x at the surface",
                  lambda c: ([im * surface_receive(im.shape[-2:], 3.0, 0.5, 0.5) for im in c.images], None))]
    return v


@dataclass
class Row:
    variant: str
    kind: str
    medians: dict[str, tuple[float, float]] = field(default_factory=dict)   # tissue -> (reference, variant)
    worst: float = 0.0            # largest difference of the medians (relative, or pp for PDFF)
    r: float = float("nan")       # voxel correlation with the reference over the common voxels
    identical: float = 0.0        # largest relative voxel difference (scale variants)
    coverage: float = float("nan")   # 1-SD coverage of the truth by the variant's SD
    warnings: list[str] = field(default_factory=list)


def _predict(task, images, acqs, model, mask):
    return predict(task, images, acqs, model=model, device="cpu", refine_steps=0, mask=mask)


def _median_diff(key: str, a: float, b: float) -> float:
    """Relative difference; for PDFF in units of its 0-100 % scale (5 % = 5 percentage points)."""
    return abs(a - b) / 100.0 if key == "PDFF" else abs(a - b) / max(abs(a), 1e-9)


def invariance(task: str, *, model: str | None = None, case: Case | None = None, names: list[str] | None = None,
               snr_cases: dict[float, Case] | None = None) -> list[Row]:
    """Rows of the variants (all, or those named) against the reference prediction on the case;
    snr_cases: the same case simulated at other SNRs (rows 'SNR 20', 'SNR 200')."""
    c = case or make_case(task)
    key = PRIMARY[task]
    ref = _predict(task, c.images, c.acqs, model, None)
    tissues = {n: np.isin(c.labels, labs) for n, labs in TISSUES[c.phantom].items()}
    rows = []

    def compare(name, kind, pred, region, undo=lambda a: a, crop=None):
        mu, sd = undo(pred.maps[key]), undo(pred.maps[f"{key}_sd"])
        r0, truth, labels_t = ref.maps[key], c.truth[key], tissues
        if crop is not None:
            r0, truth = r0[(..., *crop)], truth[(..., *crop)]
            labels_t = {n: m[(..., *crop)] for n, m in tissues.items()}
            region = region[(..., *crop)]
        both = region & np.isfinite(mu) & np.isfinite(r0) & (mu > 0 if key != "B0" else True) & (r0 > 0)
        row = Row(name, kind, warnings=[w for w in pred.warnings if "unfamiliar" in w])
        for n, m in labels_t.items():
            sel = both & m
            if sel.sum() >= 50:
                a, b = float(np.median(r0[sel])), float(np.median(mu[sel]))
                row.medians[n] = (a, b)
                row.worst = max(row.worst, _median_diff(key, a, b))
        if both.sum() > 10:
            row.r = float(np.corrcoef(r0[both], mu[both])[0, 1])
            row.identical = float(np.max(np.abs(mu[both] - r0[both]) / np.maximum(np.abs(r0[both]), 1e-6)))
            ok = both & np.isfinite(sd)
            row.coverage = float(np.mean(np.abs(mu[ok] - truth[ok]) <= sd[ok]))
        rows.append(row)

    body = c.truth["PD"] > 0
    study = (np.isin(c.labels, INTRACRANIAL) if c.phantom == "brain" else body)
    compare("reference", "reference", ref, study)
    for v in variants(task, c.phantom):
        if names and v.name not in names:
            continue
        imgs, mask = v.change(c)
        pred = _predict(task, imgs, c.acqs, model, mask)
        region = (v.region(c) if v.region else study)
        crop = _slab(c) if v.kind == "crop" else None
        if crop is not None:          # the variant's maps are on the slab; compare there
            full = {k: np.full(c.labels.shape, np.nan, np.float32) for k in pred.maps}
            for k in full:
                full[k][(..., *crop)] = pred.maps[k]
            pred = dataclasses.replace(pred, maps=full)
            crop = None
        compare(v.name, v.kind, pred, region & study, v.undo, crop)
    for snr, sc in (snr_cases or {}).items():
        if names and f"SNR {snr:g}" not in names:
            continue
        compare(f"SNR {snr:g}", "tissue", _predict(task, sc.images, sc.acqs, model, None), study)
    return rows


def table(rows: list[Row]) -> str:
    out = ["| variant | medians per tissue (reference -> variant) | worst median difference | voxel r | 1-SD coverage |",
           "|---|---|---|---|---|"]
    for r in rows:
        med = "; ".join(f"{n} {a:.0f} -> {b:.0f}" for n, (a, b) in r.medians.items())
        out.append(f"| {r.variant} | {med} | {100 * r.worst:.1f} % | {r.r:.3f} | {r.coverage:.2f} |")
    return "\n".join(out)
