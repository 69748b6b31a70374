"""The Q2MRI module's Qt-free parts: the Logic and its MRML helpers (see logic.py)."""
from .logic import Cancelled, Q2MRIModuleLogic

__all__ = ["Q2MRIModuleLogic", "Cancelled"]
