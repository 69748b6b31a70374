"""Training losses.

- papers/000 (Methods, A.3) and papers/001: loss = l1 + lambda (1 - SSIM), lambda = 5, on
  normalised maps; l1 removes uniform bias, SSIM keeps local structure.
- Heteroscedastic Laplace negative log-likelihood |y - mu| / b + log b (Kendall & Gal
  2017), which trains the uncertainty head.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F


def _gauss_window(sigma: float = 1.5, radius: int = 5, device=None, dtype=None) -> torch.Tensor:
    x = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def _pad_symmetric(t: torch.Tensor, r: int) -> torch.Tensor:
    """Half-sample mirror padding (scipy's 'reflect', numpy's 'symmetric')."""
    t = torch.cat([t[..., :r].flip(-1), t, t[..., -r:].flip(-1)], -1)
    return torch.cat([t[..., :r, :].flip(-2), t, t[..., -r:, :].flip(-2)], -2)


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """SSIM map (Wang et al. 2004; papers/000 A.3) per channel: 11 x 11 Gaussian, sigma 1.5,
    K1 0.01, K2 0.03, half-sample mirror padding (the same definition as q2mri.metrics.ssim)."""
    c = x.shape[1]
    w = _gauss_window(device=x.device, dtype=x.dtype).expand(c, 1, 11, 11)
    f = lambda t: F.conv2d(_pad_symmetric(t, 5), w, groups=c)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = f(x), f(y)
    vx, vy, cov = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def masked_mean(v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return v.mean()
    m = mask[:, None].to(v.dtype).expand_as(v)
    return (v * m).sum() / m.sum().clamp_min(1.0)


def paper_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, lam: float = 5.0):
    """l1 + lambda (1 - SSIM) on normalised maps (papers/000: lambda = 5)."""
    l1 = masked_mean((pred - target).abs(), mask)
    ssim = masked_mean(ssim_map(pred, target), mask)
    return l1 + lam * (1.0 - ssim)


def laplace_nll(mean: torch.Tensor, b: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None):
    return masked_mean((target - mean).abs() / b + torch.log(b), mask)
