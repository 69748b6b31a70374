"""Running a per-voxel fit over a whole volume: masking, chunking, device, progress.

Fits see only (V, M) tensors of masked voxels; this module turns volumes into those
chunks and scatters the results back. Chunks bound the memory of the biggest volumes.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import torch

from ..device import resolve_device

Progress = Callable[[int, int], None]  # (voxels done, voxels total)
CHUNK_VOXELS = 1 << 18


def default_mask(data: np.ndarray, fraction: float = 0.02) -> np.ndarray:
    """Voxels whose largest signal exceeds a small fraction of the robust maximum.

    data: (..., M) magnitude (or complex) series. Background noise is not fitted.
    """
    peak = np.abs(data).max(axis=-1)
    finite = peak[np.isfinite(peak)]
    if finite.size == 0:
        return np.zeros(peak.shape, bool)
    ref = np.percentile(finite, 99.5)
    return np.isfinite(peak) & (peak > fraction * ref)


def fit_voxels(fit_chunk: Callable[..., Mapping[str, torch.Tensor]], data: np.ndarray,
               mask: np.ndarray | None, out_names: tuple[str, ...], *,
               per_voxel: Mapping[str, np.ndarray | None] | None = None,
               device: str | torch.device = "auto", dtype: torch.dtype = torch.float32,
               progress: Progress | None = None, chunk: int = CHUNK_VOXELS) -> dict[str, np.ndarray]:
    """Apply fit_chunk(y (V, M), **per_voxel (V,)) -> {name: (V,)} over the masked voxels.

    Returns float32 maps of data.shape[:-1], zero outside the mask.
    """
    dev = resolve_device(device)
    shape = data.shape[:-1]
    m = data.shape[-1]
    if mask is None:
        mask = default_mask(data)
    mask = np.asarray(mask, bool).reshape(shape)
    idx = np.flatnonzero(mask)
    flat = data.reshape(-1, m)
    extras = {k: np.asarray(v).reshape(-1) for k, v in (per_voxel or {}).items() if v is not None}
    outputs = {name: np.zeros(int(np.prod(shape)), dtype=np.float32) for name in out_names}
    cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
    total = len(idx)
    if progress:
        progress(0, total)
    for start in range(0, total, chunk):
        sel = idx[start:start + chunk]
        y = torch.from_numpy(flat[sel]).to(dev, cdtype if np.iscomplexobj(flat) else dtype)
        ex = {k: torch.from_numpy(v[sel]).to(dev, dtype) for k, v in extras.items()}
        with torch.no_grad():
            res = fit_chunk(y, **ex)
        for name in out_names:
            outputs[name][sel] = res[name].detach().float().cpu().numpy()
        if progress:
            progress(min(start + chunk, total), total)
    return {name: out.reshape(shape) for name, out in outputs.items()}


def relative_rms_residual(cost: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Goodness of fit: RMS residual over the measurements relative to the mean |signal|."""
    m = y.shape[-1]
    return torch.sqrt(cost / m) / (y.abs().mean(-1) + torch.finfo(cost.dtype).tiny)
