"""Choosing where torch runs: --device auto|cpu|cuda."""
from __future__ import annotations

import torch

from .errors import Q2MRIError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """auto: CUDA when available, else CPU. cuda without a GPU is a user error."""
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise Q2MRIError("--device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
        return torch.device(name)
    raise Q2MRIError(f"unknown device {name!r}; use auto, cpu or cuda")
