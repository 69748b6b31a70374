"""Q2MRI core library: quantitative MRI physics, fitting, synthesis, I/O and metrics.

Data flows one way: images + acquisition -> maps -> (display, ROI numbers, synthesis).
The library is importable without 3D Slicer.
"""
from .errors import Q2MRIError
from .acquisition import Acquisition
from .maps import MAP_UNITS, map_unit

__version__ = "0.1.0"
__all__ = ["Q2MRIError", "Acquisition", "MAP_UNITS", "map_unit", "__version__"]
