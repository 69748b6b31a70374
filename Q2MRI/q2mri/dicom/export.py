"""Maps, ROIs and their statistics as DICOM objects that go back to the PACS (highdicom):

- one Parametric Map per map (PS3.3 A.75): float pixels, a Real World Value Mapping with the
  coded quantity and its UCUM unit, derived from the reference series (patient, study, frame of
  reference, one frame per source slice), a new series each;
- a Segmentation (PS3.3 A.51) from the label image;
- a TID 1500 Measurement Report (Comprehensive 3D SR) with, per segment, the volume and the
  mean, SD and median of each map, referencing the SEG segment and the Parametric Map.

Everything is written into a temporary folder beside OUT and moved into place at the end, so
OUT holds all the objects or none."""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from ..errors import Q2MRIError
from ..io.images import Geometry, Volume, resample_to
from . import codes as C
from .reference import read_reference, reference_geometry

MANUFACTURER = "Q2MRI"
UID_PREFIX = "1.2.826.0.1.3680043.10.1411."     # highdicom's default root would also do; ours marks the source
SR_STATS = (("Mean", "Mean"), ("SD", "StandardDeviation"), ("Median", "Median"))


@dataclass
class ExportResult:
    out: Path
    maps: dict[str, Path] = field(default_factory=dict)          # map name -> Parametric Map file
    series: dict[str, str] = field(default_factory=dict)         # map name -> SeriesInstanceUID
    seg: Path | None = None
    sr: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[Path]:
        return list(self.maps.values()) + [p for p in (self.seg, self.sr) if p is not None]


def _uid() -> str:
    import highdicom as hd
    return hd.UID()


def _on_reference_grid(arr: np.ndarray, geom: Geometry, ref: Geometry, what: str, resample: bool,
                       nearest: bool = False) -> np.ndarray:
    if geom.matches(ref):
        return arr
    if not resample:
        raise Q2MRIError(f"the {what} grid ({geom.describe()}) differs from the reference series ({ref.describe()}); "
                         "give the series the maps were computed from, or pass --resample")
    if nearest:
        import SimpleITK as sitk
        img = geom.apply(sitk.GetImageFromArray(arr.astype(np.int32)))
        out = sitk.Resample(img, ref.apply(sitk.Image(list(ref.size), sitk.sitkInt32)), sitk.Transform(),
                            sitk.sitkNearestNeighbor, 0)
        return sitk.GetArrayFromImage(out)
    return resample_to(Volume(arr.astype(np.float32), geom, what), ref).array


def _parametric_map(name: str, arr: np.ndarray, source, model: str, number: int):
    import highdicom as hd
    a = np.ascontiguousarray(arr, dtype=np.float32)
    finite = a[np.isfinite(a)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if hi <= lo:
        hi = lo + 1.0
    rwvm = hd.pm.RealWorldValueMapping(
        lut_label=name[:16], lut_explanation=C.explanation(name)[:64], unit=C.unit(name), value_range=(lo, hi),
        slope=1.0, intercept=0.0, quantity_definition=C.quantity(name))
    p1, p99 = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
    label = f" ({model})" if model else ""
    pm = hd.pm.ParametricMap(
        source_images=source, pixel_array=a, series_instance_uid=_uid(), series_number=number,
        sop_instance_uid=_uid(), instance_number=1, manufacturer=MANUFACTURER, manufacturer_model_name="q2mri",
        software_versions=__version__, device_serial_number="0", contains_recognizable_visual_features=False,
        real_world_value_mappings=[rwvm],
        # LINEAR_EXACT: windows narrower than 1 (B1, PD) are allowed (PS3.3 C.11.2.1.3.2)
        voi_lut_transformations=[hd.content.VOILUTTransformation(window_center=float((p1 + p99) / 2),
                                                                 window_width=float(max(p99 - p1, 1e-6)),
                                                                 window_explanation="1st-99th percentile",
                                                                 voi_lut_function="LINEAR_EXACT")],
        coding_schemes=_schemes(name),
        content_label=C.base_name(name).upper()[:16].replace("*", "S"), content_description=C.explanation(name)[:64],
        series_description=f"Q2MRI {C.display_name(name)} [{C.unit_text(name)}]{label}"[:64])
    # General Series Laterality is type 2C (paired body parts): carry the source's, else empty
    pm.Laterality = getattr(source[0], "Laterality", "")
    return pm


def _schemes(*names: str):
    import highdicom as hd
    if any(C.quantity(n).scheme_designator == C.PRIVATE_SCHEME for n in names if C.is_exportable(n)):
        return [hd.coding_schemes.CodingSchemeIdentificationItem(designator=C.PRIVATE_SCHEME, name="Q2MRI local codes")]
    return None


def _segmentation(labels: np.ndarray, names: dict[int, str], source, number: int):
    import highdicom as hd
    from pydicom.sr.codedict import codes
    ids = [int(i) for i in np.unique(labels) if i > 0]
    if not ids:
        raise Q2MRIError("the label image has no labels other than 0; draw or give at least one ROI")
    # SEG numbers its segments 1..n; the label value stays in the segment label's text
    remap = np.zeros(int(labels.max()) + 1, np.uint16)
    descs = []
    for n, lab in enumerate(ids, start=1):
        remap[lab] = n
        descs.append(hd.seg.SegmentDescription(
            segment_number=n, segment_label=names.get(lab, f"label {lab}")[:64], segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            tracking_uid=_uid(), tracking_id=names.get(lab, f"label {lab}")[:64]))
    mask = remap[np.clip(labels, 0, None).astype(np.int64)]
    seg = hd.seg.Segmentation(
        source_images=source, pixel_array=mask, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descs, series_instance_uid=_uid(), series_number=number, sop_instance_uid=_uid(),
        instance_number=1, manufacturer=MANUFACTURER, manufacturer_model_name="q2mri", software_versions=__version__,
        device_serial_number="0", series_description="Q2MRI ROIs")
    return seg, {names.get(lab, f"label {lab}"): n for n, lab in enumerate(ids, start=1)}


def _report(rows: list[dict], seg, seg_numbers: dict[str, int], pms: dict, source, number: int):
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code
    by_segment: dict[str, list[dict]] = {}
    for r in rows:
        by_segment.setdefault(str(r["Segment"]), []).append(r)
    unknown = sorted(set(by_segment) - set(seg_numbers))
    if unknown:
        raise Q2MRIError(f"the ROI table names segments the label image lacks ({', '.join(unknown)}); "
                         "give the table made from these labels (q2mri roi --csv)")
    groups = []
    for segment, srows in by_segment.items():
        ms = []
        vol = next((float(r["Volume_mL"]) for r in srows if _finite(r.get("Volume_mL"))), None)
        if vol is not None:
            ms.append(hd.sr.Measurement(name=codes.SCT.Volume, value=vol, unit=Code("ml", "UCUM", "milliliter")))
        for r in srows:
            name = str(r["Map"])
            if not C.is_exportable(name):
                continue
            # the map the statistic was taken from (TID 1420 Source of Measurement)
            ref = ([hd.sr.SourceImageForMeasurement(pms[name].SOPClassUID, pms[name].SOPInstanceUID)]
                   if name in pms else None)
            for col, code in SR_STATS:
                if _finite(r.get(col)):
                    ms.append(hd.sr.Measurement(name=C.quantity(name), value=float(r[col]), unit=C.unit(name),
                                                derivation=getattr(codes.SCT, code, None) or getattr(codes.DCM, code),
                                                referenced_images=ref))
        groups.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=_uid(), identifier=f"ROI {segment}"[:64]),
            referenced_segment=hd.sr.ReferencedSegment(
                sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID, segment_number=seg_numbers[segment],
                source_series=hd.sr.SourceSeriesForSegmentation(source[0].SeriesInstanceUID)),
            measurements=ms or None))
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(uid=_uid(), name="Q2MRI",
                                                                                  model_name="q2mri"))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=Code("113091000", "SCT", "Magnetic resonance imaging"), imaging_measurements=groups)
    return hd.sr.Comprehensive3DSR(
        evidence=list(source) + [seg] + list(pms.values()), content=report, series_instance_uid=_uid(),
        series_number=number, sop_instance_uid=_uid(), instance_number=1, manufacturer=MANUFACTURER,
        series_description="Q2MRI ROI measurements", is_complete=True, coding_schemes=_schemes(*pms))


def _finite(v) -> bool:
    try:
        return v is not None and v != "" and np.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def export_dicom(maps: dict[str, np.ndarray], geometry: Geometry, reference: str | Path, out: str | Path, *,
                 labels: np.ndarray | None = None, label_names: dict[int, str] | None = None,
                 table: list[dict] | None = None, model: str = "", resample: bool = False,
                 progress: Callable[[int, int], None] | None = None) -> ExportResult:
    """Write Parametric Maps (+ SEG and SR when labels are given) derived from the reference series.

    maps: name -> (z, y, x) array on `geometry` (names as q2mri writes them: T1, T2s, B0, T1_sd, ...;
    others, such as quality or residual, are left out and listed in notes). table: ROI rows with
    the q2mri roi columns; computed from labels and maps when not given."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise Q2MRIError(f"output folder {out} exists and is not empty; give a new folder")
    if table is not None and labels is None:
        raise Q2MRIError("a measurement report needs the segmentation it measures; give the label image with --labels")
    source = read_reference(reference)
    ref = reference_geometry(source)
    result = ExportResult(out)
    chosen = {k: v for k, v in maps.items() if C.is_exportable(k)}
    left = sorted(set(maps) - set(chosen))
    if left:
        result.notes.append(f"not exported (no DICOM quantity): {', '.join(left)}")
    if not chosen:
        raise Q2MRIError(f"no exportable maps among {', '.join(sorted(maps)) or 'none'}; "
                         f"give maps named {', '.join(C.EXPORTABLE)} (or their _sd)")
    chosen = {k: _on_reference_grid(v, geometry, ref, f"{k} map", resample) for k, v in chosen.items()}
    if labels is not None:
        labels = _on_reference_grid(labels, geometry, ref, "label image", resample, nearest=True).astype(np.int64)
    total = len(chosen) + (2 if labels is not None else 0)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        base = int(getattr(source[0], "SeriesNumber", 0) or 0) * 100 + 1000
        pms = {}
        for i, (name, arr) in enumerate(sorted(chosen.items(), key=lambda kv: (C.EXPORTABLE.index(C.base_name(kv[0])), kv[0]))):
            pm = _parametric_map(name, arr, source, model, base + i + 1)
            path = tmp / f"PM_{name}.dcm"
            pm.save_as(path)
            pms[name] = pm
            result.maps[name] = out / path.name
            result.series[name] = pm.SeriesInstanceUID
            if progress:
                progress(i + 1, total)
        if labels is not None:
            names = dict(label_names or {})
            seg, numbers = _segmentation(labels, names, source, base + 90)
            seg.save_as(tmp / "SEG.dcm")
            result.seg = out / "SEG.dcm"
            if progress:
                progress(len(chosen) + 1, total)
            if table is None:
                from ..maps import map_unit
                from ..metrics.roi import roi_statistics
                table = roi_statistics(chosen, labels, ref.voxel_volume_ml, names, {k: map_unit(k) for k in chosen})
            sr = _report(table, seg, numbers, pms, source, base + 91)
            sr.save_as(tmp / "SR.dcm")
            result.sr = out / "SR.dcm"
            if progress:
                progress(total, total)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result
