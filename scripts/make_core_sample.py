"""Regenerate Resources/SampleData/core-knee-vfa (deterministic).

    .venv/bin/python scripts/make_core_sample.py
"""
import shutil
from pathlib import Path

from q2mri.sample import make_sample

out = Path(__file__).resolve().parents[1] / "Resources" / "SampleData" / "core-knee-vfa"
if out.exists():
    shutil.rmtree(out)
make_sample(out)
print(f"wrote {out}")
