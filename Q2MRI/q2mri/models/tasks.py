"""The prediction tasks: inputs, targets, trained protocol ranges and their physics.

Each task's ``resynthesize`` re-creates the input images from predicted maps with the
known protocol through q2mri.physics: the physics-consistency residual (papers/003,
type 3) compares it with the input. Inputs are normalised images (95th percentile in the
body; jointly for a physical series, per image for different sequences as in papers/001)
that also carry an unknown receive sensitivity, so the comparison allows one global
scale per slice and channel (least squares).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from .. import physics
from ..acquisition import Acquisition
from ..phantoms.dataset import InputSpec
from ..phantoms.protocols import Image


def _spgr(fa=20.0, tr=20.0, te=0.032):
    return Image("spgr", "spgr", Acquisition(flip_angle_deg=fa, tr_ms=tr, te_ms=te, field_strength_t=3.0, sequence="spgr"))


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    phantoms: tuple[str, ...]
    inputs: tuple[InputSpec, ...]         # what training draws
    optional_inputs: int                  # trailing inputs that may be absent (zero channel and acq)
    targets: tuple[str, ...]
    target_scales: tuple[float, ...]
    folder_inputs: tuple[str, ...]        # default image stems in a case folder
    complex_inputs: bool = False
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)   # trained protocol range, per field
    normalise: str = "joint"              # "joint" keeps ratios inside a physical series; "channel" per image
    shared: tuple[str, ...] = ()          # acquisition fields every input of a series shares with the first
    field_range: tuple[float, float] = (3.0, 3.0)   # field strengths (T) the training saw
    refuse_far: bool = False              # far outside the trained ranges: refuse (not just warn)

    def draw(self, rng) -> list[Image]:
        """One protocol for a training sample: each input's ranges, with the series' shared
        fields (e.g. TR and TE of a VFA series) taken from the first input, and two flip
        angles of a series at least 5 degrees apart (else the series carries no T1)."""
        imgs = [spec.draw(rng) for spec in self.inputs]
        if self.shared:
            first = imgs[0].acq
            imgs = [imgs[0]] + [dataclasses.replace(im, acq=im.acq.with_overrides(**{f: getattr(first, f) for f in self.shared}))
                                for im in imgs[1:]]
            if "flip_angle_deg" in self.inputs[0].ranges and len(imgs) > 1:
                a, b = imgs[0].acq.flip_angle_deg, imgs[1].acq.flip_angle_deg
                if abs(a - b) < 5.0:
                    b = a + 10.0 if a < 25.0 else a - 10.0
                    imgs[1] = dataclasses.replace(imgs[1], acq=imgs[1].acq.with_overrides(flip_angle_deg=b))
        return imgs

    @property
    def channels(self) -> int:
        return len(self.inputs) * (2 if self.complex_inputs else 1)

    @property
    def acq_dim(self) -> int:
        return 5 * len(self.inputs)


TASKS: dict[str, Task] = {
    "spgr-t1": Task(
        "spgr-t1", "T1, PD and B1 from one SPGR magnitude image, or two at different flip angles (papers/000)",
        ("knee", "brain"),
        # UTE readout (TE 0.032 ms) as in papers/000, and the short TEs of brain VFA protocols:
        # a series' images share TR and TE, so T2* decay cancels in DESPOT1 (it biases PD only)
        (InputSpec(_spgr(), {"flip_angle_deg": (3, 35), "tr_ms": (5, 30), "te_ms": (0.02, 4.0)}),
         InputSpec(_spgr(), {"flip_angle_deg": (3, 35)})),
        1, ("T1", "PD", "B1"), (3000.0, 1.0, 1.0), ("spgr_fa30",),
        ranges={"flip_angle_deg": (3, 35), "tr_ms": (5, 30), "te_ms": (0.0, 4.0)}, shared=("tr_ms", "te_ms")),
    "t2star": Task(
        "t2star", "T2* from a T1-weighted SPGR plus one T2*-weighted GRE echo (papers/000, knee)",
        ("knee",),
        (InputSpec(_spgr(), {"flip_angle_deg": (10, 30)}),
         InputSpec(Image("gre", "gre_magnitude", Acquisition(flip_angle_deg=16.0, tr_ms=28.0, te_ms=8.8, field_strength_t=3.0)),
                   {"te_ms": (2, 20)})),
        # T1, PD, B1 and PDFF are auxiliary outputs: with them both inputs can be re-synthesized
        0, ("T2s", "T1", "PD", "B1", "PDFF"), (100.0, 3000.0, 1.0, 1.0, 100.0), ("spgr_fa20", "gre_e3"),
        ranges={"te_ms": (2, 20)}),
    "fatwater-ipop": Task(
        "fatwater-ipop", "R2*, B0 and PDFF from a complex in-phase / out-of-phase pair (papers/000, liver)",
        ("liver",),
        (InputSpec(Image("e1", "gre_complex", Acquisition(flip_angle_deg=3.0, tr_ms=11.0, te_ms=1.048, field_strength_t=3.0))),
         InputSpec(Image("e2", "gre_complex", Acquisition(flip_angle_deg=3.0, tr_ms=11.0, te_ms=4.084, field_strength_t=3.0)))),
        0, ("R2s", "B0", "PDFF"), (1000.0, 500.0, 100.0), ("me_e2", "me_e5"), complex_inputs=True,
        ranges={"te_ms": (1.0, 4.2)}, shared=("flip_angle_deg", "tr_ms"), refuse_far=True),
    "brain-t1t2": Task(
        "brain-t1t2", "T1, T2 and PD from MPRAGE, with optional GRE and FLAIR (papers/001, 002)",
        ("brain",),
        (InputSpec(Image("mprage", "mprage", Acquisition(flip_angle_deg=9.0, tr_ms=1900.0, ti_ms=900.0, te_ms=2.93,
                                                         echo_spacing_ms=7.0, n_excitations=176, field_strength_t=3.0)),
                   {"flip_angle_deg": (7, 11), "ti_ms": (800, 1100)}),
         InputSpec(Image("gre", "spgr", Acquisition(flip_angle_deg=18.0, tr_ms=3.0, te_ms=1.5, field_strength_t=3.0))),
         InputSpec(Image("flair", "flair", Acquisition(tr_ms=4800.0, ti_ms=1800.0, te_ms=352.0, field_strength_t=3.0)))),
        2, ("T1", "T2", "PD"), (3000.0, 3000.0, 1.0), ("mprage", "gre", "flair"),
        ranges={"ti_ms": (800, 1100)}, normalise="channel"),   # papers/001: each contrast on its own
}


def _gre_magnitude(maps: dict[str, torch.Tensor], fa, tr, te, t2s=None, pdff=None) -> torch.Tensor:
    """|S| of physics.spgr_water_fat, the SPGR/GRE model the phantoms image with, at each
    slice's own TE. Slices sharing a TE go through one call (at prediction all do), so the
    cost is linear in the batch, not quadratic as one call with every TE as an echo axis."""
    t1 = maps["T1"].clamp_min(1.0)
    if t2s is None and pdff is None:
        # water only, no decay: |S| is spgr itself (spgr_water_fat with PDFF = 0 and R2* = 0),
        # without the complex fat phasors that cost a third of a spgr-t1 prediction
        return physics.spgr(t1, maps["PD"], fa, tr.clamp_min(1e-3), 0.0, math.inf, maps.get("B1", 1.0))
    f = torch.zeros_like(t1) if pdff is None else pdff.clamp(0, 100)
    r2s = torch.zeros_like(t1) if t2s is None else 1000.0 / t2s.clamp_min(0.05)
    b1 = maps.get("B1", torch.ones_like(t1))
    te = te.reshape(-1)
    out = torch.empty_like(t1)
    for v in torch.unique(te):
        sel = te == v
        s = physics.spgr_water_fat(t1[sel], maps["PD"][sel], f[sel], r2s[sel], 0.0 * r2s[sel], fa[sel],
                                   tr[sel].clamp_min(1e-3), v.reshape(1), b1[sel])
        out[sel] = s[..., 0].abs()
    return out


def spgr_resynthesis(maps: dict[str, torch.Tensor], acq: torch.Tensor) -> torch.Tensor:
    """SPGR images (B, n, H, W) from T1, PD, B1 (B, H, W) and acq (B, 5 n) (papers/000 A.4; UTE)."""
    outs = []
    for i in range(acq.shape[1] // 5):
        fa, tr, te = (acq[:, 5 * i + k][:, None, None] for k in range(3))
        outs.append(_gre_magnitude(maps, fa, tr, te))
    return torch.stack(outs, 1)


def t2star_resynthesis(maps: dict[str, torch.Tensor], acq: torch.Tensor) -> torch.Tensor:
    """The T1w SPGR and the T2*w GRE echo from T2*, T1, PD, B1 and PDFF."""
    outs = []
    for i in range(2):
        fa, tr, te = (acq[:, 5 * i + k][:, None, None] for k in range(3))
        outs.append(_gre_magnitude(maps, fa, tr, te, maps["T2s"], maps["PDFF"]))
    return torch.stack(outs, 1)


def brain_resynthesis(maps: dict[str, torch.Tensor], acq: torch.Tensor) -> torch.Tensor:
    """MPRAGE, GRE and FLAIR from T1, T2, PD (B1 = 1; MPRAGE readout of the task's base protocol)."""
    t1, t2, pd = maps["T1"].clamp_min(1.0), maps["T2"].clamp_min(1.0), maps["PD"]
    base = TASKS["brain-t1t2"].inputs[0].image.acq
    v = lambda i, k: acq[:, 5 * i + k][:, None, None]
    mp = physics.mprage(t1, pd, v(0, 0), float(base.tr_ms), float(base.ti_ms), float(base.echo_spacing_ms),
                        int(base.n_excitations))
    gre = physics.spgr(t1, pd, v(1, 0), v(1, 1).clamp_min(1e-3))
    flair = physics.flair(t1, t2, pd, v(2, 3), v(2, 1).clamp_min(1e-3), v(2, 2))
    return torch.stack([mp, gre, flair], 1)


RESYNTHESIS: dict[str, Callable] = {"spgr-t1": spgr_resynthesis, "t2star": t2star_resynthesis,
                                    "brain-t1t2": brain_resynthesis, "fatwater-ipop": None}


def fatwater_consistency(inputs: torch.Tensor, maps: dict[str, torch.Tensor], acq: torch.Tensor,
                         mask: torch.Tensor, field_t: float = 3.0):
    """Echo 2 predicted from echo 1 through the confounder model (physics.gre_complex):
    S2 = S1 G(t2) / G(t1) with G(t) = ((1 - f) + f c(t)) exp((-R2* + i 2 pi B0) t), f = PDFF;
    the unknown complex amplitude and phase of the voxel cancel."""
    s1 = torch.complex(inputs[:, 0], inputs[:, 1])
    s2 = torch.complex(inputs[:, 2], inputs[:, 3])
    te1, te2 = acq[:, 2][:, None, None], acq[:, 7][:, None, None]
    f = (maps["PDFF"] / 100.0).clamp(0, 1)
    r2s = maps["R2s"].clamp_min(0)
    g1 = physics.gre_complex(1 - f, f, r2s, maps["B0"], te1.flatten(), field_t)
    g2 = physics.gre_complex(1 - f, f, r2s, maps["B0"], te2.flatten(), field_t)
    # gre_complex puts the echo axis last; each slice of the batch has its own TE: the diagonal
    idx = torch.arange(s1.shape[0], device=s1.device)
    g1, g2 = g1[idx, ..., idx], g2[idx, ..., idx]
    pred2 = s1 * g2 / torch.where(g1.abs() > 1e-6, g1, torch.ones_like(g1))
    m = mask.to(inputs.dtype)
    ref = (s2.abs() * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp_min(1)
    rmap = (s2 - pred2).abs() * m / ref.clamp_min(1e-12)[:, None, None]
    return rmap, (rmap * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp_min(1)


def _smooth_gain(x: torch.Tensor, synth: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Least-squares smooth gain field g (quadratic in the image coordinates) per slice and
    channel with x ~ g * synth: the receive sensitivity times the normalisation constant,
    which the maps do not (and should not) explain."""
    b, c, h, w = x.shape
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype),
                            torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype), indexing="ij")
    basis = torch.stack([torch.ones_like(yy), yy, xx, yy * yy, xx * xx, yy * xx])            # (6, H, W)
    a = basis[None, None] * synth[:, :, None]                                                 # (B, C, 6, H, W)
    wgt = m[:, :, None]
    ata = torch.einsum("bckhw,bclhw->bckl", a * wgt, a)
    atb = torch.einsum("bckhw,bchw->bck", a * wgt, x)
    eye = torch.eye(6, device=x.device, dtype=x.dtype) * 1e-8 * ata.diagonal(dim1=-2, dim2=-1).mean(-1, keepdim=True)[..., None]
    coef = torch.linalg.solve(ata + eye + torch.eye(6, device=x.device, dtype=x.dtype) * 1e-12, atb)  # (B, C, 6)
    return torch.einsum("bck,khw->bchw", coef, basis)


def consistency(task: str, inputs: torch.Tensor, maps: dict[str, torch.Tensor], acq: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Physics-consistency residual map (B, H, W) and scalar per slice (B,), relative to the input.

    Each channel of the re-synthesized image is matched to the input through a smooth gain
    field (_smooth_gain: the receive sensitivity is smooth, tissue contrast is not), and the
    residual is what the maps cannot explain. Absent optional inputs (all-zero channels)
    are skipped.
    """
    if task == "fatwater-ipop":
        return fatwater_consistency(inputs, maps, acq, mask)
    synth = RESYNTHESIS[task](maps, acq)
    x = inputs[:, : synth.shape[1]]
    m = mask[:, None].to(x.dtype).expand_as(x)
    present = (x.abs() * m).flatten(2).sum(-1) > 0                                   # (B, n)
    gain = _smooth_gain(x, synth, m)
    resid = (x - gain * synth) * m * present[..., None, None]
    ref = (x.abs() * m).flatten(2).sum(-1).sum(-1) / (m.flatten(2).sum(-1).sum(-1)).clamp_min(1)
    rmap = resid.abs().sum(1) / present.sum(1).clamp_min(1)[:, None, None] / ref.clamp_min(1e-12)[:, None, None]
    scalar = (rmap * mask).flatten(1).sum(1) / mask.flatten(1).sum(1).clamp_min(1)
    return rmap, scalar
