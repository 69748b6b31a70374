"""Shared fixtures: the sample case, an in-process CLI runner, image writing helpers."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from q2mri.cli.main import main as q2mri_main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "Resources" / "SampleData" / "knee-vfa" / "case-0000"

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A few-step spgr-t1 network: for wiring and geometry checks, not accuracy."""
    from q2mri.models.train import TrainConfig, train
    out = tmp_path_factory.mktemp("m") / "spgr-t1"
    train(TrainConfig("spgr-t1", out, steps=6, batch=2, patch=32, levels=3, width=8, cases=1, slices=2, matrix=48))
    return out


@pytest.fixture
def sample() -> Path:
    assert (SAMPLE / "maps").is_dir(), "bundled sample missing: run scripts/make_sample_data.sh"
    return SAMPLE


class CLIResult:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def cli(capsys):
    """Run q2mri in-process: returns exit code, stdout, stderr."""
    def run(*args: str) -> CLIResult:
        capsys.readouterr()
        try:
            code = q2mri_main([str(a) for a in args])
        except SystemExit as e:  # argparse errors
            code = e.code
        cap = capsys.readouterr()
        return CLIResult(code, cap.out, cap.err)
    return run


def write_nifti(path: Path, array: np.ndarray, spacing=(1.0, 1.0, 2.0), origin=(0.0, 0.0, 0.0),
                sidecar: dict | None = None) -> Path:
    """Write (z, y, x) or (t, z, y, x) array as NIfTI with an optional BIDS sidecar."""
    img = sitk.GetImageFromArray(np.asarray(array), isVector=False)
    d = img.GetDimension()
    img.SetSpacing(tuple(spacing) + (1.0,) * (d - 3))
    img.SetOrigin(tuple(origin) + (0.0,) * (d - 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path))
    if sidecar is not None:
        name = path.name.replace(".nii.gz", "").replace(".nii", "")
        (path.parent / f"{name}.json").write_text(json.dumps(sidecar))
    return path


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}
