"""The prediction tasks: inputs, targets, trained protocol ranges and their physics.

Each task's ``resynthesize`` re-creates the input images from predicted maps with the
known protocol through q2mri.physics: the physics-consistency residual (papers/003,
type 3) compares it with the input. Inputs are normalised images (95th percentile in the
body; jointly for a physical series, per image for different sequences as in papers/001)
that also carry an unknown receive sensitivity, so the comparison allows one global
scale per slice and channel (least squares).
"""
from __future__ import annotations

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
        (InputSpec(_spgr(), {"flip_angle_deg": (3, 35), "tr_ms": (5, 30), "te_ms": (0.03, 3.0)}),
         InputSpec(_spgr(), {"flip_angle_deg": (3, 35), "tr_ms": (5, 30), "te_ms": (0.03, 3.0)})),
        1, ("T1", "PD", "B1"), (3000.0, 1.0, 1.0), ("spgr_fa30",),
        ranges={"flip_angle_deg": (3, 35), "tr_ms": (5, 30)}),
    "t2star": Task(
        "t2star", "T2* from a T1-weighted SPGR plus one T2*-weighted GRE echo (papers/000, knee)",
        ("knee",),
        (InputSpec(_spgr(), {"flip_angle_deg": (10, 30)}),
         InputSpec(Image("gre", "gre_magnitude", Acquisition(flip_angle_deg=16.0, tr_ms=28.0, te_ms=8.8, field_strength_t=3.0)),
                   {"te_ms": (2, 20)})),
        0, ("T2s",), (100.0,), ("spgr_fa20", "gre_e3"), ranges={"te_ms": (2, 20)}),
    "fatwater-ipop": Task(
        "fatwater-ipop", "R2*, B0 and PDFF from a complex in-phase / out-of-phase pair (papers/000, liver)",
        ("liver",),
        (InputSpec(Image("e1", "gre_complex", Acquisition(flip_angle_deg=3.0, tr_ms=11.0, te_ms=1.048, field_strength_t=3.0))),
         InputSpec(Image("e2", "gre_complex", Acquisition(flip_angle_deg=3.0, tr_ms=11.0, te_ms=4.084, field_strength_t=3.0)))),
        0, ("R2s", "B0", "PDFF"), (1000.0, 500.0, 100.0), ("me_e2", "me_e5"), complex_inputs=True,
        ranges={"te_ms": (1.0, 4.2)}),
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


def spgr_resynthesis(maps: dict[str, torch.Tensor], acq: torch.Tensor) -> torch.Tensor:
    """SPGR images (B, n, H, W) from T1, PD, B1 (B, H, W) and acq (B, 5 n) (papers/000 A.4)."""
    outs = []
    for i in range(acq.shape[1] // 5):
        fa, tr, te = (acq[:, 5 * i + k][:, None, None] for k in range(3))
        outs.append(physics.spgr(maps["T1"].clamp_min(1.0), maps["PD"], fa, tr.clamp_min(1e-3), 0.0 * te,
                                 float("inf"), maps.get("B1", torch.ones_like(maps["T1"]))))
    return torch.stack(outs, 1)


RESYNTHESIS: dict[str, Callable] = {"spgr-t1": spgr_resynthesis}


def consistency(task: str, inputs: torch.Tensor, maps: dict[str, torch.Tensor], acq: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Physics-consistency residual map (B, H, W) and scalar per slice (B,), relative to the input.

    Each channel of the re-synthesized image is matched to the input with one least-squares
    scale (the unknown receive gain); absent optional inputs (all-zero channels) are skipped.
    """
    synth = RESYNTHESIS[task](maps, acq)
    x = inputs[:, : synth.shape[1]]
    m = mask[:, None].to(x.dtype)
    present = (x.abs() * m).flatten(2).sum(-1) > 0                                   # (B, n)
    scale = (x * synth * m).flatten(2).sum(-1) / (synth * synth * m).flatten(2).sum(-1).clamp_min(1e-12)
    resid = (x - scale[..., None, None] * synth) * m * present[..., None, None]
    ref = (x.abs() * m).flatten(2).sum(-1).sum(-1) / (m.flatten(2).sum(-1).sum(-1) * present.sum(1).clamp_min(1))
    rmap = resid.abs().sum(1) / present.sum(1).clamp_min(1)[:, None, None] / ref.clamp_min(1e-12)[:, None, None]
    scalar = (rmap * mask).flatten(1).sum(1) / mask.flatten(1).sum(1).clamp_min(1)
    return rmap, scalar
