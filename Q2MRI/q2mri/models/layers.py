"""Building blocks: the self-attention layer of papers/000 and FiLM acquisition conditioning."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class SelfAttention2d(nn.Module):
    """Non-local self-attention of papers/000 (A.3, Fig. S2b).

    Relevance of pixel j to pixel i is the embedded Gaussian s(X_i, X_j) = exp((W_f X_i)^T
    (W_g X_j)), normalised over j (a softmax); the feature of pixel j is h(X_j) = W_h X_j;
    the attention map is Y_i = sum_j softmax_j(s) h(X_j), and the block output balances the
    local and non-local terms with a learnable scalar, Z = X + alpha Y (alpha starts at 0,
    so training begins from the plain convolution). The N^2 attention runs through
    torch's scaled_dot_product_attention with scale 1 (the paper's unscaled dot product),
    which uses memory-efficient kernels where the device has them. Where it may not (the
    CPU), large token counts are processed in chunks of queries, so memory stays at
    QUERY_CHUNK x N instead of N x N (the same result: softmax runs over keys only).
    """

    QUERY_CHUNK = 2048

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        k = max(1, channels // reduction)
        self.f = nn.Conv2d(channels, k, 1)
        self.g = nn.Conv2d(channels, k, 1)
        self.h = nn.Conv2d(channels, channels, 1)
        self.alpha = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hgt, wid = x.shape
        q = self.f(x).flatten(2).transpose(1, 2)   # (B, N, k)
        k = self.g(x).flatten(2).transpose(1, 2)   # (B, N, k)
        v = self.h(x).flatten(2).transpose(1, 2)   # (B, N, C)
        q, k, v = q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)
        n = q.shape[2]
        if x.device.type == "cuda" or n <= self.QUERY_CHUNK:
            y = F.scaled_dot_product_attention(q, k, v, scale=1.0)
        else:
            y = torch.cat([F.scaled_dot_product_attention(q[:, :, i:i + self.QUERY_CHUNK], k, v, scale=1.0)
                           for i in range(0, n, self.QUERY_CHUNK)], dim=2)
        return x + self.alpha * y.squeeze(1).transpose(1, 2).reshape(b, c, hgt, wid)


class FiLM(nn.Module):
    """Feature-wise linear modulation by the acquisition (Perez et al. 2018): x (1 + gamma) + beta.

    papers/000 trained one network per flip angle and papers/001 names protocol
    generalisation as future work; conditioning on (flip angle, TR, TE, TI, field) lets one
    model serve a range of protocols. The last layer starts at zero, so an untrained FiLM
    is the identity.
    """

    def __init__(self, acq_dim: int, channels: list[int], hidden: int = 64):
        super().__init__()
        self.channels = channels
        self.net = nn.Sequential(nn.Linear(acq_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, 2 * sum(channels)))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, acq: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        params = self.net(acq)
        out, i = [], 0
        for c in self.channels:
            gamma, beta = params[:, i:i + c], params[:, i + c:i + 2 * c]
            out.append((gamma[:, :, None, None], beta[:, :, None, None]))
            i += 2 * c
        return out


def modulate(x: torch.Tensor, film: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    if film is None:
        return x
    gamma, beta = film
    return torch.addcmul(beta, x, 1 + gamma)          # x (1 + gamma) + beta in one pass


class Backbone(nn.Module):
    """What both backbones share (sacnn.SelfAttentionCNN, unet.UNet): widths doubling per level,
    FiLM conditioning per level, a 1x1 head, and the size multiple their input must have."""

    def _levels(self, levels: int, width: int, out_ch: int, acq_dim: int) -> list[int]:
        self.levels = levels
        ch = [width * 2 ** i for i in range(levels)]
        self.head = nn.Conv2d(ch[0], out_ch, 1)
        self.film = FiLM(acq_dim, ch) if acq_dim else None
        self.multiple = 2 ** (levels - 1)
        return ch

    def films(self, acq: torch.Tensor | None) -> list:
        return self.film(acq) if self.film is not None and acq is not None else [None] * self.levels
