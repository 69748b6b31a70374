"""Networks with the physics inside (papers/003: physical model as a network layer; closed-form
estimates as inputs; the signal model in the loss).

Every task's network is a U-Net (papers/001, two convolution groups per scale for the CPU
budget) with FiLM acquisition conditioning, fed the normalised images plus closed-form
estimates computed from them by q2mri.physics and q2mri.fitting (features), and followed
by physics layers that turn its outputs into maps (assemble):

- B1 is a smooth field: predicted at the coarsest level (1/16 of the matrix), upsampled
  bicubically and bounded to 0.4-1.6 (1 + 0.6 tanh); it never carries voxel noise.
- The receive sensitivity times the image scale (the "gain") is a smooth field too; PD is
  then the image divided by gain times the signal equation of the predicted T1 and B1
  (physics.spgr), so the maps re-synthesize the input by construction.
- spgr-t1 with two flip angles: T1 comes out of the DESPOT1 closed form (fitting.vfa.despot1)
  with the predicted B1, a differentiable layer; the network adds a residual of at most
  +-15 % (in log T1). With one image, T1 is the network's (an ensemble of heads).
- t2star: the apparent T2* of the echo ratio, -TE / ln(S_GRE / S_SPGR), is an input; the
  output is centred on the ratio with the predicted T1, B1 and PDFF weightings divided out.
- fatwater-ipop: the two-point Dixon fat fraction (fitting.dixon) and the echo phase
  difference are inputs; PDFF = 100 sigmoid(.) is bounded by construction (the heads' median;
  each head learns through its logit, aux_loss).
- brain-t1t2: the MPRAGE/GRE and FLAIR/GRE log ratios (PD and receive cancel) are inputs.
- Uncertainty: a Laplace scale per map (aleatoric) plus the spread of an ensemble of output
  heads trained on different bootstrap masks of the voxels (epistemic), combined as
  b = sqrt((c1 b_ale)^2 + (c2 b_epi)^2), with c1, c2 fitted on held-out calibration cases
  after training (models.calibrate) so that 68 % and 95 % intervals hold what they say.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .. import physics
from ..physics.fat import in_out_phase_echo_times_ms
from ..fitting.dixon import dixon_fractions
from ..fitting.vfa import despot1
from .quantnet import ACQ_SCALE, ModelConfig, forward_any_size
from .unet import UNet

LOG_T1_MS = math.log(1000.0)


def _bounded(h: torch.Tensor, limit: float) -> torch.Tensor:
    return limit * torch.tanh(h / limit)


def _acq(acq: torch.Tensor, i: int, k: int) -> torch.Tensor:
    """Field k (0 FA deg, 1 TR ms, 2 TE ms, 3 TI ms, 4 field T) of input i, as (B, 1, 1)."""
    return acq[:, 5 * i + k][:, None, None]


class TaskPhysics:
    """What a task adds around the backbone: input features and the physics assembly."""
    n_features = 0
    full_channels = 0
    coarse_channels = 0

    def __init__(self, targets: list[str], ensemble: int):
        self.targets, self.k = targets, ensemble

    def features(self, x: torch.Tensor, acq: torch.Tensor) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def assemble(self, x, acq, ctx, full, coarse) -> tuple[dict, dict, dict]:
        """(maps in physical units, log-b per map, ensemble heads per map (B, K, H, W))."""
        raise NotImplementedError


def _smooth_b1(coarse_ch: torch.Tensor) -> torch.Tensor:
    return 1.0 + 0.6 * torch.tanh(coarse_ch)


def _pd_from_image(s: torch.Tensor, gain: torch.Tensor, t1: torch.Tensor, fa, tr, b1: torch.Tensor) -> torch.Tensor:
    """PD = S / (gain * spgr(T1, PD = 1, FA, TR, B1)) (papers/000 A.4; UTE: TE -> 0)."""
    e = physics.spgr(t1, 1.0, fa, tr, 0.0, math.inf, b1)
    return s / (gain * e).clamp_min(1e-6)


class SpgrPhysics(TaskPhysics):
    n_features = 2

    def __init__(self, targets, ensemble):
        super().__init__(targets, ensemble)
        self.full_channels = 2 * ensemble + 2
        self.coarse_channels = 3

    def features(self, x, acq):
        two = (acq[:, 5] > 0).to(x.dtype)[:, None, None]                  # second flip angle present
        b, _, h, w = x.shape
        if not bool(two.any()):                                           # one image everywhere: no DESPOT1
            return torch.stack([torch.zeros_like(x[:, 0]), two.expand(b, h, w)], 1), {"two": two, "shape": (b, h, w)}
        y = x[:, :2].permute(0, 2, 3, 1).reshape(-1, 2).abs() + 1e-6
        fa = torch.stack([acq[:, 0], torch.where(acq[:, 5] > 0, acq[:, 5], acq[:, 0] + 1.0)], -1)
        alpha = torch.deg2rad(fa)[:, None, None, :].expand(b, h, w, 2).reshape(-1, 2)
        tr = acq[:, 1][:, None, None].expand(b, h, w).reshape(-1)
        _, t1 = despot1(y, alpha, tr)                                      # B1 = 1: the apparent T1
        lt1 = (torch.log(t1.reshape(b, h, w).clamp(30.0, 10000.0)) - LOG_T1_MS) * two
        feats = torch.stack([lt1, two.expand(b, h, w)], 1)
        return feats, {"two": two, "y": y, "fa": fa, "tr": tr, "shape": (b, h, w)}

    def assemble(self, x, acq, ctx, full, coarse):
        k = self.k
        b, h, w = ctx["shape"]
        b1 = _smooth_b1(coarse[:, 0])
        gain = torch.exp(coarse[:, 1])
        heads = LOG_T1_MS + _bounded(full[:, :k], 2.5)                     # one image: the network's T1
        if "y" in ctx:
            alpha = torch.deg2rad(ctx["fa"])[:, None, None, :].expand(b, h, w, 2).reshape(-1, 2) * b1.reshape(-1, 1)
            _, t1d = despot1(ctx["y"], alpha, ctx["tr"])                    # DESPOT1 with the predicted B1
            log_t1d = torch.log(t1d.reshape(b, h, w).clamp(30.0, 10000.0))
            two = log_t1d[:, None] + 0.15 * torch.tanh(full[:, k:2 * k])
            heads = torch.where(ctx["two"][:, None] > 0, two, heads)       # (B, K, H, W) log T1
        t1 = torch.exp(heads.mean(1))
        pd = _pd_from_image(x[:, 0], gain, t1, _acq(acq, 0, 0), _acq(acq, 0, 1), b1)
        maps = {"T1": t1, "PD": pd, "B1": b1}
        logb = {"T1": full[:, 2 * k], "PD": full[:, 2 * k + 1], "B1": coarse[:, 2]}
        return maps, logb, {"T1": torch.exp(heads)}


def _t2star_from_ratio(x, acq, t1, b1, pdff) -> torch.Tensor:
    """T2* = -TE / ln((S_GRE / S_SPGR) / q), q = |S_GRE| / |S_SPGR| of the signal model with no T2*
    decay (papers/000 A.4 SPGR; UTE SPGR, so only the GRE echo decays); within 0.5-300 ms."""
    from .tasks import _gre_magnitude
    w = {"T1": t1, "PD": torch.ones_like(t1), "B1": b1}
    q = _gre_magnitude(w, _acq(acq, 1, 0), _acq(acq, 1, 1), _acq(acq, 1, 2), None, pdff) / \
        _gre_magnitude(w, _acq(acq, 0, 0), _acq(acq, 0, 1), _acq(acq, 0, 2), None, pdff).clamp_min(1e-6)
    ratio = (x[:, 1].abs() + 1e-6) / (x[:, 0].abs() + 1e-6)
    r = (torch.log(ratio) - torch.log(q.clamp_min(1e-6))).clamp(-8.0, -1e-3)
    return (-_acq(acq, 1, 2) / r).clamp(0.5, 300.0)


class T2starPhysics(TaskPhysics):
    """T1w SPGR (UTE) + one T2*-weighted GRE echo -> T2s, T1, PD, B1, PDFF."""
    n_features = 2

    def __init__(self, targets, ensemble):
        super().__init__(targets, ensemble)
        self.full_channels = ensemble + 1 + 1 + 5
        self.coarse_channels = 3

    def features(self, x, acq):
        s0, s1 = x[:, 0].abs() + 1e-6, x[:, 1].abs() + 1e-6
        r = torch.log(s1 / s0).clamp(-8.0, -1e-3)
        t2s_app = (-_acq(acq, 1, 2) / r).clamp(0.5, 300.0)                # -TE / ln(S_GRE / S_SPGR)
        lt = torch.log(t2s_app / 30.0)
        return torch.stack([lt, r], 1), {"lt": lt}

    def assemble(self, x, acq, ctx, full, coarse):
        k = self.k
        t1 = torch.exp(LOG_T1_MS + _bounded(full[:, k], 2.5))
        pdff = 100.0 * torch.sigmoid(full[:, k + 1])
        b1 = _smooth_b1(coarse[:, 0])
        # The echo ratio carries T2* only once the two sequences' T1, B1 and fat weightings are
        # divided out: S_GRE / S_SPGR = q(T1, B1, PDFF) exp(-TE / T2*), q from the same signal
        # model the inputs are re-synthesized with (tasks._gre_magnitude, physics.spgr_water_fat).
        # Without it the ratio of a long-T1 tissue (muscle) at these protocols exceeds 1 and the
        # apparent T2* saturates. T2* is this closed form with the predicted T1, B1 and PDFF, plus a
        # bounded residual per ensemble head (noise floor of short T2*, the weak decay of fluid).
        t2s_cf = _t2star_from_ratio(x, acq, t1, b1, pdff)
        heads = torch.log(t2s_cf)[:, None] + _bounded(full[:, :k], 1.5)
        t2s = torch.exp(heads.mean(1))
        gain = torch.exp(coarse[:, 1])
        pd = _pd_from_image(x[:, 0], gain, t1, _acq(acq, 0, 0), _acq(acq, 0, 1), b1)
        maps = {"T2s": t2s, "T1": t1, "PD": pd, "B1": b1, "PDFF": pdff}
        lb = full[:, k + 2:k + 7]
        logb = {"T2s": lb[:, 0], "T1": lb[:, 1], "PD": lb[:, 2], "PDFF": lb[:, 3], "B1": coarse[:, 2]}
        return maps, logb, {"T2s": torch.exp(heads)}


class FatWaterPhysics(TaskPhysics):
    """Complex in-phase / out-of-phase pair -> R2s, B0, PDFF."""
    n_features = 6

    def __init__(self, targets, ensemble):
        super().__init__(targets, ensemble)
        self.full_channels = 2 * ensemble + 1 + 3
        self.coarse_channels = 0

    def features(self, x, acq):
        s1 = torch.complex(x[:, 0], x[:, 1])
        s2 = torch.complex(x[:, 2], x[:, 3])
        m1, m2 = s1.abs() + 1e-6, s2.abs() + 1e-6
        field = acq[:, 4].clamp_min(0.1)
        # which echo is nearer in phase with the main fat peak (physics.fat) at this field
        period = 2.0 * in_out_phase_echo_times_ms(1.0)[0] / field[:, None, None]           # ms, one fat-water cycle
        ph1 = torch.cos(2 * math.pi * acq[:, 2][:, None, None] / period)
        ph2 = torch.cos(2 * math.pi * acq[:, 7][:, None, None] / period)
        ip_first = ph1 > ph2
        ip, op = torch.where(ip_first, m1, m2), torch.where(ip_first, m2, m1)
        ff = dixon_fractions(ip, op)[2] / 100.0
        dphi = torch.angle(s2 * s1.conj())
        feats = torch.stack([ff, torch.cos(dphi), torch.sin(dphi), torch.log(m2 / m1).clamp(-5, 5),
                             ph1.expand_as(ff), ph2.expand_as(ff)], 1)
        return feats, {"ff": ff}

    def assemble(self, x, acq, ctx, full, coarse):
        k = self.k
        ff = ctx["ff"].clamp(1e-3, 1 - 1e-3)
        logit = torch.log(ff / (1 - ff))[:, None] + full[:, :k]
        self.logits = {"PDFF": logit}                                    # for the heads' own loss
        pdff_heads = 100.0 * torch.sigmoid(logit)                        # 0-100 % by construction
        # The median of the heads, not their mean: two echoes leave the fat-water ambiguity, and a
        # head on the wrong side of it moves the mean by up to 25 pp (one stuck head capped the mean
        # at 75 % in fat before the heads learned through their logits, aux_loss). Its disagreement
        # still enters the SD (the heads' spread).
        srt = pdff_heads.sort(1).values
        pdff = srt[:, (k - 1) // 2: k // 2 + 1].mean(1)
        r2s_heads = 1000.0 * torch.exp(_bounded(full[:, k:2 * k], 4.0)) / 30.0    # 1/s, centred at 33 1/s
        r2s = r2s_heads.mean(1)
        b0 = 500.0 * full[:, 2 * k]
        maps = {"R2s": r2s, "B0": b0, "PDFF": pdff}
        logb = {"R2s": full[:, 2 * k + 1], "B0": full[:, 2 * k + 2], "PDFF": full[:, 2 * k + 3]}
        return maps, logb, {"R2s": r2s_heads, "PDFF": pdff_heads}


class BrainPhysics(TaskPhysics):
    """MPRAGE (+ GRE, FLAIR) -> T1, T2, PD. The MPRAGE/GRE and FLAIR/GRE log ratios cancel PD
    and the receive field (one scale per series remains: each ratio is centred on its median)."""
    n_features = 3

    def __init__(self, targets, ensemble):
        super().__init__(targets, ensemble)
        self.full_channels = 2 * ensemble + 1 + 3
        self.coarse_channels = 0

    @staticmethod
    def _centred_log_ratio(a, b):
        lr = torch.log((a.abs() + 1e-4) / (b.abs() + 1e-4))
        inside = (a.abs() > 0.05) & (b.abs() > 0.05)
        med = torch.stack([lr[i][inside[i]].median() if inside[i].any() else lr.new_zeros(()) for i in range(lr.shape[0])])
        return (lr - med[:, None, None]).clamp(-4, 4) * inside

    def features(self, x, acq):
        gre = (acq[:, 5] > 0).to(x.dtype)[:, None, None]
        flair = (acq[:, 11] > 0).to(x.dtype)[:, None, None]
        f1 = self._centred_log_ratio(x[:, 0], x[:, 1]) * gre
        f2 = self._centred_log_ratio(x[:, 2], x[:, 1]) * gre * flair
        return torch.stack([f1, f2, (gre + flair).expand_as(f1)], 1), {}

    def assemble(self, x, acq, ctx, full, coarse):
        k = self.k
        t1_heads = torch.exp(LOG_T1_MS + _bounded(full[:, :k], 2.5))
        t2_heads = torch.exp(math.log(80.0) + _bounded(full[:, k:2 * k], 3.5))
        maps = {"T1": t1_heads.mean(1), "T2": t2_heads.mean(1), "PD": torch.sigmoid(full[:, 2 * k])}
        logb = {"T1": full[:, 2 * k + 1], "T2": full[:, 2 * k + 2], "PD": full[:, 2 * k + 3]}
        return maps, logb, {"T1": t1_heads, "T2": t2_heads}


TASK_PHYSICS = {"spgr-t1": SpgrPhysics, "t2star": T2starPhysics, "fatwater-ipop": FatWaterPhysics,
                "brain-t1t2": BrainPhysics}


class PhysicsNet(nn.Module):
    """QuantNet's interface (forward_normalised, forward) around a task's physics (see the module docstring)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        task = cfg.extra["task"]
        ens = int(cfg.extra.get("ensemble", 4))
        self.phys = TASK_PHYSICS[task](list(cfg.targets), ens)
        self.backbone = UNet(cfg.in_channels + self.phys.n_features, max(1, self.phys.full_channels), cfg.levels,
                             cfg.width, cfg.acq_dim, convs=int(cfg.extra.get("convs", 2))).to(memory_format=torch.channels_last)
        self.coarse = nn.Conv2d(self.backbone.channels[-1], self.phys.coarse_channels, 1) if self.phys.coarse_channels else None
        if self.coarse is not None:            # start at B1 = 1 and unit gain
            nn.init.zeros_(self.coarse.weight)
            nn.init.zeros_(self.coarse.bias)
        k = len(cfg.targets)
        self.register_buffer("scales", torch.tensor(cfg.target_scales, dtype=torch.float32)[None, :, None, None])
        acq_scale = torch.tensor(ACQ_SCALE * max(1, cfg.acq_dim // len(ACQ_SCALE)), dtype=torch.float32)
        self.register_buffer("acq_scale", acq_scale[: cfg.acq_dim] if cfg.acq_dim else torch.ones(0))
        # calibration of the uncertainty (models.calibrate): aleatoric and epistemic factors per map
        self.register_buffer("sd_scale", torch.ones(k))
        self.register_buffer("epi_scale", torch.ones(k))
        self._aux: dict = {}

    def forward_normalised(self, x: torch.Tensor, acq: torch.Tensor | None = None):
        feats, ctx = self.phys.features(x, acq)
        a = acq / self.acq_scale if self.cfg.acq_dim else None
        inp = torch.cat([x, feats], 1).contiguous(memory_format=torch.channels_last)
        full_f, coarse_f = self.backbone.features(inp, a)
        full = self.backbone.head(full_f).float()
        coarse = None
        if self.coarse is not None:
            coarse = F.interpolate(self.coarse(coarse_f).float(), size=x.shape[-2:], mode="bicubic", align_corners=False)
        maps, logb, heads = self.phys.assemble(x.float(), acq.float(), ctx, full, coarse)
        scales = self.scales[0, :, 0, 0]
        mean = torch.stack([maps[t] for t in self.cfg.targets], 1) / self.scales
        b = torch.stack([F.softplus(logb[t]) + 1e-3 for t in self.cfg.targets], 1)
        # the spread of the heads; sqrt(var + eps), since std's gradient is infinite where heads agree
        epi = torch.stack([torch.sqrt(heads[t].var(1) + 1e-12) / scales[i] if t in heads else torch.zeros_like(b[:, i])
                           for i, t in enumerate(self.cfg.targets)], 1)
        b = torch.sqrt((self.sd_scale[None, :, None, None] * b) ** 2 + (self.epi_scale[None, :, None, None] * epi) ** 2)
        if self.training:
            self._aux = {t: heads[t] / scales[self.cfg.targets.index(t)] for t in heads}
        return mean, b

    def aux_loss(self, yn: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Each ensemble head learns on its own bootstrap half of the voxels, so that the heads
        disagree where the data do not decide (the epistemic spread).

        A head that is a sigmoid (PDFF) learns through its logit, with the binary cross-entropy
        against the true fraction: its gradient there is (p - y), which never vanishes. With an
        L1 on the fraction the gradient carries sigmoid' and dies where the head saturates; three
        of four fat-water heads stayed stuck at 0 % in liver or fat that way (the logit's base,
        the magnitude Dixon fraction, is clamped to 1e-3 where R2* decay makes it negative)."""
        loss = yn.new_zeros(())
        logits = getattr(self.phys, "logits", {})
        for t, h in self._aux.items():
            i = self.cfg.targets.index(t)
            keep = (torch.rand_like(h) < 0.6) & mask[:, None]
            if t in logits:
                y = (yn[:, i:i + 1] * self.scales[0, i, 0, 0] / 100.0).clamp(0, 1).expand_as(h)
                err = F.binary_cross_entropy_with_logits(logits[t].float(), y, reduction="none")
            else:
                err = (h - yn[:, i:i + 1]).abs()
            loss = loss + (err * keep).sum() / keep.sum().clamp_min(1)
        return loss

    def forward(self, x: torch.Tensor, acq: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, sd) in physical units for any H, W (reflect-padded internally)."""
        mean, b = forward_any_size(self, x, acq)
        return mean * self.scales, math.sqrt(2.0) * b * self.scales
