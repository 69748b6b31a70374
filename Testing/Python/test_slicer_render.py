"""A slice view rendered offscreen by slicer-core (slice logic + displayable managers, EGL):
the map overlay carries its colour table's colours, and the colour legend is drawn."""
from __future__ import annotations

import numpy as np
import slicer

from slicer_util import load_volume, new_scene


def _lipari() -> np.ndarray:
    from importlib import resources
    text = resources.files("cmcrameri").joinpath("cmaps", "lipari.txt").read_text()
    return np.round(np.loadtxt(text.splitlines()) * 255)


def _near(pixels: np.ndarray, table: np.ndarray, tol: float = 6.0) -> np.ndarray:
    d = np.abs(pixels[:, None, :].astype(float) - table[None, :, :]).max(-1)
    return d.min(1) <= tol


def test_overlay_pixels_carry_the_map_colours_and_the_legend_is_drawn(sample, tmp_path):
    new_scene()
    from Q2MRIModule import Q2MRIModuleLogic
    from Q2MRIModuleLib.render import SliceViewRenderer
    logic = Q2MRIModuleLogic()
    anatomy = load_volume(sample / "spgr_fa30.nii.gz", "anatomy")
    t1 = np.array(slicer.util.arrayFromVolume(load_volume(sample / "maps" / "T1.nii.gz", "truth")))
    node = logic.publishMaps({"T1": t1}, anatomy)["T1"]
    view = SliceViewRenderer(size=(400, 400))
    table = _lipari()

    grey = view.show(anatomy, None).render()          # control: anatomy alone has no lipari colours
    coloured = view.show(anatomy, node, opacity=1.0).save_png(tmp_path / "overlay.png")
    assert (tmp_path / "overlay.png").stat().st_size > 5000
    w = coloured.shape[1]
    image_part = coloured[:, : int(0.72 * w)].reshape(-1, 3)
    lit = image_part.max(1) > 40                     # tissue, not the black surround
    assert lit.sum() > 5000
    assert _near(image_part[lit], table).mean() > 0.9
    grey_part = grey[:, : int(0.72 * w)].reshape(-1, 3)
    assert np.all(np.ptp(grey_part.astype(int), axis=1) <= 2)     # grey: R = G = B
    # The legend: a colour bar spanning the table (dark and bright ends) at the right side.
    legend = coloured[:, int(0.85 * w):].reshape(-1, 3)
    assert _near(legend, table[:20]).sum() > 30 and _near(legend, table[-20:]).sum() > 30
    assert not _near(grey[:, int(0.85 * w):].reshape(-1, 3), table[-20:]).any()
