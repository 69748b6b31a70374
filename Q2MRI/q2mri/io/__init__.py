"""Reading images with exact geometry, reading acquisition parameters, writing maps."""
from .images import Geometry, Volume, read_image
from .acquisition_io import read_acquisitions
from .writer import OutputWriter
from .maps_dir import read_maps

__all__ = ["Geometry", "Volume", "read_image", "read_acquisitions", "OutputWriter", "read_maps"]
