"""The self-attention CNN of papers/000 (Methods; A.3, Fig. S2).

Hierarchical levels of three convolutional blocks each; a block is 3x3 convolution, then
self-attention (layers.SelfAttention2d), then PReLU. Dense local shortcuts: every block of
a level sees the level input and the outputs of all earlier blocks of that level
(concatenated). Global shortcuts: each decoder level concatenates the encoder output of
its level. Down- and up-sampling by 2x2 convolutions of stride 2 (transposed on the way
up). papers/000 used 5 levels of 16-256 channels for the knee and 3 levels of 16-64 for R2*
and B0.

Where attention runs: full-resolution N^2 attention does not fit in memory (a 256 x 256
slice is 65,536 tokens), so attention is applied on the levels at or below
``attention_from_level``, by default the coarsest only (1/16 of the input size with 5
levels: 256 tokens for a 256 x 256 slice, where every token still sees the whole slice),
and the finer levels use the convolution alone. Measured on 2 CPU threads (5 levels,
width 8, 256 x 256 x 100): adding the 1/8 level's 1,024-token attention costs ~30% more
time, and attention at 1/4 (4,096 tokens) ~8x. The choice is fixed by the configuration, not by the input size, so a model
behaves the same on training patches and on whole slices.
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import Backbone, SelfAttention2d, modulate


class ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int, attention: bool):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.attn = SelfAttention2d(cout) if attention else nn.Identity()
        self.act = nn.PReLU(cout)

    def forward(self, x):
        return self.act(self.attn(self.conv(x)))


class DenseLevel(nn.Module):
    """Three blocks with dense local shortcuts; the output is the last block's."""

    def __init__(self, cin: int, c: int, attention: bool, blocks: int = 3):
        super().__init__()
        self.blocks = nn.ModuleList(ConvBlock(cin + i * c, c, attention) for i in range(blocks))

    def forward(self, x):
        feats = [x]
        for blk in self.blocks:
            feats.append(blk(torch.cat(feats, 1)))
        return feats[-1]


class SelfAttentionCNN(Backbone):
    """papers/000's network: in_ch images -> out_ch channels (see the module docstring)."""

    def __init__(self, in_ch: int, out_ch: int, levels: int = 5, width: int = 16, acq_dim: int = 0,
                 attention_from_level: int | None = None):
        super().__init__()
        ch = self._levels(levels, width, out_ch, acq_dim)
        att_from = levels - 1 if attention_from_level is None else attention_from_level
        self.enc = nn.ModuleList(DenseLevel(in_ch if i == 0 else ch[i], ch[i], i >= att_from) for i in range(levels))
        self.down = nn.ModuleList(nn.Conv2d(ch[i], ch[i + 1], 2, stride=2) for i in range(levels - 1))
        self.up = nn.ModuleList(nn.ConvTranspose2d(ch[i + 1], ch[i], 2, stride=2) for i in range(levels - 1))
        self.dec = nn.ModuleList(DenseLevel(2 * ch[i], ch[i], i >= att_from) for i in range(levels - 1))

    def forward(self, x: torch.Tensor, acq: torch.Tensor | None = None) -> torch.Tensor:
        films = self.films(acq)
        skips = []
        for i in range(self.levels):
            x = modulate(self.enc[i](x), films[i])
            if i < self.levels - 1:
                skips.append(x)
                x = self.down[i](x)
        for i in reversed(range(self.levels - 1)):
            x = self.up[i](x)
            x = modulate(self.dec[i](torch.cat([x, skips[i]], 1)), films[i])
        return self.head(x)
