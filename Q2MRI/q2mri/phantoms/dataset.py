"""Torch datasets of 2D slices (or patches) for training: (inputs, acquisition, targets, mask).

- SimulatedSliceDataset simulates on the fly: anatomy cases come from the phantoms (a
  few cached at a time, deterministic by index), and every sample draws its own flip
  angle, TR, TE, TI within stated ranges and its own SNR, so one network can learn a range
  of protocols. Only the chosen slice is simulated, through the same physics as
  ``q2mri simulate`` (phantoms.simulate.clean_signal).
- FolderDataset reads a folder of cases as written by ``q2mri simulate``, or a site's own
  paired data in the same layout: case folders with images + JSON sidecars and maps/.

Each sample is a dict: inputs (C, H, W) float32, acq (C * 5,) float32 holding
(flip angle deg, TR ms, TE ms, TI ms, field T) per input (0 where absent), targets
(K, H, W) float32 in the map units of q2mri.maps, mask (H, W) bool (tissue).
Normalisation: "channel" divides each input channel by its 95th percentile inside the mask
(papers/001, for inputs from different sequences); "joint" divides every channel by the
95th percentile of the first input's magnitude, which keeps the ratios between images of a
physical series (flip angles, echoes; real and imaginary parts) that carry T1, R2* and B0.
Targets stay in physical units (the model decides its own scaling).
"""
from __future__ import annotations

import dataclasses
import json
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..acquisition import Acquisition
from ..errors import Q2MRIError
from ..io.images import read_image
from . import fields
from .case import PhantomCase
from .protocols import Image
from .simulate import afi_pair, case_rng, clean_signal, make_case

ACQ_FIELDS = ("flip_angle_deg", "tr_ms", "te_ms", "ti_ms", "field_strength_t")


def acq_vector(acqs: Sequence[Acquisition]) -> np.ndarray:
    return np.array([float(getattr(a, f) or 0.0) for a in acqs for f in ACQ_FIELDS], np.float32)


@dataclass(frozen=True)
class Augment:
    """flips: random left-right/up-down flips; patch: random crop (padded when smaller);
    scale: range of a global intensity factor; extra_noise: range of added noise SD as a
    fraction of the channel's 95th percentile (noise-level variation)."""
    flips: bool = True
    patch: int | None = None
    scale: tuple[float, float] = (0.8, 1.25)
    extra_noise: tuple[float, float] = (0.0, 0.0)


NO_AUGMENT = Augment(flips=False, patch=None, scale=(1.0, 1.0))


def normalise_inputs(x: np.ndarray, mask: np.ndarray, mode: str = "channel", complex_pairs: bool = False) -> np.ndarray:
    """Divide input channels (C, H, W) by 95th percentiles inside the mask (see the module docstring)."""
    def p95(v: np.ndarray) -> float:
        vals = v[mask] if mask.any() else v.ravel()
        q = float(np.percentile(vals, 95)) if vals.size else 1.0
        return q if q > 0 else 1.0

    if mode == "joint":
        first = np.hypot(x[0], x[1]) if complex_pairs else np.abs(x[0])
        return x / p95(first)
    out = np.empty_like(x)
    step = 2 if complex_pairs else 1
    for c in range(0, x.shape[0], step):
        mag = np.hypot(x[c], x[c + 1]) if complex_pairs else np.abs(x[c])
        out[c:c + step] = x[c:c + step] / p95(mag)
    return out


def _augment(rng: np.random.Generator, x: np.ndarray, t: np.ndarray, m: np.ndarray, aug: Augment):
    if aug.flips:
        if rng.uniform() < 0.5:
            x, t, m = x[..., ::-1], t[..., ::-1], m[..., ::-1]
        if rng.uniform() < 0.5:
            x, t, m = x[..., ::-1, :], t[..., ::-1, :], m[..., ::-1, :]
    x = x * rng.uniform(*aug.scale)
    if aug.extra_noise[1] > 0:
        sd = rng.uniform(*aug.extra_noise)
        x = np.abs(x + sd * rng.standard_normal(x.shape)).astype(np.float32)
    if aug.patch:
        p = aug.patch
        h, w = m.shape
        ph, pw = max(0, p - h), max(0, p - w)
        if ph or pw:
            pad = ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2))
            x, t = np.pad(x, pad), np.pad(t, pad)
            m = np.pad(m, pad[1:])
            h, w = m.shape
        i, j = rng.integers(0, h - p + 1), rng.integers(0, w - p + 1)
        x, t, m = x[:, i:i + p, j:j + p], t[:, i:i + p, j:j + p], m[i:i + p, j:j + p]
    return np.ascontiguousarray(x), np.ascontiguousarray(t), np.ascontiguousarray(m)


def _sample(x, acq, t, m) -> dict[str, torch.Tensor]:
    return {"inputs": torch.from_numpy(np.ascontiguousarray(x, np.float32)), "acq": torch.from_numpy(acq),
            "targets": torch.from_numpy(np.ascontiguousarray(t, np.float32)), "mask": torch.from_numpy(m.astype(bool))}


@dataclass(frozen=True)
class InputSpec:
    """One input channel: an image kind with a base acquisition and ranges to draw from."""
    image: Image
    ranges: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)

    def draw(self, rng: np.random.Generator) -> Image:
        kw = {k: float(rng.uniform(*r)) for k, r in self.ranges.items()}
        return dataclasses.replace(self.image, acq=self.image.acq.with_overrides(**kw))


class SimulatedSliceDataset(Dataset):
    """On-the-fly physics-driven slices from phantom cases (see the module docstring)."""

    def __init__(self, phantom: str, inputs: Sequence[InputSpec], targets: Sequence[str], *, n_cases: int = 8,
                 seed: int = 0, samples_per_case: int = 64, slices: int | None = None, matrix: int | None = None,
                 snr: tuple[float, float] = (50.0, 200.0), augment: Augment = Augment(), normalise: str | None = "channel",
                 cache_cases: int = 2):
        if not inputs:
            raise Q2MRIError("give at least one input")
        self.phantom, self.inputs, self.targets = phantom, list(inputs), list(targets)
        self.n_cases, self.seed, self.per_case = n_cases, seed, samples_per_case
        self.slices, self.matrix, self.snr = slices, matrix, snr
        self.augment, self.normalise = augment, normalise
        self._cache: OrderedDict[int, PhantomCase] = OrderedDict()
        self._cache_size = cache_cases

    def __len__(self) -> int:
        return self.n_cases * self.per_case

    def case(self, i: int) -> PhantomCase:
        if i not in self._cache:
            self._cache[i] = make_case(self.phantom, case_rng(self.seed, i), self.slices, self.matrix)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(i)
        return self._cache[i]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ci = index // self.per_case
        case = self.case(ci)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, ci, index, 1]))
        z = int(rng.integers(case.labels.shape[0]))
        sl = _slice_case(case, z)
        imgs = [spec.draw(rng) for spec in self.inputs]
        channels = []
        snr = float(rng.uniform(*self.snr))
        phase0 = np.full(sl.labels.shape, rng.uniform(-np.pi, np.pi), np.float32)
        for k, img in enumerate(imgs):
            if img.kind in ("afi1", "afi2"):
                other = [i for i in imgs if i.kind == ("afi2" if img.kind == "afi1" else "afi1")][0]
                pair = afi_pair(sl, img if img.kind == "afi1" else other, other if img.kind == "afi1" else img)
                s = pair[0] if img.kind == "afi1" else pair[1]
            else:
                s = clean_signal(sl, img, phase0)
            sigma = float(np.median(np.abs(s[sl.body]))) / snr if sl.body.any() else 0.0
            s = fields.complex_noise(rng, s, sigma) if np.iscomplexobj(s) else fields.rician(rng, s, sigma)
            if np.iscomplexobj(s):
                channels += [s[0].real, s[0].imag]
            else:
                channels.append(s[0])
        x = np.stack(channels).astype(np.float32)
        mask = sl.maps["PD"][0] > 0
        if self.normalise:
            x = normalise_inputs(x, mask, self.normalise, any(i.kind == "gre_complex" for i in imgs))
        t = np.stack([sl.maps[k][0] for k in self.targets]).astype(np.float32)
        x, t, mask = _augment(rng, x, t, mask, self.augment)
        return _sample(x, acq_vector([i.acq for i in imgs]), t, mask)


def _slice_case(case: PhantomCase, z: int) -> PhantomCase:
    """A one-slice view of a case (physics runs on this slice only)."""
    return PhantomCase(case.phantom, case.labels[z:z + 1], case.label_names,
                       {k: v[z:z + 1] for k, v in case.maps.items()}, case.receive[z:z + 1], case.geometry,
                       case.field_strength_t, case.drawn)


class FolderDataset(Dataset):
    """Slices from case folders (``q2mri simulate`` output, or a site's paired data).

    inputs: image file stems in each case folder (e.g. ["spgr_fa20"]; complex echoes as
    "me_e2_mag", "me_e2_phase"); targets: map names read from case/maps/.
    """

    def __init__(self, folder: str | Path, inputs: Sequence[str], targets: Sequence[str], *,
                 augment: Augment = NO_AUGMENT, normalise: str | None = "channel", seed: int = 0,
                 cases: Sequence[str] | None = None, complex_pairs: bool = False):
        self.folder = Path(folder)
        found = sorted(p for p in self.folder.iterdir() if p.is_dir() and (p / "maps").is_dir()) if self.folder.is_dir() else []
        if cases is not None:
            found = [p for p in found if p.name in set(cases)]
        if not found:
            raise Q2MRIError(f"{folder} has no case folders with a maps/ subfolder; give a folder written by 'q2mri simulate'")
        self.cases, self.inputs, self.targets = found, list(inputs), list(targets)
        self.augment, self.normalise, self.seed, self.complex_pairs = augment, normalise, seed, complex_pairs
        self.index: list[tuple[int, int]] = []
        for ci, c in enumerate(found):
            lab = read_image(c / "maps" / "labels.nii.gz") if (c / "maps" / "labels.nii.gz").exists() else \
                read_image(c / "maps" / f"{targets[0]}.nii.gz")
            self.index += [(ci, z) for z in range(lab.array.shape[0])]
        self._cache: OrderedDict[int, tuple] = OrderedDict()

    def __len__(self) -> int:
        return len(self.index)

    def _load(self, ci: int):
        if ci not in self._cache:
            c = self.cases[ci]
            xs, acqs = [], []
            for name in self.inputs:
                p = c / f"{name}.nii.gz"
                if not p.exists():
                    raise Q2MRIError(f"case {c} lacks the input image {p.name}")
                xs.append(read_image(p).array)
                side = c / f"{name}.json"
                acqs.append(Acquisition.from_bids(json.loads(side.read_text()))[0] if side.exists() else Acquisition())
            ts = []
            for t in self.targets:
                p = c / "maps" / f"{t}.nii.gz"
                if not p.exists():
                    raise Q2MRIError(f"case {c} lacks the target map maps/{t}.nii.gz")
                ts.append(read_image(p).array)
            pdp = c / "maps" / "PD.nii.gz"
            mask = read_image(pdp).array > 0 if pdp.exists() else np.ones(xs[0].shape, bool)
            self._cache[ci] = (np.stack(xs), acq_vector(acqs), np.stack(ts), mask)
            while len(self._cache) > 2:
                self._cache.popitem(last=False)
        return self._cache[ci]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ci, z = self.index[index]
        x, acq, t, mask = self._load(ci)
        x, t, m = x[:, z].astype(np.float32), t[:, z].astype(np.float32), mask[z]
        if self.normalise:
            x = normalise_inputs(x, m, self.normalise, self.complex_pairs)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, index]))
        x, t, m = _augment(rng, x, t, m, self.augment)
        return _sample(x, acq, t, m)
