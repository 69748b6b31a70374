"""The 2D U-Net of papers/001 (section 2.3, Fig. 1).

Four down- and four up-sampling steps; at every scale three groups of 3x3 convolution +
batch normalisation + ReLU; 2x2 average pooling on the way down; bilinear up-sampling
followed by a 2x2 convolution on the way up; long skip connections (concatenation).
papers/001 fed the three weighted images (MPRAGE, GRE, FLAIR) as channels and took T1
and T2 as output channels.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .layers import Backbone, modulate


def conv_groups(cin: int, c: int, n: int = 3) -> nn.Sequential:
    layers = []
    for i in range(n):
        layers += [nn.Conv2d(cin if i == 0 else c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def fuse_batchnorm(net: nn.Module) -> nn.Module:
    """A copy of `net` for inference with each Conv2d -> BatchNorm2d pair of conv_groups folded
    into one convolution (torch.nn.utils.fusion; eval-mode statistics), which drops a tenth of
    a CPU prediction's time. Outputs agree to float rounding; the copy must not be trained."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    from .registry import build_model
    # a fresh network from the configuration and weights, not a deepcopy: a network refined on the
    # scan (papers/004) still holds its last training step's tensors, which deepcopy refuses
    out = build_model(net.cfg)
    out.load_state_dict(net.state_dict())
    out = out.to(next(net.parameters()).device).eval()
    for seq in out.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        for i in range(len(seq) - 1):
            if isinstance(seq[i], nn.Conv2d) and isinstance(seq[i + 1], nn.BatchNorm2d):
                seq[i] = fuse_conv_bn_eval(seq[i], seq[i + 1])
                seq[i + 1] = nn.Identity()
    return out


class UpConv(nn.Module):
    """Bilinear x2 up-sampling, then a 2x2 convolution (padded right/bottom to keep the size)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 2)

    def forward(self, x):
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="replicate"))


class UNet(Backbone):
    """``convs`` groups per scale (papers/001: three; the physics networks use two, which the
    CPU speed target of models/physicsnet.py needs)."""

    def __init__(self, in_ch: int, out_ch: int, levels: int = 5, width: int = 32, acq_dim: int = 0, convs: int = 3):
        super().__init__()
        ch = self._levels(levels, width, out_ch, acq_dim)
        self.channels = ch
        self.enc = nn.ModuleList(conv_groups(in_ch if i == 0 else ch[i - 1], ch[i], convs) for i in range(levels))
        self.up = nn.ModuleList(UpConv(ch[i + 1], ch[i]) for i in range(levels - 1))
        self.dec = nn.ModuleList(conv_groups(2 * ch[i], ch[i], convs) for i in range(levels - 1))

    def features(self, x: torch.Tensor, acq: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(full-resolution decoder features, features of the coarsest level)."""
        films = self.films(acq)
        skips = []
        for i in range(self.levels):
            if i > 0:
                x = F.avg_pool2d(x, 2)
            x = modulate(self.enc[i](x), films[i])
            skips.append(x)
        x = skips.pop()
        coarse = x
        for i in reversed(range(self.levels - 1)):
            x = modulate(self.dec[i](torch.cat([self.up[i](x), skips[i]], 1)), films[i])
        return x, coarse

    def forward(self, x: torch.Tensor, acq: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, acq)[0])
