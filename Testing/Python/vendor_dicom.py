"""Real-format fixtures: MR DICOM series written with pydicom, carrying the tags real scanners
write (Philips private scale slope, Siemens/GE phase encodings, ImageType), converted to NIfTI +
JSON sidecars by Debian's dcm2niix exactly as users convert their data."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

STUDY = generate_uid(prefix="1.2.826.0.1.3680043.8.498.")


def write_mr_series(folder: Path, stored: np.ndarray, *, series_number: int, description: str, manufacturer: str,
                    acq: dict, spacing=(1.5, 1.5, 3.0), rescale=(1.0, 0.0), private: dict | None = None,
                    image_type=("ORIGINAL", "PRIMARY", "M", "ND"), signed: bool = False) -> Path:
    """stored: (z, y, x) integers as the scanner stores them; acq: FlipAngle, RepetitionTime,
    EchoTime, InversionTime (ms), MagneticFieldStrength; rescale: (slope, intercept) of
    (0028,1053)/(0028,1052); private: {(group, element): (VR, value)} (a private creator is added)."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid(prefix="1.2.826.0.1.3680043.8.498.")
    frame = generate_uid(prefix="1.2.826.0.1.3680043.8.498.")
    z, y, x = stored.shape
    for k in range(z):
        ds = Dataset()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid(prefix="1.2.826.0.1.3680043.8.498.")
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        ds.SOPClassUID = MRImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = "MR"
        ds.Manufacturer = manufacturer
        ds.PatientName, ds.PatientID = "Phantom^Vendor", "Q2MRI-VENDOR"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = STUDY, series_uid, frame
        ds.StudyDate, ds.SeriesDate, ds.StudyTime = "20261122", "20261122", "120000"
        ds.SeriesNumber, ds.InstanceNumber, ds.AcquisitionNumber = series_number, k + 1, 1
        ds.SeriesDescription = ds.ProtocolName = description
        ds.ImageType = list(image_type)
        ds.ImagePositionPatient = [0.0, 0.0, float(k * spacing[2])]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [spacing[1], spacing[0]]
        ds.SliceThickness = spacing[2]
        ds.SliceLocation = float(k * spacing[2])
        ds.ScanningSequence, ds.SequenceVariant, ds.MRAcquisitionType = "GR", "SP", "3D"
        for key in ("FlipAngle", "RepetitionTime", "EchoTime", "InversionTime", "MagneticFieldStrength"):
            if key in acq:
                setattr(ds, key, acq[key])
        ds.RescaleSlope, ds.RescaleIntercept = rescale
        ds.Rows, ds.Columns = y, x
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 1 if signed else 0
        ds.PixelData = stored[k].astype(np.int16 if signed else np.uint16).tobytes()
        if private:
            groups = {g for g, _ in private}
            for g in groups:
                ds.add_new((g, 0x0010), "LO", "Philips MR Imaging DD 001" if g == 0x2005 else "Q2MRI TEST")
            for (g, e), (vr, val) in private.items():
                ds.add_new((g, e), vr, val)
        ds.save_as(folder / f"IM{k + 1:04d}.dcm", enforce_file_format=True)
    return folder


def dcm2niix(dicom_folder: Path, out: Path, name: str, *extra: str) -> Path:
    """Convert one series with dcm2niix (gzipped NIfTI + BIDS sidecar); the NIfTI path."""
    exe = shutil.which("dcm2niix")
    if exe is None:
        raise RuntimeError("dcm2niix (Debian package dcm2niix) is needed; ./run test installs it")
    out.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([exe, "-z", "y", "-b", "y", "-f", name, *extra, "-o", str(out), str(dicom_folder)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"dcm2niix failed: {r.stderr or r.stdout}")
    files = sorted(out.glob(f"{name}*.nii.gz"))
    if not files:
        raise RuntimeError(f"dcm2niix wrote nothing for {name}: {r.stdout}")
    return files[0]
