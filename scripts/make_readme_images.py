"""Regenerate the pictures the README shows (docs/images/*.png).

    .venv/bin/python scripts/make_readme_images.py

T1 overlay and Bland-Altman plot come from ./run demo's output; the PDFF and B0
overlays from the water-fat benchmark phantom.
"""
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from fit_fatwater import FIELD, TE, phantom  # noqa: E402
from q2mri.demo import main as demo  # noqa: E402
from q2mri.display import overlay_png  # noqa: E402
from q2mri.fitting.fatwater import fit_fatwater  # noqa: E402

out = ROOT / "docs" / "images"
out.mkdir(parents=True, exist_ok=True)
tmp = Path(tempfile.mkdtemp())
demo([str(tmp)])
for name in ("T1_overlay.png", "T1_bland_altman.png"):
    shutil.copy(tmp / name, out / name)
body, pdff, r2s, b0, s = phantom(1, 120, 120, np.random.default_rng(3))
fw = fit_fatwater(s, TE, FIELD, mask=body, device="cpu")
mag = np.abs(s[0, ..., 1])
overlay_png(mag, fw["PDFF"][0], "PDFF", str(out / "PDFF_overlay.png"), mask=body[0],
            title="PDFF from 6 complex echoes (liver-me)")
overlay_png(mag, fw["B0"][0], "B0", str(out / "B0_overlay.png"), mask=body[0], title="B0 from the same fit")
print(f"wrote {out}")
