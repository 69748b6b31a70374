"""Scan-specific refinement (papers/004): fine-tune on one scan with the Bloch loss.

When a scan has two or more images of a physics-determined series (two flip angles for
spgr-t1), a copy of the trained network is fine-tuned on that scan alone to minimise the
physics-consistency residual of tasks.consistency (the signal model as the loss, no
reference maps), starting from the trained weights so that the population prior keeps the
under-determined directions (e.g. B1 against T1) in place. papers/004 trained such a
network from scratch per scan; starting from the supervised model is what makes a few
steps enough here.
"""
from __future__ import annotations

import copy

import torch

from ..errors import Q2MRIError
from .quantnet import QuantNet
from .tasks import Task, consistency

SERIES_TASKS = {"spgr-t1": 2}   # task -> images of one series needed


def refine_scan_specific(net: QuantNet, task: Task, xn: torch.Tensor, acq: torch.Tensor, mask: torch.Tensor,
                         steps: int = 60, lr: float = 1e-4, batch: int = 4, seed: int = 0) -> QuantNet:
    """A copy of net fine-tuned on normalised slices xn (Z, C, H, W) of one scan."""
    need = SERIES_TASKS.get(task.name)
    if need is None:
        raise Q2MRIError(f"scan-specific refinement needs a physics-determined series; task {task.name} has none "
                         f"(available for {', '.join(SERIES_TASKS)})")
    present = int((xn.flatten(2).abs().sum(-1) > 0).any(0).sum())
    if present < need:
        raise Q2MRIError(f"scan-specific refinement for {task.name} needs {need} images of the series "
                         f"(e.g. two flip angles); got {present}")
    model = copy.deepcopy(net).train()
    for mod in model.modules():            # keep batch statistics of the population model
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.eval()
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.89, 0.89), eps=1e-8)
    g = torch.Generator().manual_seed(seed)
    z = xn.shape[0]
    for _ in range(steps):
        idx = torch.randperm(z, generator=g)[:batch]
        mean, _ = model(xn[idx], acq[idx])
        maps = {k: mean[:, i] for i, k in enumerate(task.targets)}
        loss = consistency(task.name, xn[idx], maps, acq[idx], mask[idx])[1].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()
