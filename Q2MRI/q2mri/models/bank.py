"""A bank of phantom cases simulated once, and training samples synthesized from it on the fly.

Simulating anatomy is the expensive part (phantoms.*: the head warp, the Helmholtz B1+ solve,
the dipole B0); imaging a slice through the physics is cheap. So a bank holds, per case, a
few slices of the realistic phantom on its fine grid (maps, receive field) and their ground
truth on the acquisition grid (phantoms.imaging.truth_case), and every training sample
draws a protocol within the task's ranges and forms its images from the fine slice exactly as
``q2mri simulate`` does: complex signal through q2mri.physics, k-space truncation, complex
noise (phantoms.imaging.acquire). One bank serves every task of its phantom.

Layout: BANK/<phantom>/case-XXXX.npz (float16 fine maps and truth, int16 labels) and
BANK/<phantom>/bank.json (seed, grid, field, how it was made).
"""
from __future__ import annotations

import dataclasses
import json
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset

from ..errors import Q2MRIError
from ..phantoms.case import PhantomCase
from ..phantoms.imaging import Readout, acquire, noise_gain, truth_case
from ..phantoms.simulate import afi_pair, case_rng, complex_signal, draw_phase0, make_case
from ..phantoms.variants import brain_mask, crop_box, smooth_field, surface_receive, truncate_kspace

FINE_KEYS = ("T1", "T2", "T2s", "R2s", "PD", "PDFF", "B1", "B0")
TRUTH_KEYS = ("T1", "T2", "T2s", "R2s", "PD", "PDFF", "B1", "B0")
# Bank defaults per phantom: slices per case kept, their spacing, and the acquisition matrix.
DEFAULTS = {"brain": dict(slices=24, keep=6, matrix=None), "knee": dict(slices=36, keep=8, matrix=128),
            "liver": dict(slices=32, keep=8, matrix=96)}


def _one_case(args) -> str:
    phantom, seed, i, slices, keep, matrix, oversample, field_t, folder = args
    rng = case_rng(seed, i)
    case = make_case(phantom, rng, slices, matrix, field_t, oversample)
    truth = truth_case(case, Readout(oversample))
    # keep slices evenly spread through the slab, skipping those with almost no tissue
    tissue = truth.labels.reshape(truth.labels.shape[0], -1).mean(1) > 0.05
    idx = np.flatnonzero(tissue)
    if idx.size == 0:
        idx = np.arange(truth.labels.shape[0])
    pick = idx[np.linspace(0, idx.size - 1, min(keep, idx.size)).round().astype(int)]
    data = {f"fine_{k}": case.maps[k][pick].astype(np.float16) for k in FINE_KEYS}
    data["fine_receive"] = case.receive[pick].astype(np.float16)
    data.update({f"truth_{k}": truth.maps[k][pick].astype(np.float32) for k in TRUTH_KEYS})
    data["truth_receive"] = truth.receive[pick].astype(np.float32)
    data["labels"] = truth.labels[pick].astype(np.int16)
    path = Path(folder) / f"case-{i:04d}.npz"
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **data)
    os.replace(tmp, path)
    return path.name


def build_bank(folder: str | os.PathLike, phantom: str, cases: int, seed: int, *, field_t: float = 3.0,
               oversample: int = 2, workers: int = 1, progress: Callable[[int, int], None] | None = None,
               **sizes) -> Path:
    """Simulate ``cases`` phantom cases into folder/<phantom>/ (existing cases are kept: resumable).
    sizes may override DEFAULTS (slices, keep, matrix)."""
    d = {**DEFAULTS[phantom], **sizes}
    out = Path(folder) / phantom
    out.mkdir(parents=True, exist_ok=True)
    if (out / "bank.json").exists():
        old = json.loads((out / "bank.json").read_text())
        if (old.get("seed"), old.get("field_strength_t"), old.get("oversample")) != (seed, field_t, oversample):
            raise Q2MRIError(f"the bank {out} was made with seed {old.get('seed')}, {old.get('field_strength_t')} T, "
                             f"oversampling {old.get('oversample')}; use another folder for seed {seed}")
    meta = {"phantom": phantom, "seed": seed, "field_strength_t": field_t, "oversample": oversample, **d,
            "made_by": "q2mri.models.bank.build_bank (phantoms with physical B1+, k-space formation)"}
    todo = [i for i in range(cases) if not (out / f"case-{i:04d}.npz").exists()]
    jobs = [(phantom, seed, i, d["slices"], d["keep"], d["matrix"], oversample, field_t, str(out)) for i in todo]
    if workers > 1 and len(jobs) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from ..phantoms.simulate import _worker_init
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init) as pool:
            for k, _ in enumerate(pool.map(_one_case, jobs), 1):
                if progress:
                    progress(k, len(jobs))
    else:
        for k, job in enumerate(jobs, 1):
            _one_case(job)
            if progress:
                progress(k, len(jobs))
    (out / "bank.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


@dataclass
class BankSlice:
    """One slice of a bank case: a PhantomCase on the fine grid plus its truth arrays."""
    case: PhantomCase
    truth: dict[str, np.ndarray]
    receive: np.ndarray
    labels: np.ndarray


class CaseBank:
    """Read access to a bank folder: cases are read on first use and kept (a bank of 80 head and
    80 knee cases is about 3.5 GB; training draws a random case per sample)."""

    def __init__(self, folder: str | os.PathLike, phantom: str, cases: Sequence[int] | None = None, cache: int = 10_000):
        self.dir = Path(folder) / phantom
        meta = self.dir / "bank.json"
        if not meta.exists():
            raise Q2MRIError(f"{self.dir} is not a case bank; build one with q2mri.models.bank.build_bank")
        self.meta = json.loads(meta.read_text())
        files = sorted(self.dir.glob("case-*.npz"))
        ids = [int(p.stem.split("-")[1]) for p in files]
        if cases is not None:
            keep = set(cases)
            files = [f for f, i in zip(files, ids) if i in keep]
        if not files:
            raise Q2MRIError(f"the case bank {self.dir} holds no cases")
        self.files = files
        self.phantom = phantom
        self._cache: OrderedDict[int, dict] = OrderedDict()
        self._cache_size = cache

    def __len__(self) -> int:
        return len(self.files)

    def load(self, i: int) -> dict:
        if i not in self._cache:
            with np.load(self.files[i]) as z:
                self._cache[i] = {k: z[k] for k in z.files}
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(i)
        return self._cache[i]

    def slices(self, i: int) -> int:
        return int(self.load(i)["labels"].shape[0])

    def get(self, i: int, z: int) -> BankSlice:
        d = self.load(i)
        maps = {k: d[f"fine_{k}"][z:z + 1].astype(np.float32) for k in FINE_KEYS}
        receive = d["fine_receive"][z:z + 1].astype(np.float32)
        labels = d["labels"][z:z + 1]
        case = PhantomCase(self.phantom, np.zeros(maps["PD"].shape, np.int16), {}, maps, receive, None,
                           float(self.meta["field_strength_t"]), {}, oversample=int(self.meta["oversample"]))
        truth = {k: d[f"truth_{k}"][z:z + 1] for k in TRUTH_KEYS}
        return BankSlice(case, truth, d["truth_receive"][z:z + 1], labels)


def image_slice(sl: BankSlice, imgs, snr: float, rng: np.random.Generator, *,
                kspace: tuple[float, float] = (1.0, 1.0), gfactor: np.ndarray | None = None) -> list[np.ndarray]:
    """The task's images of one bank slice, formed in k-space with noise at the given SNR
    (complex for gre_complex inputs, magnitude otherwise), on the acquisition grid. kspace:
    the resolution lost to a smaller acquired matrix (phantoms.variants.truncate_kspace);
    gfactor: a parallel-imaging noise amplification map (>= 1) on the acquisition grid."""
    ro = Readout(sl.case.oversample)
    phase0 = None
    if any(im.kind == "gre_complex" for im in imgs):
        _, phase0 = draw_phase0(rng, sl.case.maps["PD"].shape, ro.oversample)
    body = sl.labels > 0
    gain = noise_gain(body.shape[1:], ro)
    out = []
    for im in imgs:
        if im.kind in ("afi1", "afi2"):
            other = [j for j in imgs if j.kind == ("afi2" if im.kind == "afi1" else "afi1")][0]
            a, b = afi_pair(sl.case, im if im.kind == "afi1" else other, other if im.kind == "afi1" else im, complex_out=True)
            fine = a if im.kind == "afi1" else b
        else:
            fine = complex_signal(sl.case, im, phase0)
        clean = acquire(fine, ro)
        level = float(np.median(np.abs(clean[body]))) if body.any() else 1.0
        if gain == 1.0:          # no filter, full Fourier: the noise stays white, add it in the image
            noisy = clean + (level / snr) * (rng.standard_normal(clean.shape) + 1j * rng.standard_normal(clean.shape))
        else:
            noisy = acquire(fine, ro, noise_sigma=level / snr / gain, rng=rng)
        if gfactor is not None:       # the rest of the g-factor's noise: total SD g * level / snr
            extra = (level / snr) * np.sqrt(np.maximum(gfactor ** 2 - 1.0, 0.0))
            noisy = noisy + extra * (rng.standard_normal(noisy.shape) + 1j * rng.standard_normal(noisy.shape))
        noisy = truncate_kspace(np.asarray(noisy, np.complex64), *kspace)
        out.append(noisy[0] if im.kind == "gre_complex" else np.abs(noisy[0]).astype(np.float32))
    return out


@dataclass(frozen=True)
class Randomization:
    """What each training sample randomizes of the scanner and the field of view, never the
    tissue (phantoms.variants; issue [generalize]): probabilities and ranges. The tissue values
    stay drawn per case within their literature ranges with the PD-T1 coupling (phantoms.tissues),
    because one image determines T1 only through them."""
    strip: float = 0.35            # skull-stripped brain (intracranial labels, margin below)
    strip_margin: int = 3          # voxels the stripping mask is eroded or grown by, at most
    partial_strip: float = 0.3     # of the stripped ones: the scalp kept on one side
    crop: float = 0.3              # a slab of 45-100 % of the field of view along each axis
    receive: float = 0.6           # a surface coil's receive profile
    receive_max: float = 3.0       # its brightest edge over the far side
    blur: float = 0.4              # k-space truncated by 1-2x per axis (anisotropic)
    blur_max: float = 2.0
    gfactor: float = 0.3           # parallel-imaging noise: a smooth g-factor map of 1-2
    b1: float = 0.6                # the physical B1+ times a smooth random field (up to ~+-25 %)
    b1_spread: float = 0.12
    zoom: float = 0.35             # coarser in-plane pixels: the slice resampled by a factor 0.5-1
    zoom_min: float = 0.5
    rot90: bool = True             # in-plane quarter turns (with the flips: all 8 orientations)


NO_RANDOMIZATION = Randomization(strip=0, partial_strip=0, crop=0, receive=0, blur=0, gfactor=0, b1=0, zoom=0, rot90=False)


def _randomize_fields(sl: BankSlice, r: Randomization, rng: np.random.Generator) -> tuple[BankSlice, dict]:
    """The slice with its transmit and receive fields perturbed (new arrays: the bank's cache is
    read-only), and the scanner's draws for image formation."""
    fine_shape, acq_shape = sl.case.maps["B1"].shape[-2:], sl.truth["B1"].shape[-2:]
    maps, truth, receive = dict(sl.case.maps), dict(sl.truth), sl.case.receive
    if rng.uniform() < r.b1:
        coef = rng.normal(0.0, r.b1_spread, 5)
        perturb = lambda b1, shape: np.where(b1 > 0, np.clip(b1 * smooth_field(shape, coef), 0.3, 1.8), 0.0).astype(np.float32)
        maps["B1"], truth["B1"] = perturb(maps["B1"], fine_shape), perturb(truth["B1"], acq_shape)
    if rng.uniform() < r.receive:
        receive = receive * surface_receive(fine_shape, float(rng.uniform(1.3, r.receive_max)),
                                            float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0.3, 1.0)))
    draws = {"kspace": (1.0, 1.0), "gfactor": None}
    if rng.uniform() < r.blur:
        draws["kspace"] = tuple(float(rng.uniform(1.0, r.blur_max)) for _ in range(2))
    if rng.uniform() < r.gfactor:
        draws["gfactor"] = 1.0 + smooth_field(acq_shape, rng.normal(0.0, 0.5, 5)) * float(rng.uniform(0.2, 0.6))
    case = dataclasses.replace(sl.case, maps=maps, receive=receive)
    return BankSlice(case, truth, sl.receive, sl.labels), draws


class BankDataset(Dataset):
    """Training samples of a task from case banks (one per phantom of the task): every sample
    draws a case, a slice, a protocol within the task's ranges and an SNR, and forms its
    images through the physics (see the module docstring). Samples are dicts like
    phantoms.dataset's: inputs (C, H, W), acq (5 n,), targets (K, H, W), mask (H, W)."""

    def __init__(self, folder: str | os.PathLike, task, *, cases: Sequence[int] | None = None, seed: int = 0,
                 snr: tuple[float, float] = (20.0, 300.0), patch: int | None = 96, flips: bool = True,
                 length: int = 1_000_000, randomize: Randomization = NO_RANDOMIZATION):
        from ..phantoms.dataset import acq_vector, normalise_inputs
        self._acq_vector, self._normalise = acq_vector, normalise_inputs
        self.task = task
        self.banks = [CaseBank(folder, ph, cases) for ph in task.phantoms]
        self.seed, self.snr, self.patch, self.flips, self.length = seed, snr, patch, flips, length
        self.randomize = randomize

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, index, 7]))
        bank = self.banks[int(rng.integers(len(self.banks)))]
        ci = int(rng.integers(len(bank)))
        sl = bank.get(ci, int(rng.integers(bank.slices(ci))))
        imgs = self.task.draw(rng)
        field_t = float(bank.meta["field_strength_t"])
        imgs = [type(im)(im.name, im.kind, im.acq.with_overrides(field_strength_t=field_t)) for im in imgs]
        r = self.randomize
        sl, draws = _randomize_fields(sl, r, rng)
        data = image_slice(sl, imgs, float(np.exp(rng.uniform(*np.log(self.snr)))), rng, **draws)
        chans = []
        for d in data:
            chans += [d.real, d.imag] if np.iscomplexobj(d) else [d]
        x = np.stack(chans).astype(np.float32)
        mask = sl.truth["PD"][0] > 0
        t = np.stack([sl.truth[k][0] for k in self.task.targets]).astype(np.float32)
        labels = sl.labels[0]
        lesion = np.isin(labels, LESION_LABELS.get(bank.phantom, ()))
        # the field of view's content: what a stripping tool or a slab leaves (before the
        # normalisation, which must not learn where its reference sits)
        if bank.phantom == "brain" and rng.uniform() < r.strip:
            keep = brain_mask(labels, int(rng.integers(-r.strip_margin, r.strip_margin + 1)))
            if rng.uniform() < r.partial_strip:
                h, w = keep.shape
                yy, xx = np.mgrid[:h, :w]
                a = rng.uniform(0, 2 * np.pi)
                keep |= (np.cos(a) * (xx - w / 2) + np.sin(a) * (yy - h / 2)) > rng.uniform(0, 0.3) * min(h, w)
            if (keep & mask).sum() > 200:
                x, mask = x * keep, mask & keep
        if rng.uniform() < r.crop:
            by, bx = crop_box(mask, *rng.uniform(0.45, 1.0, 2), *rng.uniform(0, 1, 2))
            if mask[by, bx].sum() > 200:
                x, t, mask, lesion = x[:, by, bx], t[:, by, bx], mask[by, bx], lesion[by, bx]
        if rng.uniform() < r.zoom:
            # coarser pixels (1 to 2 mm from the phantom's 1 mm): the same anatomy in fewer voxels
            f = float(rng.uniform(r.zoom_min, 1.0))
            x, t = (ndimage.zoom(v, (1, f, f), order=1) for v in (x, t))
            mask, lesion = (ndimage.zoom(v.astype(np.float32), f, order=1) > 0.5 for v in (mask, lesion))
            t = t * mask
        x = self._normalise(x, mask, self.task.normalise, self.task.complex_inputs)
        if r.rot90 and rng.uniform() < 0.5:
            x, t, mask, lesion = (np.rot90(v, 1, axes=(-2, -1)) for v in (x, t, mask, lesion))
        x, t, mask, lesion = _crop_flip(rng, x, t, mask, lesion, self.patch, self.flips)
        return {"inputs": torch.from_numpy(x), "acq": torch.from_numpy(self._acq_vector([i.acq for i in imgs])),
                "targets": torch.from_numpy(t), "mask": torch.from_numpy(mask), "lesion": torch.from_numpy(lesion)}


LESION_LABELS = {"brain": (6, 7), "knee": (9,), "liver": ()}


def _crop_flip(rng, x, t, m, les, patch, flips):
    if flips:
        if rng.uniform() < 0.5:
            x, t, m, les = x[..., ::-1], t[..., ::-1], m[..., ::-1], les[..., ::-1]
        if rng.uniform() < 0.5:
            x, t, m, les = x[..., ::-1, :], t[..., ::-1, :], m[..., ::-1, :], les[..., ::-1, :]
    if patch:
        h, w = m.shape
        ph, pw = max(0, patch - h), max(0, patch - w)
        if ph or pw:
            pad = ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2))
            x, t = np.pad(x, pad), np.pad(t, pad)
            m, les = np.pad(m, pad[1:]), np.pad(les, pad[1:])
            h, w = m.shape
        # prefer patches with tissue: a few tries at a random corner
        for _ in range(4):
            i, j = int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))
            if m[i:i + patch, j:j + patch].mean() > 0.25:
                break
        x, t, m, les = x[:, i:i + patch, j:j + patch], t[:, i:i + patch, j:j + patch], m[i:i + patch, j:j + patch], \
            les[i:i + patch, j:j + patch]
    return (np.ascontiguousarray(x, np.float32), np.ascontiguousarray(t, np.float32), np.ascontiguousarray(m),
            np.ascontiguousarray(les))
