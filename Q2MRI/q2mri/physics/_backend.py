"""One implementation per signal equation, callable from torch and from numpy.

Signal models are written once in torch (differentiable, batched, any device, float32 or
float64). The ``signal_model`` decorator lets the same function take numpy arrays and
Python numbers: they are turned into tensors (numpy memory is shared, not copied) and
the result comes back as numpy. Torch in, torch out; numpy in, numpy out.
"""
from __future__ import annotations

import functools
import inspect
import numbers
from typing import Any, Callable

import numpy as np
import torch

_REAL = {torch.float32: torch.float32, torch.complex64: torch.float32,
         torch.float64: torch.float64, torch.complex128: torch.float64,
         torch.float16: torch.float32, torch.bfloat16: torch.float32}


def _is_numeric_sequence(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and len(v) > 0 and all(
        isinstance(x, numbers.Number) and not isinstance(x, bool) for x in v)


def _reference(values: list[Any]) -> tuple[torch.device, torch.dtype, bool]:
    """Device, real dtype and whether to answer in numpy, from the array arguments."""
    for v in values:
        if isinstance(v, torch.Tensor) and (v.is_floating_point() or v.is_complex()):
            return v.device, _REAL.get(v.dtype, torch.float64), False
    for v in values:
        if isinstance(v, np.ndarray) and v.dtype.kind in "fc":
            return torch.device("cpu"), torch.float32 if v.dtype in (np.float32, np.complex64) else torch.float64, True
    return torch.device("cpu"), torch.float64, True


def to_tensor(v: Any, device: torch.device, real: torch.dtype) -> Any:
    if isinstance(v, torch.Tensor):
        if v.is_complex() or v.is_floating_point():
            return v.to(device)
        return v.to(device=device, dtype=real)
    if isinstance(v, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(v)) if v.dtype.kind in "fc" else torch.from_numpy(v.astype(np.float64))
        if not (t.is_complex() or t.is_floating_point()):
            t = t.to(real)
        return t.to(device)
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, numbers.Complex) and not isinstance(v, numbers.Real):
        return torch.tensor(v, dtype=torch.complex64 if real == torch.float32 else torch.complex128, device=device)
    if isinstance(v, numbers.Number):
        return torch.tensor(float(v), dtype=real, device=device)
    if _is_numeric_sequence(v):
        return torch.tensor([float(x) for x in v], dtype=real, device=device)
    return v


def to_numpy(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.detach().cpu().numpy()
    if isinstance(out, tuple):
        return tuple(to_numpy(o) for o in out)
    if isinstance(out, dict):
        return {k: to_numpy(v) for k, v in out.items()}
    return out


def signal_model(fn: Callable) -> Callable:
    """Make a torch signal model callable on numpy arrays and numbers as well."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        values = list(bound.arguments.values())
        device, real, numpy_out = _reference(values)
        converted = {k: to_tensor(v, device, real) for k, v in bound.arguments.items()}
        out = fn(**converted)
        return to_numpy(out) if numpy_out else out

    return wrapper
