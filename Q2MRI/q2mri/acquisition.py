"""The acquisition record: read once (BIDS sidecar, DICOM tags, or flags), then carried.

Units inside the record are the command line's: degrees, milliseconds, tesla. BIDS
sidecars store times in seconds; DICOM stores them in milliseconds. Conversion happens
here and nowhere else.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import Q2MRIError

# BIDS key -> (record field, factor from the sidecar unit to the record unit)
_BIDS_FIELDS = {
    "FlipAngle": ("flip_angle_deg", 1.0),
    "RepetitionTime": ("tr_ms", 1000.0),
    "EchoTime": ("te_ms", 1000.0),
    "InversionTime": ("ti_ms", 1000.0),
    "MagneticFieldStrength": ("field_strength_t", 1.0),
    # BIDS names for prepared sequences (MPRAGE): the inversion-to-inversion time (listed
    # after RepetitionTime so that it wins) and the spacing of the readout excitations.
    "RepetitionTimePreparation": ("tr_ms", 1000.0),
    "RepetitionTimeExcitation": ("echo_spacing_ms", 1000.0),
    # Not BIDS: Q2MRI's own key for the number of readout excitations per inversion.
    "ExcitationsPerInversion": ("n_excitations", 1.0),
}

# DICOM tag (as SimpleITK spells it) -> (record field, factor); DICOM times are in ms.
DICOM_TAGS = {
    "0018|1314": ("flip_angle_deg", 1.0),
    "0018|0080": ("tr_ms", 1.0),
    "0018|0081": ("te_ms", 1.0),
    "0018|0082": ("ti_ms", 1.0),
    "0018|0087": ("field_strength_t", 1.0),
}

# Field names as a user reads them, and how to supply each one when it is missing.
LABEL = {"flip_angle_deg": "flip angle", "tr_ms": "TR", "te_ms": "TE", "ti_ms": "TI",
         "field_strength_t": "field strength", "echo_spacing_ms": "echo spacing",
         "n_excitations": "number of readout excitations"}
HOW_TO_GIVE = {
    "flip_angle_deg": "FlipAngle (degrees) in the JSON sidecar, DICOM (0018,1314), or --flip-angle(s)",
    "tr_ms": "RepetitionTime (seconds) in the JSON sidecar, DICOM (0018,0080), or --tr (ms)",
    "te_ms": "EchoTime (seconds) in the JSON sidecar, DICOM (0018,0081), or --te (ms)",
    "ti_ms": "InversionTime (seconds) in the JSON sidecar, DICOM (0018,0082), or --ti (ms)",
    "field_strength_t": "MagneticFieldStrength (T) in the JSON sidecar, DICOM (0018,0087), or --field-strength",
    "echo_spacing_ms": "RepetitionTimeExcitation (seconds) in the JSON sidecar or --echo-spacing (ms)",
    "n_excitations": "ExcitationsPerInversion in the JSON sidecar or --n-excitations",
}


@dataclass(frozen=True)
class Acquisition:
    """Parameters of one acquired image (or one volume of a 4D series).

    flip_angle_deg: nominal flip angle (degrees).
    tr_ms: repetition time (ms); for MPRAGE the inversion-to-inversion time.
    te_ms: echo time (ms).
    ti_ms: inversion time (ms); for MPRAGE, inversion to the centre of k-space.
    field_strength_t: B0 field (tesla).
    echo_spacing_ms: MPRAGE readout excitation spacing (ms).
    n_excitations: MPRAGE readout excitations per inversion.
    sequence: spgr, gre, se, ir, flair, mprage or afi, where known.
    """

    flip_angle_deg: float | None = None
    tr_ms: float | None = None
    te_ms: float | None = None
    ti_ms: float | None = None
    field_strength_t: float | None = None
    echo_spacing_ms: float | None = None
    n_excitations: int | None = None
    sequence: str | None = None
    source: str = field(default="", compare=False)

    # ---- construction -------------------------------------------------------------
    @classmethod
    def from_bids(cls, sidecar: Mapping[str, Any], source: str = "") -> list["Acquisition"]:
        """One record per volume. A list-valued field (e.g. EchoTime of a 4D multi-echo
        file) gives one record per entry; scalars are shared by all volumes."""
        values: dict[str, Any] = {}
        for key, (name, factor) in _BIDS_FIELDS.items():
            if key not in sidecar or sidecar[key] is None:
                continue
            raw = sidecar[key]
            try:
                # Rounded so that 0.00293 s reads as 2.93 ms, not 2.9299999999999997.
                if isinstance(raw, (list, tuple)):
                    values[name] = [round(float(v) * factor, 9) for v in raw]
                else:
                    values[name] = round(float(raw) * factor, 9)
            except (TypeError, ValueError):
                raise Q2MRIError(
                    f"{source or 'sidecar'}: {key} is {raw!r}, not a number; fix the JSON sidecar"
                ) from None
        seq = sidecar.get("Q2MRISequence")
        lengths = {len(v) for v in values.values() if isinstance(v, list)}
        if len(lengths) > 1:
            raise Q2MRIError(
                f"{source or 'sidecar'}: list-valued fields have different lengths {sorted(lengths)}; "
                "give one value per volume"
            )
        n = lengths.pop() if lengths else 1
        out = []
        for i in range(n):
            kw = {k: (v[i] if isinstance(v, list) else v) for k, v in values.items()}
            if "n_excitations" in kw and kw["n_excitations"] is not None:
                kw["n_excitations"] = int(round(kw["n_excitations"]))
            out.append(cls(sequence=seq, source=source, **kw))
        return out

    @classmethod
    def from_dicom(cls, tags: Mapping[str, str], source: str = "") -> "Acquisition":
        """From DICOM tags keyed as SimpleITK spells them ('0018|1314')."""
        kw: dict[str, Any] = {}
        for tag, (name, factor) in DICOM_TAGS.items():
            raw = tags.get(tag)
            if raw is None or str(raw).strip() == "":
                continue
            try:
                kw[name] = float(str(raw).split("\\")[0]) * factor
            except ValueError:
                raise Q2MRIError(f"{source}: DICOM tag ({tag.replace('|', ',')}) is {raw!r}, not a number") from None
        return cls(source=source, **kw)

    def to_bids(self) -> dict[str, Any]:
        """The BIDS sidecar fields for this record (times back in seconds)."""
        out: dict[str, Any] = {}
        if self.flip_angle_deg is not None:
            out["FlipAngle"] = self.flip_angle_deg
        if self.tr_ms is not None:
            key = "RepetitionTimePreparation" if self.sequence == "mprage" else "RepetitionTime"
            out[key] = self.tr_ms / 1000.0
        if self.te_ms is not None:
            out["EchoTime"] = self.te_ms / 1000.0
        if self.ti_ms is not None:
            out["InversionTime"] = self.ti_ms / 1000.0
        if self.field_strength_t is not None:
            out["MagneticFieldStrength"] = self.field_strength_t
        if self.echo_spacing_ms is not None:
            out["RepetitionTimeExcitation"] = self.echo_spacing_ms / 1000.0
        if self.n_excitations is not None:
            out["ExcitationsPerInversion"] = self.n_excitations
        if self.sequence:
            out["Q2MRISequence"] = self.sequence
        return out

    # ---- use ----------------------------------------------------------------------
    def with_overrides(self, **kw: Any) -> "Acquisition":
        """A copy with the given fields replaced; None values leave a field as it is."""
        return dataclasses.replace(self, **{k: v for k, v in kw.items() if v is not None})

    def require(self, *names: str) -> "Acquisition":
        """Raise one clear error naming the first missing field and how to give it."""
        for name in names:
            if getattr(self, name) is None:
                where = f" for {self.source}" if self.source else ""
                raise Q2MRIError(f"missing {LABEL[name]}{where}: give {HOW_TO_GIVE[name]}")
        return self.validate()

    def validate(self) -> "Acquisition":
        """Reject values that make no physical sense."""
        where = f" ({self.source})" if self.source else ""
        fa = self.flip_angle_deg
        if fa is not None and (not math.isfinite(fa) or fa <= 0 or fa > 180):
            raise Q2MRIError(f"flip angle {fa} deg{where} is outside 0-180 degrees; give the nominal flip angle in degrees")
        for name in ("tr_ms", "echo_spacing_ms"):
            v = getattr(self, name)
            if v is not None and (not math.isfinite(v) or v <= 0):
                raise Q2MRIError(f"{LABEL[name]} = {v} ms{where} must be > 0")
        for name in ("te_ms", "ti_ms"):
            v = getattr(self, name)
            if v is not None and (not math.isfinite(v) or v < 0):
                raise Q2MRIError(f"{LABEL[name]} = {v} ms{where} must be >= 0")
        if self.te_ms is not None and self.tr_ms is not None and self.te_ms >= self.tr_ms:
            raise Q2MRIError(f"TE = {self.te_ms} ms is not shorter than TR = {self.tr_ms} ms{where}; check the units (ms)")
        if self.field_strength_t is not None and not (0 < self.field_strength_t <= 21):
            raise Q2MRIError(f"field strength {self.field_strength_t} T{where} is outside 0-21 T")
        return self
