"""Image formation as a scanner does it: k-space sampling of a finer object.

A phantom's maps live on a grid ``oversample`` times finer in-plane than the acquisition
matrix. Each image is first computed there as a complex signal (through q2mri.physics),
then taken to k-space (2D DFT per slice), truncated to the acquisition matrix (which gives
Gibbs ringing and the true partial volume of a finite point-spread function), optionally
apodised by a filter window and acquired with partial Fourier (the missing phase-encode
lines zero-filled), and transformed back; noise is complex Gaussian, white in k-space
before the window (so a filter correlates it, as on a scanner). Magnitude images are the
magnitude of that complex image.

Sampling positions: the fine grid's pixel j sits at coarse coordinate (j + 0.5)/os - 0.5,
so acquisition pixel i is the centre of fine pixels i*os ... i*os + os - 1. The band-limited
value there is the inverse DFT over the acquisition's band of F[k] exp(2 pi i k s / N),
with s = (os - 1)/2 fine pixels (acquire).

Ground truth on the acquisition grid (truth_case): the PD-weighted quantities PD, PD R1,
PD R2, PD R2*, PD PDFF and the smooth fields B1, B0 and receive go through the same
truncation and window (no partial Fourier, no noise), and the maps come back as ratios
(T1 = PD / (PD R1), ...). In homogeneous tissue that is the tissue's value; at an edge it
is the PD-weighted average over the acquisition's point-spread function, the partial-
volume model of the phantom's fractions (phantoms.case). A voxel less than half filled
with tissue (by the fine labels) is background, 0 in every map; where ringing makes a
weighted quantity non-physical (PD or a rate <= 0) the voxel's plain average is used.
Noiseless images then equal the truth maps through the physics exactly when the grid is
not oversampled and no filter or partial Fourier is used (``direct``), and in tissue
interiors otherwise; at edges they differ by the nonlinearity of the signal equations
(the image mixes signals, the maps mix parameters).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import Q2MRIError
from .fields import block_mean

FILTERS = ("none", "hamming", "hann", "fermi")


@dataclass(frozen=True)
class Readout:
    """In-plane sampling: acquisition matrix = phantom grid / oversample; partial_fourier is the
    fraction of phase-encode lines (rows) acquired (0.5 < f <= 1); filter the apodisation."""
    oversample: int = 2
    partial_fourier: float = 1.0
    filter: str = "none"

    def validate(self) -> "Readout":
        if self.oversample < 1:
            raise Q2MRIError("--oversample must be 1 or more")
        if not (0.5 < self.partial_fourier <= 1.0):
            raise Q2MRIError(f"partial Fourier {self.partial_fourier} is outside 0.5-1 (fraction of phase-encode lines)")
        if self.filter not in FILTERS:
            raise Q2MRIError(f"unknown k-space filter {self.filter!r}; choose {', '.join(FILTERS)}")
        return self


DIRECT = Readout(oversample=1)


def _window(n: int, kind: str) -> np.ndarray:
    """Apodisation over the DFT frequencies of an n-point acquisition (numpy fft order)."""
    k = np.fft.fftfreq(n) * 2.0            # -1 .. 1 over the band
    if kind == "none":
        return np.ones(n)
    if kind == "hamming":
        return 0.54 + 0.46 * np.cos(np.pi * k)
    if kind == "hann":
        return 0.5 + 0.5 * np.cos(np.pi * k)
    if kind == "fermi":                    # GE-style: flat to 90 % of the band, then a smooth roll-off
        return 1.0 / (1.0 + np.exp((np.abs(k) - 0.9) / 0.03))
    raise Q2MRIError(f"unknown k-space filter {kind!r}")


def _band(n_fine: int, n: int, os: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the acquisition band in the fine DFT and the sub-pixel shift phase."""
    k = np.round(np.fft.fftfreq(n) * n).astype(int)
    idx = k % n_fine
    shift = np.exp(2j * np.pi * k * ((os - 1) / 2.0) / n_fine)
    return idx, shift


def k_weights(shape: tuple[int, int], readout: Readout, partial: bool = True) -> np.ndarray:
    """Window x sampling mask over the acquisition's k-space (numpy order), rows = phase encoding."""
    ny, nx = shape
    w = _window(ny, readout.filter)[:, None] * _window(nx, readout.filter)[None, :]
    if partial and readout.partial_fourier < 1.0:
        ky = np.round(np.fft.fftfreq(ny) * ny)
        first = -ny / 2.0 + (1.0 - readout.partial_fourier) * ny     # lines below are not acquired
        w = w * (ky >= first)[:, None]
    return w


def acquire(fine: np.ndarray, readout: Readout, *, partial: bool = True, noise_sigma: float = 0.0,
            rng: np.random.Generator | None = None) -> np.ndarray:
    """The complex acquisition-grid image (..., Y, X) of a fine-grid signal (..., Y*os, X*os)."""
    os = readout.oversample
    fy, fx = fine.shape[-2:]
    if fy % os or fx % os:
        raise Q2MRIError(f"the phantom grid {fy}x{fx} is not a multiple of the oversampling {os}")
    ny, nx = fy // os, fx // os
    w = k_weights((ny, nx), readout, partial)
    direct = os == 1 and np.all(w == 1.0) and noise_sigma == 0.0
    if direct:
        return np.asarray(fine, np.complex64)
    import torch
    big = torch.fft.fft2(torch.from_numpy(np.ascontiguousarray(fine, np.complex64))).numpy()
    iy, sy = _band(fy, ny, os)
    ix, sx = _band(fx, nx, os)
    k = big[..., iy[:, None], ix[None, :]] * (sy[:, None] * sx[None, :]) * (ny * nx / (fy * fx))
    if noise_sigma > 0:
        # white complex noise of SD noise_sigma per pixel, in k-space (the DFT of image noise)
        rng = rng or np.random.default_rng()
        n = noise_sigma * (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape))
        k = k + torch.fft.fft2(torch.from_numpy(n.astype(np.complex64))).numpy()
    return torch.fft.ifft2(torch.from_numpy((k * w).astype(np.complex64))).numpy()


def noise_gain(shape: tuple[int, int], readout: Readout) -> float:
    """Image-domain noise SD per unit of white k-space noise: rms of window x mask."""
    return float(np.sqrt(np.mean(k_weights(shape, readout) ** 2)))


def _labels(labels: np.ndarray, os: int) -> np.ndarray:
    """The most frequent tissue label of each acquisition voxel; background unless tissue fills half of it."""
    if os == 1:
        return labels.astype(np.int16)
    z, y, x = labels.shape
    blocks = labels.reshape(z, y // os, os, x // os, os).transpose(0, 1, 3, 2, 4).reshape(z, y // os, x // os, os * os)
    tissue = (blocks > 0).mean(-1)
    # the mode of os*os values: count, for each, how many in the block equal it (background never wins)
    counts = sum((blocks == blocks[..., i:i + 1]) for i in range(os * os)) * (blocks > 0)
    mode = np.take_along_axis(blocks, counts.argmax(-1)[..., None], -1)[..., 0]
    return np.where(tissue >= 0.5, mode, 0).astype(np.int16)


def truth_case(case, readout: Readout):
    """The case on the acquisition grid, maps resampled in k-space (see the module docstring)."""
    from .case import PhantomCase
    from ..io.images import Geometry
    os = readout.oversample
    plain = replace(readout, partial_fourier=1.0)
    if os == 1 and plain.filter == "none":
        return case                      # direct formation: the maps are the acquisition's own
    m = case.maps
    pd = m["PD"]
    with np.errstate(divide="ignore", invalid="ignore"):
        weighted = {"PD": pd, "R1": np.where(m["T1"] > 0, pd / m["T1"], 0.0), "R2": np.where(m["T2"] > 0, pd / m["T2"], 0.0),
                    "R2s": pd * m["R2s"], "FAT": pd * m.get("PDFF", np.zeros_like(pd))}
    smooth = {"B1": m["B1"], "B0": m["B0"], "receive": case.receive}
    res = lambda a: np.real(acquire(a.astype(np.float32), plain)).astype(np.float32)
    box = lambda a: block_mean(a, os)
    labels = _labels(case.labels, os)
    tissue = labels > 0
    q = {k: res(v) for k, v in weighted.items()}
    qb = {k: box(v) for k, v in weighted.items()}
    bad = (q["PD"] <= 1e-4) | (q["R1"] <= 0) | (q["R2"] <= 0) | (q["R2s"] <= 0) | (q["FAT"] < 0)
    q = {k: np.where(bad, qb[k], q[k]) for k in q}
    ok = tissue & (q["PD"] > 1e-6)
    safe = np.where(ok, q["PD"], 1.0)
    maps = {"PD": np.where(ok, np.clip(q["PD"], 0, 1), 0.0),
            "T1": np.where(ok, safe / np.where(ok, q["R1"], 1.0), 0.0),
            "T2": np.where(ok, safe / np.where(ok, q["R2"], 1.0), 0.0),
            "R2s": np.where(ok, q["R2s"] / safe, 0.0),
            "PDFF": np.where(ok, np.clip(q["FAT"] / safe, 0, 100), 0.0)}
    maps["T2s"] = np.where(ok & (maps["R2s"] > 0), 1000.0 / np.where(maps["R2s"] > 0, maps["R2s"], 1.0), 0.0)
    for k in ("B1", "B0"):
        maps[k] = np.where(ok, res(smooth[k]), 0.0)
    maps = {k: v.astype(np.float32) for k, v in maps.items()}
    receive = np.maximum(res(smooth["receive"]), 0.0)
    g = case.geometry
    sp = (g.spacing[0] * os, g.spacing[1] * os, g.spacing[2])
    # acquisition pixel i is centred on fine pixels i*os .. i*os + os - 1
    d = np.array(g.direction).reshape(3, 3)
    shift = d @ np.array([(os - 1) / 2.0 * g.spacing[0], (os - 1) / 2.0 * g.spacing[1], 0.0])
    geom = Geometry((g.size[0] // os, g.size[1] // os, g.size[2]), sp, tuple(np.array(g.origin) + shift), g.direction)
    return PhantomCase(case.phantom, labels, case.label_names, maps, receive, geom, case.field_strength_t, case.drawn,
                       oversample=1)
