"""What each map is in DICOM terms: the coded quantity and its UCUM unit, for the Real World Value
Mapping of a Parametric Map (PS3.3 C.7.6.16.2.11) and the measurements of a TID 1500 report.

DCM has codes for T1, T2, T2*, R2*, proton density and fat fraction; B0 and relative B1+ have
none, so they use a private coding scheme (designator 99Q2MRI, allowed by PS3.16 8.2)."""
from __future__ import annotations

from pydicom.sr.coding import Code
from pydicom.sr.codedict import codes

from ..maps import MAP_QUANTITY, map_unit

PRIVATE_SCHEME = "99Q2MRI"

QUANTITY_CODES: dict[str, Code] = {
    "T1": codes.DCM.T1,
    "T2": codes.DCM.T2,
    "T2s": codes.DCM.T2Star,
    "R2s": codes.DCM.R2Star,
    "PD": codes.DCM.ProtonDensity,
    "PDFF": codes.DCM.FatFraction,
    "B0": Code("B0OFFRES", PRIVATE_SCHEME, "Off-resonance frequency B0"),
    "B1": Code("B1PLUSREL", PRIVATE_SCHEME, "Relative transmit field B1+"),
}

# Q2MRI's units (q2mri.maps) in UCUM, as PS3.16 CID 82 writes them
UCUM: dict[str, Code] = {
    "ms": Code("ms", "UCUM", "millisecond"),
    "1/s": Code("s-1", "UCUM", "per second"),
    "Hz": Code("Hz", "UCUM", "hertz"),
    "%": Code("%", "UCUM", "percent"),
    "relative": Code("{ratio}", "UCUM", "ratio"),
}

EXPORTABLE = tuple(QUANTITY_CODES)


def base_name(name: str) -> str:
    """T1_sd -> T1: an SD map has its map's quantity and unit."""
    return name[:-3] if name.endswith("_sd") else name


def is_exportable(name: str) -> bool:
    return base_name(name) in QUANTITY_CODES


def quantity(name: str) -> Code:
    return QUANTITY_CODES[base_name(name)]


def unit(name: str) -> Code:
    return UCUM[map_unit(base_name(name))]


def unit_text(name: str) -> str:
    return map_unit(base_name(name))


def explanation(name: str) -> str:
    what = MAP_QUANTITY.get(base_name(name), name)
    return f"standard deviation of {what}" if name.endswith("_sd") else what


def display_name(name: str) -> str:
    """T2s -> T2*, R2s_sd -> R2* SD: as radiologists write them."""
    b = base_name(name).replace("T2s", "T2*").replace("R2s", "R2*")
    return f"{b} SD" if name.endswith("_sd") else b
