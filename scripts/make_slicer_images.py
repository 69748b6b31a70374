"""Regenerate the Slicer module's pictures: its icon, the panel screenshot and a rendered
slice view (predicted T1 over the anatomy with its colour legend), as the README shows them.

    .venv/bin/python scripts/make_slicer_images.py

The panel comes from the .ui through PySide6 (offscreen); Slicer's own widgets show as their
Qt base classes there. The slice view is rendered by slicer-core's slice logic and displayable
managers (Q2MRIModuleLib.render), from maps predicted with the default spgr-t1 model on the
bundled knee sample.
"""
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Q2MRIModule"))
sys.path.insert(0, str(ROOT / "Testing" / "Python"))

from slicer_util import load_volume, new_scene  # noqa: E402

SAMPLE = ROOT / "Resources" / "SampleData" / "knee-vfa" / "case-0000"
IMAGES = ROOT / "docs" / "images"


def icon(path: Path) -> None:
    """128 px: the sample's true T1 (middle slice) in lipari, the colour map T1 is shown in."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    import nibabel as nib
    from q2mri.display import colormap_table
    t1 = nib.load(SAMPLE / "maps" / "T1.nii.gz").get_fdata()
    sl = np.rot90(t1[:, :, t1.shape[2] // 2])
    fig = plt.figure(figsize=(1.28, 1.28), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(np.ma.masked_equal(sl, 0), cmap=ListedColormap(colormap_table("lipari")), vmin=0, vmax=2000,
              interpolation="nearest")
    ax.text(0.5, 0.06, "Q2MRI", transform=ax.transAxes, ha="center", va="bottom", color="white",
            fontsize=13, fontweight="bold")
    ax.set_axis_off()
    fig.savefig(path, transparent=True)
    plt.close(fig)


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    icon(ROOT / "Q2MRIModule" / "Resources" / "Icons" / "Q2MRIModule.png")
    from Q2MRIModuleLib.panel import screenshot
    screenshot(IMAGES / "slicer-panel.png")
    new_scene()
    from Q2MRIModule import Q2MRIModuleLogic
    from Q2MRIModuleLib.render import SliceViewRenderer
    logic = Q2MRIModuleLogic()
    anatomy = load_volume(SAMPLE / "spgr_fa30.nii.gz", "knee SPGR 30 deg")
    maps = logic.predict([anatomy], "spgr-t1", device="cpu")
    SliceViewRenderer(size=(480, 480)).show(anatomy, maps["T1"], opacity=0.75).save_png(IMAGES / "slicer-overlay.png")
    print("wrote", IMAGES / "slicer-panel.png", IMAGES / "slicer-overlay.png", "and the module icon")


if __name__ == "__main__":
    main()
