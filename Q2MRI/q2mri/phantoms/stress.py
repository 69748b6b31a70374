"""Stress cases beyond the phantoms' normal draws, shared by the tests and the README figures."""
from __future__ import annotations

import numpy as np

from .case import PhantomCase
from .protocols import PRESETS
from .simulate import case_rng, make_case, simulate_images


def liver_with_large_b0(seed: int = 0) -> tuple[PhantomCase, np.ndarray, np.ndarray]:
    """A liver-me case whose field reaches about +-400 Hz: the phantom's own (air in the bowel and
    around the body, bone) doubled, plus a 300 Hz ramp across the body, where a local field-map
    search swaps water and fat ([fatwater]). Returns the case, its body mask and the complex
    echoes (..., echo) of the liver-me preset at SNR 100."""
    rng = case_rng(seed, 0)
    c = make_case("liver", rng, slices=6, matrix=96)
    body = c.labels > 0
    ramp = 150.0 * np.linspace(-1, 1, c.maps["B0"].shape[2])[None, None, :]
    c.maps["B0"] = np.where(body, 2.2 * c.maps["B0"] + ramp, 0).astype(np.float32)
    imgs = simulate_images(c, PRESETS["liver-me"], 100.0, rng, np.zeros(c.labels.shape, np.float32))
    return c, body, np.stack([i.data for i in imgs], -1)
