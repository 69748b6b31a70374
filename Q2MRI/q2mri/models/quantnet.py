"""A map-predicting model: backbone + acquisition conditioning + heteroscedastic head.

The backbone (SelfAttentionCNN of papers/000 or UNet of papers/001) outputs two channels
per target: the mean in normalised units (target / scale; papers/001 divided T1 and T2 by
3 s) and the scale b of a Laplace distribution, the per-voxel uncertainty that papers/003
names an open problem. The predicted SD is sqrt(2) b (Laplace), back in physical units.
Any in-plane size is handled by padding to the backbone's multiple and cropping back.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from .sacnn import SelfAttentionCNN
from .unet import UNet

# Fixed divisors of the acquisition vector (flip angle deg, TR ms, TE ms, TI ms, field T).
ACQ_SCALE = (90.0, 100.0, 10.0, 1000.0, 3.0)


@dataclass
class ModelConfig:
    arch: str                       # "sacnn" (papers/000) or "unet" (papers/001)
    in_channels: int
    targets: list[str]
    target_scales: list[float]      # physical units per normalised unit
    levels: int = 4
    width: int = 16
    acq_dim: int = 0                # 5 per input image when conditioned on the acquisition
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def build_backbone(cfg: ModelConfig) -> nn.Module:
    out = 2 * len(cfg.targets)
    if cfg.arch == "sacnn":
        return SelfAttentionCNN(cfg.in_channels, out, cfg.levels, cfg.width, cfg.acq_dim, **cfg.extra)
    if cfg.arch == "unet":
        return UNet(cfg.in_channels, out, cfg.levels, cfg.width, cfg.acq_dim)
    raise ValueError(f"unknown architecture {cfg.arch!r}")


class QuantNet(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        # Channels-last (NHWC) convolutions are ~1.5x faster on the CPU (oneDNN) and native
        # on CUDA; state dicts load into it unchanged.
        self.backbone = build_backbone(cfg).to(memory_format=torch.channels_last)
        self.register_buffer("scales", torch.tensor(cfg.target_scales, dtype=torch.float32)[None, :, None, None])
        acq_scale = torch.tensor(ACQ_SCALE * max(1, cfg.acq_dim // len(ACQ_SCALE)), dtype=torch.float32)
        self.register_buffer("acq_scale", acq_scale[: cfg.acq_dim] if cfg.acq_dim else torch.ones(0))

    def forward_normalised(self, x: torch.Tensor, acq: torch.Tensor | None = None):
        """(mean, b) in normalised units; H and W must be multiples of the backbone's."""
        a = acq / self.acq_scale if (acq is not None and self.cfg.acq_dim) else None
        raw = self.backbone(x.contiguous(memory_format=torch.channels_last), a)
        k = len(self.cfg.targets)
        mean, s = raw[:, :k], raw[:, k:]
        b = F.softplus(s) + 1e-3
        return mean, b

    def forward(self, x: torch.Tensor, acq: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, sd) in physical units for any H, W (reflect-padded internally)."""
        mean, b = forward_any_size(self, x, acq)
        return mean * self.scales, math.sqrt(2.0) * b * self.scales


def forward_any_size(net, x: torch.Tensor, acq: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """net.forward_normalised on slices of any size: reflect-padded to the backbone's multiple
    (replicated where a side is too small to reflect) and cropped back."""
    h, w = x.shape[-2:]
    m = net.backbone.multiple
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        mode = "reflect" if (ph < h and pw < w) else "replicate"
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode=mode)
    mean, b = net.forward_normalised(x, acq)
    crop = (..., slice(ph // 2, ph // 2 + h), slice(pw // 2, pw // 2 + w))
    return mean[crop], b[crop]
