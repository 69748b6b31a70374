"""Writing outputs whole or not at all, with units in the header and a JSON sidecar.

Every file is first written under a hidden temporary name in the output folder and only
renamed into place when all outputs of the command have been written; on any error the
temporaries are removed and nothing is left half-made.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from .. import __version__
from ..errors import Q2MRIError
from ..maps import MAP_QUANTITY, map_unit
from .images import Geometry


def _split_suffix(name: str) -> tuple[str, str]:
    for suf in (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha"):
        if name.lower().endswith(suf):
            return name[: -len(suf)], suf
    raise Q2MRIError(f"output {name} has no image suffix; use .nii.gz, .nii or .nrrd")


class OutputWriter:
    """Context manager collecting outputs in one folder and committing them together."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._pending: list[tuple[Path, Path]] = []

    def __enter__(self) -> "OutputWriter":
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".q2mri-probe-", dir=self.folder)
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            raise Q2MRIError(f"cannot write to {self.folder}: {e.strerror or e}; choose another --out") from None
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            for tmp, final in self._pending:
                os.replace(tmp, final)
        else:
            for tmp, _ in self._pending:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
        self._pending.clear()

    def _temp_for(self, final: Path) -> Path:
        final.parent.mkdir(parents=True, exist_ok=True)
        stem, suf = _split_suffix(final.name)
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".tmp{suf}", dir=final.parent)
        os.close(fd)
        return Path(tmp)

    def write_image(self, filename: str, array: np.ndarray, geometry: Geometry, *, quantity: str | None = None,
                    unit: str | None = None, sidecar: dict[str, Any] | None = None) -> Path:
        """Write an image (and its JSON sidecar) under ``filename`` in the folder."""
        final = self.folder / filename
        stem, _ = _split_suffix(final.name)
        name = quantity or stem
        unit = unit or map_unit(name)
        if array.ndim == 4:          # a series (t, z, y, x): 3D volumes on the grid, joined along t
            img = sitk.JoinSeries([geometry.apply(sitk.GetImageFromArray(np.ascontiguousarray(v))) for v in array])
        else:
            img = geometry.apply(sitk.GetImageFromArray(np.ascontiguousarray(array)))
        label = f"{name} [{unit}]"
        img.SetMetaData("ITK_FileNotes", label[:79])  # NIfTI descrip (80 bytes)
        img.SetMetaData("q2mri_quantity", name)
        img.SetMetaData("q2mri_unit", unit)
        tmp = self._temp_for(final)
        try:
            # zlib level 1: most of the size reduction of the default level at a third of the time
            sitk.WriteImage(img, str(tmp), useCompression=True, compressionLevel=1)
        except RuntimeError as e:
            os.unlink(tmp)
            raise Q2MRIError(f"cannot write {final}: {str(e).strip().splitlines()[-1][:160]}") from None
        self._pending.append((tmp, final))
        meta = {"Quantity": MAP_QUANTITY.get(name.split("_")[0], name), "Name": name, "Units": unit,
                "GeneratedBy": [{"Name": "q2mri", "Version": __version__}]}
        meta.update(sidecar or {})
        self.write_json(str(Path(filename).parent / (stem + ".json")), meta)
        return final

    def write_transform(self, filename: str, transform) -> Path:
        """An ITK transform file (.tfm), e.g. the rigid registration of an input (q2mri.registration)."""
        final = self.folder / filename
        fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=".tmp.tfm", dir=final.parent)
        os.close(fd)
        sitk.WriteTransform(transform, tmp)
        self._pending.append((Path(tmp), final))
        return final

    def write_json(self, filename: str, data: dict[str, Any]) -> Path:
        final = self.folder / filename
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=".tmp.json", dir=final.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, default=float)
            f.write("\n")
        self._pending.append((Path(tmp), final))
        return final


def write_single(path: str | os.PathLike, array: np.ndarray, geometry: Geometry, **kw: Any) -> Path:
    """One image written atomically to an explicit path (e.g. ``synth --out IMG``)."""
    p = Path(path)
    with OutputWriter(p.parent if str(p.parent) else ".") as w:
        return w.write_image(p.name, array, geometry, **kw)
