"""Images in and out with their geometry kept exact (SimpleITK: NIfTI, NRRD, DICOM).

Arrays are numpy in SimpleITK's order: (z, y, x) for 3D and (t, z, y, x) for 4D. The
geometry (origin, spacing, direction in ITK's LPS convention) travels with the array
and is written back unchanged.
"""
from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path


import numpy as np
import SimpleITK as sitk

from ..errors import Q2MRIError
from ..logs import native_stderr_to_log

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


@dataclass(frozen=True)
class Geometry:
    """Spatial grid of a 3D image: size (x, y, z), spacing (mm), origin (mm), direction (3x3)."""

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]

    @classmethod
    def of(cls, img: sitk.Image) -> "Geometry":
        d = img.GetDimension()
        size = tuple(img.GetSize()[:3]) + (1,) * max(0, 3 - d)
        spacing = tuple(img.GetSpacing()[:3]) + (1.0,) * max(0, 3 - d)
        origin = tuple(img.GetOrigin()[:3]) + (0.0,) * max(0, 3 - d)
        full = np.array(img.GetDirection()).reshape(d, d)
        direction = np.eye(3)
        k = min(d, 3)
        direction[:k, :k] = full[:k, :k]
        return cls(size, spacing, origin, tuple(direction.ravel()))

    def apply(self, img: sitk.Image) -> sitk.Image:
        img.SetSpacing(self.spacing)
        img.SetOrigin(self.origin)
        img.SetDirection(self.direction)
        return img

    def matches(self, other: "Geometry", tol: float = 1e-3) -> bool:
        return (self.size == other.size
                and np.allclose(self.spacing, other.spacing, rtol=tol, atol=tol)
                and np.allclose(self.origin, other.origin, atol=tol * max(1.0, max(self.spacing)))
                and np.allclose(self.direction, other.direction, atol=tol))

    def describe(self) -> str:
        sp = "x".join(f"{s:g}" for s in self.spacing)
        org = ",".join(f"{o:.4g}" for o in self.origin)
        return f"{'x'.join(str(s) for s in self.size)} voxels of {sp} mm at ({org})"

    @property
    def voxel_volume_ml(self) -> float:
        return float(np.prod(self.spacing)) / 1000.0


@dataclass
class Volume:
    """An image array with its geometry and where it came from."""

    array: np.ndarray
    geometry: Geometry
    path: str
    tags: dict[str, str] = field(default_factory=dict)  # DICOM tags, when read from DICOM

    @property
    def is_4d(self) -> bool:
        return self.array.ndim == 4

    def volumes(self) -> list[np.ndarray]:
        """The 3D volumes: one for a 3D image, one per t for a 4D image."""
        return [self.array] if self.array.ndim == 3 else [v for v in self.array]

    def to_sitk(self, array: np.ndarray | None = None) -> sitk.Image:
        a = self.array if array is None else array
        return self.geometry.apply(sitk.GetImageFromArray(a))


def _check_complete(path: Path) -> None:
    """Catch truncated files, which SimpleITK may read without complaint."""
    name = path.name.lower()
    if name.endswith(".gz"):
        try:
            with gzip.open(path, "rb") as f:
                while f.read(1 << 22):
                    pass
        except (EOFError, OSError, zlib.error) as e:
            raise Q2MRIError(f"cannot read {path}: the compressed file is truncated or corrupt ({e}); copy it again") from None
    elif name.endswith(".nii"):
        with open(path, "rb") as f:
            hdr = f.read(352)
        if len(hdr) < 348:
            raise Q2MRIError(f"cannot read {path}: the NIfTI header is truncated; copy the file again")
        sizeof = int.from_bytes(hdr[0:4], "little")
        order = "little" if sizeof == 348 else "big"
        dims = [int.from_bytes(hdr[40 + 2 * i:42 + 2 * i], order, signed=True) for i in range(8)]
        bitpix = int.from_bytes(hdr[72:74], order, signed=True)
        vox_offset = int(np.frombuffer(hdr[108:112], dtype="<f4" if order == "little" else ">f4")[0])
        need = vox_offset + int(np.prod([max(d, 1) for d in dims[1:1 + max(dims[0], 0)]])) * bitpix // 8
        if 1 <= dims[0] <= 7 and os.path.getsize(path) < need:
            raise Q2MRIError(f"cannot read {path}: the file is truncated ({os.path.getsize(path)} of {need} bytes); copy it again")


def _restore_nonfinite(path: Path, arr: np.ndarray) -> np.ndarray:
    """SimpleITK's NIfTI reader turns NaN and Inf into 0; read them back with nibabel so
    that they are reported instead of silently fitted as zeros."""
    import nibabel as nib

    img = nib.load(str(path))
    if img.get_data_dtype().kind != "f" and not img.header.get_slope_inter()[0]:
        return arr
    data = np.asanyarray(img.dataobj)
    bad = ~np.isfinite(data)
    if not bad.any():
        return arr
    data_t = data.T  # nibabel (x, y, z[, t]) -> SimpleITK (z, y, x) / (t, z, y, x)
    bad_t = bad.T
    if data_t.shape != arr.shape:
        return arr
    arr = np.array(arr, copy=True)
    arr[bad_t] = data_t[bad_t]
    return arr


def _read_dicom_dir(path: Path) -> tuple[sitk.Image, dict[str, str]]:
    reader = sitk.ImageSeriesReader()
    ids = reader.GetGDCMSeriesIDs(str(path))
    if not ids:
        raise Q2MRIError(f"cannot read {path}: the folder holds no DICOM series; give a NIfTI/NRRD file or a DICOM series folder")
    if len(ids) > 1:
        raise Q2MRIError(f"{path} holds {len(ids)} DICOM series; give a folder with one series")
    files = reader.GetGDCMSeriesFileNames(str(path), ids[0])
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    reader.LoadPrivateTagsOn()
    img = reader.Execute()
    tags = {k: reader.GetMetaData(0, k) for k in reader.GetMetaDataKeys(0)}
    return img, tags


def read_image(path: str | os.PathLike, what: str = "image") -> Volume:
    """Read a NIfTI/NRRD/MetaImage file or a DICOM series folder; 2D becomes one slice."""
    p = Path(path)
    if not p.exists():
        raise Q2MRIError(f"{what} {p} does not exist; check the path")
    tags: dict[str, str] = {}
    try:
        if p.is_dir():
            with native_stderr_to_log():
                img, tags = _read_dicom_dir(p)
        else:
            _check_complete(p)
            with native_stderr_to_log():      # ITK's own warnings go to the debug log (q2mri.logs)
                img = sitk.ReadImage(str(p))
            if p.suffix.lower() in (".dcm", ".ima") or "0008|0060" in img.GetMetaDataKeys():
                tags = {k: img.GetMetaData(k) for k in img.GetMetaDataKeys()}
    except RuntimeError as e:
        first = str(e).strip().splitlines()[-1] if str(e).strip() else "unknown error"
        raise Q2MRIError(f"cannot read {what} {p}: not a readable NIfTI, NRRD or DICOM image ({first[:160]})") from None
    if img.GetNumberOfComponentsPerPixel() > 1 and "complex" not in img.GetPixelIDTypeAsString():
        raise Q2MRIError(f"{what} {p} has {img.GetNumberOfComponentsPerPixel()} components per voxel (RGB/vector); give a scalar image")
    d = img.GetDimension()
    if d > 4:
        raise Q2MRIError(f"{what} {p} is {d}D; Q2MRI reads 2D, 3D or 4D images")
    arr = sitk.GetArrayFromImage(img)
    if p.is_file() and p.name.lower().endswith((".nii", ".nii.gz")) and arr.dtype.kind == "f":
        arr = _restore_nonfinite(p, arr)
    if d == 2:
        arr = arr[None]
    if arr.dtype.kind not in "fc":
        arr = arr.astype(np.float32)
    return Volume(arr, Geometry.of(img), str(p), tags)


ROUNDING = 1e-4     # negatives this small against the image's robust maximum are rounding, not signal


def clear_rounding_negatives(vol: Volume) -> tuple[Volume, str]:
    """A magnitude image whose only negatives are rounding (|v| below ROUNDING of its 99.5th
    percentile, as some reconstructions leave a tiny offset in the background) with those set to
    0, and the note that says so; anything larger is left for check_intensities to refuse."""
    a = vol.array
    if np.iscomplexobj(a) or a.dtype.kind != "f":
        return vol, ""
    neg = np.isfinite(a) & (a < 0)
    if not neg.any():
        return vol, ""
    top = float(np.percentile(np.abs(a[np.isfinite(a)]), 99.5))
    low = float(a[neg].min())
    if top <= 0 or -low > ROUNDING * top:
        return vol, ""
    fixed = np.where(neg, 0, a).astype(a.dtype)
    return (Volume(fixed, vol.geometry, vol.path, vol.tags),
            f"{vol.path}: {int(neg.sum())} voxel(s) slightly negative (down to {low:.3g}, under {ROUNDING:g} of the "
            f"image's 99.5th percentile {top:.4g}): reconstruction rounding in a magnitude image, set to 0")


def check_intensities(vol: Volume, what: str = "image", allow_negative: bool = False, allow_nan: bool = False) -> None:
    """NaN, Inf and (for magnitude images) negative values are user errors; maps may carry NaN
    where a fit flagged a voxel (allow_nan)."""
    a = vol.array
    finite = np.isfinite(a) | (np.isnan(a) if allow_nan else False)
    if not finite.all():
        n = int((~finite).sum())
        raise Q2MRIError(f"{what} {vol.path} has {n} NaN or Inf voxel(s); replace them (e.g. with 0) before fitting")
    if not allow_negative and not np.iscomplexobj(a) and (np.nan_to_num(a) < 0).any():
        raise Q2MRIError(f"{what} {vol.path} has negative intensities (min {float(a.min()):.4g}); "
                         "magnitude images are expected: give phase images with --phase, or take the magnitude")


def check_same_geometry(vols: list[Volume], resample: bool = False) -> list[Volume]:
    """All volumes on the first one's grid: an error naming both, or resampled when asked."""
    ref = vols[0]
    out = [ref]
    for v in vols[1:]:
        if v.geometry.matches(ref.geometry):
            out.append(v)
            continue
        if not resample:
            raise Q2MRIError(f"geometry differs: {ref.path} is {ref.geometry.describe()} but {v.path} is "
                             f"{v.geometry.describe()}; register the images, or pass --resample to resample onto the first")
        out.append(resample_to(v, ref.geometry))
    return out


def resample_to(vol: Volume, geom: Geometry) -> Volume:
    """Linear resampling of every 3D volume onto geom."""
    ref = geom.apply(sitk.Image(list(geom.size), sitk.sitkFloat32))
    res = []
    for a in vol.volumes():
        parts = [a.real, a.imag] if np.iscomplexobj(a) else [a]
        rs = [sitk.GetArrayFromImage(sitk.Resample(vol.geometry.apply(sitk.GetImageFromArray(x.astype(np.float32))),
                                                   ref, sitk.Transform(), sitk.sitkLinear, 0.0)) for x in parts]
        res.append(rs[0] + 1j * rs[1] if len(rs) == 2 else rs[0])
    arr = res[0] if vol.array.ndim == 3 else np.stack(res)
    return Volume(arr, geom, vol.path, vol.tags)


def as_3d(vol: Volume, what: str) -> np.ndarray:
    """The array of a volume that must be 3D (a map, a mask)."""
    if vol.array.ndim != 3:
        shape = "x".join(str(s) for s in vol.array.shape[::-1])
        raise Q2MRIError(f"{what} {vol.path} is 4D ({shape}); a {what} must be a single 3D volume")
    return vol.array


def sidecar_path(path: str | os.PathLike) -> Path:
    """The BIDS JSON sidecar beside an image: same name, .json instead of the image suffix."""
    p = Path(path)
    name = p.name
    for suf in IMAGE_SUFFIXES:
        if name.lower().endswith(suf):
            return p.with_name(name[: -len(suf)] + ".json")
    return p.with_name(name + ".json") if p.is_dir() else p.with_suffix(".json")


