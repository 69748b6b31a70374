"""Prediction: maps, per-voxel uncertainty and the physics-consistency residual.

The small, stable API that the command line, the Slicer module and the web app call:

    predict(task, images, acquisitions, model=None, device="auto") -> Prediction

images are 3D arrays (z, y, x) in the acquisition plane (complex for fatwater-ipop), one
per task input; trailing optional inputs may be left out. Prediction runs slice by slice
in the acquisition plane, because the networks are 2D and the in-plane resolution is the
finest (anisotropic voxels stay as acquired). Any in-plane size works (padded inside the
model); slices go in batches that bound memory; on a CUDA out-of-memory error the batch is
halved, and at one slice the work falls back to the CPU with a warning.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from ..acquisition import LABEL, Acquisition
from ..device import resolve_device
from ..errors import Q2MRIError
from ..fitting.quality import FLAGGED, quality_map
from ..fitting.voxelwise import default_mask
from ..phantoms.dataset import normalise_inputs
from .familiarity import checked_slices, spread_to_all, turned_disagreement
from .registry import find_model, load_model
from .tasks import RESYNTHESIS, TASKS, Task, consistency
from .unet import fuse_batchnorm

ACQ_FIELDS = ("flip_angle_deg", "tr_ms", "te_ms", "ti_ms", "field_strength_t")
# Physically non-negative maps: a negative network output is clipped to 0 (B0 is signed).
NON_NEGATIVE = {"T1", "T2", "T2s", "R2s", "PD", "B1", "PDFF"}


@dataclass
class Prediction:
    maps: dict[str, np.ndarray]                    # T1, PD, ..., <MAP>_sd, consistency
    consistency: float | None                      # mean relative residual in the mask
    warnings: list[str] = field(default_factory=list)
    model: str = ""
    familiarity: np.ndarray | None = None          # per slice: feature distance over the limit (> 1: unfamiliar)


# Maps that stay where a voxel is flagged: B1 is a smooth field over the body, valid where the
# voxel's own signals determine nothing.
KEEP_WHERE_FLAGGED = {"B1", "B1_sd", "consistency"}


def unidentifiable(task: str, images: Sequence[np.ndarray], acqs: Sequence[Acquisition],
                   maps: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray | None:
    """Voxels whose inputs determine no value, flagged as a classical fit flags them
    (fitting.quality), or None where the task's inputs give no such test. spgr-t1 with two
    flip angles: the DESPOT1 line through the two signals (papers/000 A.2), with the B1 the
    network predicted, has no slope in (0, 1) (noise in low-signal tissue such as cortical bone
    and tendon); the network's T1 there would be its clamp (about 8,600 ms), not a measurement."""
    if task != "spgr-t1" or len(images) < 2:
        return None
    fas = [float(a.flip_angle_deg) for a in acqs]
    if len({round(f, 6) for f in fas}) < 2:
        return None
    from ..fitting.vfa import fit_vfa
    fit = fit_vfa(np.stack([np.abs(im) for im in images], -1), fas, [float(a.tr_ms) for a in acqs], b1=maps["B1"],
                  mask=mask, refine=False, device="cpu")
    # also beyond the network's DESPOT1 layer (it holds T1 to 30-10,000 ms, models.physicsnet): there its
    # T1 would be the clamp, not a measurement
    beyond = np.isfinite(fit["T1"]) & (fit["T1"] >= DESPOT1_LAYER_MAX_MS)
    return ((fit["quality"] == FLAGGED) | beyond) & mask


def per_image_tr_fit(task: str, images, acqs, outs: dict, sds: dict, mask: np.ndarray) -> str | None:
    """spgr-t1 with images at different TRs (MPM/MTsat protocols, Helms et al. 2008): the network's
    DESPOT1 layer assumes one TR, so T1 and PD come from the SPGR equation with each image's own TR
    (fitting.vfa: Helms' closed form, then Levenberg-Marquardt) with the network's B1. PD keeps the
    network's scale (its median in the mask); the SDs keep their relative size."""
    trs = [float(a.tr_ms) for a in acqs]
    if task != "spgr-t1" or len(images) < 2 or len({round(t, 6) for t in trs}) < 2:
        return None
    from ..fitting.vfa import fit_vfa
    fit = fit_vfa(np.stack([np.abs(im) for im in images], -1), [float(a.flip_angle_deg) for a in acqs], trs,
                  b1=outs["B1"], mask=mask, device="cpu")
    ok = mask & np.isfinite(fit["PD"]) & (fit["PD"] > 0) & (outs["PD"] > 0)
    scale = float(np.median(outs["PD"][ok] / fit["PD"][ok])) if ok.any() else 1.0
    for k, new in (("T1", fit["T1"]), ("PD", fit["PD"] * scale)):
        rel = sds[k] / np.maximum(np.abs(outs[k]), 1e-6)
        outs[k] = np.where(mask, new, 0.0).astype(np.float32)
        sds[k] = np.where(mask, rel * np.abs(outs[k]), 0.0).astype(np.float32)
    return (f"the images have different TRs ({', '.join(f'{t:g}' for t in trs)} ms): T1 and PD from the SPGR equation "
            f"with each image's TR and the predicted B1 (Helms 2008 start, Levenberg-Marquardt)")


AUTO_REFINE_STEPS = 10
DESPOT1_LAYER_MAX_MS = 10000.0     # the T1 range of the physics network's DESPOT1 layer ends here
FAR = 1.5        # "far outside": beyond the trained range by more than this factor (or another field)


def check_acquisitions(task: Task, acqs: Sequence[Acquisition]) -> list[str]:
    """Errors for protocols that make no sense; warnings outside the trained ranges (the input's
    own and the task's, field strength included); for a task that refuses (fatwater-ipop), an
    error far outside them, pointing to the classical fit."""
    notes = []
    for spec, acq in zip(task.inputs, acqs):
        base = spec.image.acq
        # Flip angle and TR must come with the image; other fields fall back to the task's base protocol.
        acq.require(*[f for f in ("flip_angle_deg", "tr_ms") if getattr(base, f) is not None])
        # The task's ranges describe the inputs whose base protocol lies inside them (the GRE echo of
        # t2star, not its UTE SPGR; the MPRAGE's TI, not the FLAIR's); an input's own ranges win.
        own = {f: r for f, r in task.ranges.items()
               if getattr(base, f) is None or r[0] <= getattr(base, f) <= r[1]}
        ranges = {**own, **spec.ranges, "field_strength_t": task.field_range}
        for f, (lo, hi) in ranges.items():
            v = getattr(acq, f)
            if v is None or lo <= v <= hi:
                continue
            what = f"{acq.source or 'input'}: {LABEL[f]} {v:g} is outside the model's trained range {lo:g}-{hi:g}"
            far = (f == "field_strength_t" and abs(v - lo) > 0.25) or not (lo / FAR <= v <= hi * FAR)
            if far and task.refuse_far:
                raise Q2MRIError(f"{what}, too far for this network to be trusted; use the classical fit instead "
                                 f"(q2mri fit fatwater with three or more echoes)")
            notes.append(f"{what}; expect lower accuracy")
    return notes


def _acq_tensor(task: Task, acqs: Sequence[Acquisition]) -> torch.Tensor:
    v = np.zeros(task.acq_dim, np.float32)
    for i, spec in enumerate(task.inputs[: len(acqs)]):
        a = acqs[i]
        base = spec.image.acq
        for j, f in enumerate(ACQ_FIELDS):
            val = getattr(a, f)
            if val is None:
                val = getattr(base, f)
            v[5 * i + j] = float(val or 0.0)
    return torch.from_numpy(v)


def predict(task: str, images: Sequence[np.ndarray], acquisitions: Sequence[Acquisition], *,
            model: str | None = None, device: str = "auto", batch: int | None = None,
            mask: np.ndarray | None = None, progress: Callable[[int, int], None] | None = None,
            refine_steps: int | None = None) -> Prediction:
    """Maps, their SD and the consistency residual; refine_steps > 0 first fine-tunes the
    network on this scan with the Bloch loss (models.refine, papers/004). None (the default)
    refines where the inputs form a series the physics determines (two flip angles for
    spgr-t1: AUTO_REFINE_STEPS), and not otherwise."""
    if task not in TASKS:
        raise Q2MRIError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    t = TASKS[task]
    n_req = len(t.inputs) - t.optional_inputs
    if not (n_req <= len(images) <= len(t.inputs)):
        raise Q2MRIError(f"task {task} takes {n_req}" + (f" to {len(t.inputs)}" if t.optional_inputs else "") +
                         f" input image(s), got {len(images)}")
    if len(acquisitions) != len(images):
        raise Q2MRIError("give one acquisition record per input image")
    shape = images[0].shape
    if any(im.shape != shape for im in images):
        raise Q2MRIError("the input images have different shapes; resample them onto one grid")
    notes = check_acquisitions(t, acquisitions)
    for n in notes:
        warnings.warn(n)
    folder = find_model(model, task)
    dev = resolve_device(device)
    net, card = load_model(folder, dev)
    if card.get("preview"):
        notes.append(f"model {folder.name} is below its accuracy targets on held-out simulated subjects "
                     f"(card: {folder / 'card.md'}); check its numbers before relying on the maps")
        warnings.warn(notes[-1])
    if card.get("caveat"):           # what a held-out check found that the targets do not show
        notes.append(f"model {folder.name}: {card['caveat']}")
        warnings.warn(notes[-1])
    chans = []
    for im in images:
        if t.complex_inputs:
            if not np.iscomplexobj(im):
                raise Q2MRIError(f"task {task} needs complex echoes (magnitude and phase)")
            chans += [im.real, im.imag]
        else:
            chans.append(np.abs(im))
    while len(chans) < t.channels:           # absent optional inputs: zero channels, zero acquisition
        chans.append(np.zeros(shape, np.float32))
    x_all = np.stack(chans, 1).astype(np.float32)                       # (Z, C, Y, X)
    if mask is None:
        mask = default_mask(np.abs(np.stack([np.abs(im) for im in images], -1)), 0.05)
    mask = np.asarray(mask, bool)
    for s in range(shape[0]):              # the training normalisation, per slice (x_all is our own copy)
        x_all[s] = normalise_inputs(x_all[s], mask[s], t.normalise, t.complex_inputs)
    acq = _acq_tensor(t, acquisitions)
    z = shape[0]
    outs = {k: np.zeros(shape, np.float32) for k in t.targets}
    sds = {k: np.zeros(shape, np.float32) for k in t.targets}
    cons_map = np.zeros(shape, np.float32)
    limit = float((card.get("familiarity") or {}).get("limit") or 0.0)
    checked = checked_slices(z) if limit > 0 else np.array([], int)
    score = np.zeros(z, np.float32)
    bs = batch or (32 if dev.type == "cuda" else 8)
    if refine_steps is None:
        from .refine import SERIES_TASKS
        refine_steps = AUTO_REFINE_STEPS if len(images) >= SERIES_TASKS.get(task, 10 ** 6) else 0
    if refine_steps > 0:
        from .refine import refine_scan_specific
        xs = torch.from_numpy(x_all).to(dev)
        ms = torch.from_numpy(np.ascontiguousarray(mask)).to(dev)
        net = refine_scan_specific(net, t, xs, acq[None].expand(z, -1).to(dev), ms,
                                   steps=refine_steps)
        notes.append(f"refined on this scan for {refine_steps} steps (papers/004)")
    net = fuse_batchnorm(net)
    start = 0
    if progress:
        progress(0, z)
    with torch.inference_mode():
        while start < z:
            stop = min(z, start + bs)
            try:
                x = torch.from_numpy(x_all[start:stop]).to(dev)
                m = torch.from_numpy(np.ascontiguousarray(mask[start:stop])).to(dev)
                a = acq[None].expand(stop - start, -1).to(dev)
                mean, sd = net(x, a)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                if bs > 1:
                    bs = max(1, bs // 2)
                    continue
                warnings.warn("CUDA ran out of memory at one slice per batch; continuing on the CPU")
                dev = torch.device("cpu")
                net = net.to(dev)
                continue
            sel = [i - start for i in checked if start <= i < stop]
            if sel:
                # how familiar the input is: the maps of the slice turned by 180 degrees (models.familiarity)
                score[np.array(sel) + start] = turned_disagreement(net, x[sel], a[sel], m[sel], mean[sel]).numpy()
            for i, k in enumerate(t.targets):
                mu = mean[:, i].clamp_min(0.0) if k in NON_NEGATIVE else mean[:, i]
                # exactly 0 outside the mask (a product would leave -0.0, and T1 = -0 breaks exp(-TR/T1))
                outs[k][start:stop] = torch.where(m, mu, torch.zeros_like(mu)).cpu().numpy()
                sds[k][start:stop] = torch.where(m, sd[:, i], torch.zeros_like(mu)).cpu().numpy()
            if task in RESYNTHESIS:
                maps = {k: mean[:, i] for i, k in enumerate(t.targets)}
                rmap, _ = consistency(task, x, maps, a, m)
                cons_map[start:stop] = rmap.cpu().numpy()
            start = stop
            if progress:
                progress(start, z)
    if "PDFF" in outs:
        # a fat fraction is 0-100 %: the physics network bounds it by construction (sigmoid head);
        # a model without that head is held to it here, and says how often it had to be
        over = int((outs["PDFF"] > 100.0).sum())
        if over:
            np.minimum(outs["PDFF"], 100.0, out=outs["PDFF"])
            warnings.warn(f"PDFF above 100 % in {over} voxel(s) clipped to 100 % (this model has no bounded PDFF "
                          "head); prefer q2mri fit fatwater for fat fractions")
    note = per_image_tr_fit(task, images, acquisitions, outs, sds, mask)
    if note:
        notes.append(note)
    result = dict(outs)
    result.update({f"{k}_sd": v for k, v in sds.items()})
    scalar = None
    if task in RESYNTHESIS:
        result["consistency"] = cons_map
        scalar = float(cons_map[mask].mean()) if mask.any() else 0.0
    familiarity = spread_to_all(z, checked, score[checked]) / limit if limit > 0 else None
    far = familiarity > 1.0 if familiarity is not None else np.zeros(z, bool)
    if far.any():
        # beyond the limit the SD is widened by the score over the limit: honest where unfamiliar
        widen = np.maximum(familiarity, 1.0)[:, None, None].astype(np.float32)
        for k in t.targets:
            sds[k] *= widen
        notes.append(f"unfamiliar input: {int(far.sum())} of {z} slice(s) are unlike what the network learned (its "
                     f"maps change when the slice is turned, up to {float(familiarity.max()):.1f}x the limit); their SD is "
                     f"widened by that factor and quality is 2 there; check them against a classical fit where the "
                     f"protocol allows")
        warnings.warn(notes[-1])
        # an unfamiliar slice keeps its maps (with the widened SD) but is marked 2 in quality
        result["quality"] = quality_map(mask, far[:, None, None] & mask)
    flagged = unidentifiable(task, images, acquisitions, outs, mask)
    if flagged is not None:
        # a failed voxel is flagged, never a plausible number: NaN in its maps, 2 in quality
        for k in result:
            if k not in KEEP_WHERE_FLAGGED:
                result[k] = np.where(flagged, np.nan, result[k]).astype(np.float32)
        result["quality"] = quality_map(mask, flagged | (far[:, None, None] & mask))
        notes.append(f"flagged {int(flagged.sum())} of {int(mask.sum())} voxels where the inputs determine no value "
                     f"(NaN in the maps, 2 in quality)")
    return Prediction(result, scalar, notes, str(folder), familiarity=familiarity)
