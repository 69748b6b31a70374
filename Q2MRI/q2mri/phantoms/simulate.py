"""Images from a phantom case and a protocol, through the core physics; writing datasets.

Every image is exactly explained by the case's maps plus noise (papers/003, physics-driven
training data):
- SPGR / GRE magnitude:  S = c * |physics.spgr_water_fat(T1, PD, PDFF, R2*, B0, FA, TR, TE, B1)|,
  the SPGR T1 weighting (papers/000 A.4) times the water + multi-peak fat confounder model;
  for water tissues this is physics.spgr with T2* decay. One T1 per voxel (no separate
  water and fat T1).
- AFI:     S1, S2 = c * physics.afi(T1, PD, FA, TR1, TR2, TE, T2*, B1)
- complex multi-echo: c * e^{i phi0} * spgr_water_fat(...) as above (liver-me)
- MPRAGE:  c * physics.mprage(T1, PD, FA, TR, TI, echo spacing, N, TE, T2*, B1)
- FLAIR:   c * physics.flair(T1, T2, PD, TI, TR, TE) (ideal inversion and refocusing: no B1)
- spin echo: c * physics.spin_echo(T1, T2, PD, TR, TE) (ideal pulses)
c is the receive sensitivity (maps/receive.nii.gz); the ground-truth PD is free of it, so a
network must learn to see through it (or use the normalisation described in
docs/phantoms.md). phi0 is a smooth transmit/receive phase (maps/phase0.nii.gz).
Noise: Rician for magnitude images, complex Gaussian for complex ones, with
sigma = median body signal of that image / SNR.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .. import physics
from ..errors import Q2MRIError
from ..io.writer import OutputWriter
from . import fields
from .brain import make_brain
from .case import PhantomCase
from .knee import make_knee
from .liver import make_liver
from .protocols import Image, Protocol, get_protocol

MAKERS: dict[str, Callable[..., PhantomCase]] = {"brain": make_brain, "knee": make_knee, "liver": make_liver}
MAPS_BY_PHANTOM = {
    "brain": ("T1", "T2", "T2s", "R2s", "PD", "B1", "B0"),
    "knee": ("T1", "T2", "T2s", "R2s", "PD", "PDFF", "B1", "B0"),
    "liver": ("T1", "T2", "T2s", "R2s", "PD", "PDFF", "B1", "B0"),
}


def case_rng(seed: int, index: int) -> np.random.Generator:
    """Case i of a dataset draws from its own stream: same seed, same case, whatever N."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


def clean_signal(case: PhantomCase, img: Image, phase0: np.ndarray | None = None) -> np.ndarray:
    """The noiseless image (complex for gre_complex) including the receive sensitivity."""
    m, a = case.maps, img.acq
    te = a.te_ms or 0.0
    if img.kind in ("spgr", "gre_magnitude", "gre_complex"):
        s = physics.spgr_water_fat(m["T1"], m["PD"], m.get("PDFF", np.zeros_like(m["PD"])), m["R2s"], m["B0"],
                                   a.flip_angle_deg, a.tr_ms, np.array([te]), m["B1"], case.field_strength_t)[..., 0]
        if img.kind == "gre_complex":
            return (case.receive * s * np.exp(1j * (phase0 if phase0 is not None else 0.0))).astype(np.complex64)
        return (case.receive * np.abs(s)).astype(np.float32)
    if img.kind == "mprage":
        s = physics.mprage(m["T1"], m["PD"], a.flip_angle_deg, a.tr_ms, a.ti_ms, a.echo_spacing_ms, a.n_excitations,
                           te, np.where(m["T2s"] > 0, m["T2s"], 1.0), m["B1"])
        return (case.receive * s).astype(np.float32)
    if img.kind == "se":
        s = physics.spin_echo(m["T1"], np.where(m["T2"] > 0, m["T2"], 1.0), m["PD"], a.tr_ms, te)
        return (case.receive * s).astype(np.float32)
    if img.kind == "flair":
        s = physics.flair(m["T1"], np.where(m["T2"] > 0, m["T2"], 1.0), m["PD"], a.ti_ms, a.tr_ms, te)
        return (case.receive * s).astype(np.float32)
    raise Q2MRIError(f"unknown image kind {img.kind}")


def afi_pair(case: PhantomCase, img1: Image, img2: Image) -> tuple[np.ndarray, np.ndarray]:
    m = case.maps
    s = physics.afi(m["T1"], m["PD"], img1.acq.flip_angle_deg, img1.acq.tr_ms, img2.acq.tr_ms, img1.acq.te_ms or 0.0,
                    np.where(m["T2s"] > 0, m["T2s"], 1.0), m["B1"])
    return (case.receive * s[..., 0]).astype(np.float32), (case.receive * s[..., 1]).astype(np.float32)


def noise_sigma(clean: np.ndarray, body: np.ndarray, snr: float) -> float:
    level = float(np.median(np.abs(clean[body]))) if body.any() else 1.0
    return level / snr


@dataclass
class SimulatedImage:
    image: Image
    data: np.ndarray        # float32 magnitude or complex64
    sigma: float


def simulate_images(case: PhantomCase, protocol: Protocol, snr: float | None, rng: np.random.Generator,
                    phase0: np.ndarray | None = None) -> list[SimulatedImage]:
    """Noisy (or noiseless when snr is None) images of every acquisition in the protocol."""
    clean: dict[str, np.ndarray] = {}
    imgs = {i.name: i for i in protocol.images}
    for img in protocol.images:
        if img.kind == "afi1":
            pair = [i for i in protocol.images if i.kind == "afi2"][0]
            clean[img.name], clean[pair.name] = afi_pair(case, img, pair)
        elif img.kind != "afi2":
            clean[img.name] = clean_signal(case, img, phase0)
    out = []
    for name, s in clean.items():
        if snr is None:
            out.append(SimulatedImage(imgs[name], s, 0.0))
            continue
        sigma = noise_sigma(s, case.body, snr)
        noisy = fields.complex_noise(rng, s, sigma).astype(np.complex64) if np.iscomplexobj(s) \
            else fields.rician(rng, s, sigma).astype(np.float32)
        out.append(SimulatedImage(imgs[name], noisy, sigma))
    return [o for i in protocol.images for o in out if o.image.name == i.name]


def make_case(phantom: str, rng: np.random.Generator, slices: int | None = None, matrix: int | None = None) -> PhantomCase:
    if phantom not in MAKERS:
        raise Q2MRIError(f"unknown phantom {phantom!r}; choose brain, knee or liver")
    kw = {}
    if slices is not None:
        if slices < 1:
            raise Q2MRIError("--slices must be 1 or more")
        kw["slices"] = int(slices)
    if matrix is not None:
        if phantom == "brain":
            raise Q2MRIError("the brain phantom has the MNI template's 1 mm grid; --matrix is for knee and liver")
        if matrix < 16:
            raise Q2MRIError("--matrix must be 16 or more")
        kw["matrix"] = int(matrix)
    return MAKERS[phantom](rng, **kw)


def _compact(a: np.ndarray, bits: int) -> np.ndarray:
    """Zero the lowest mantissa bits of float32 data (relative precision 2^-(23-bits)) so
    that noisy data compress; used for the small bundled sample."""
    if bits <= 0:
        return a
    v = np.ascontiguousarray(a, np.float32).view(np.uint32)
    return (v & np.uint32(~((1 << bits) - 1) & 0xFFFFFFFF)).view(np.float32)


def write_case(folder: Path, case: PhantomCase, images: list[SimulatedImage], *, snr: float | None, protocol: Protocol,
               compact_bits: int = 0, phase0: np.ndarray | None = None) -> dict:
    """Write one case (maps, labels, images with BIDS sidecars) whole or not at all."""
    g = case.geometry
    entry = {"id": folder.name, "images": [], "maps": []}
    with OutputWriter(folder) as w:
        for name in MAPS_BY_PHANTOM[case.phantom]:
            w.write_image(f"maps/{name}.nii.gz", _compact(case.maps[name], compact_bits), g,
                          sidecar={"Description": "ground truth", "Phantom": case.phantom})
            entry["maps"].append(f"maps/{name}.nii.gz")
        w.write_image("maps/receive.nii.gz", _compact(case.receive, compact_bits), g, quantity="receive", unit="relative",
                      sidecar={"Description": "receive-coil sensitivity multiplying every image; not part of PD"})
        if phase0 is not None:
            w.write_image("maps/phase0.nii.gz", phase0.astype(np.float32), g, quantity="phase0", unit="rad",
                          sidecar={"Description": "phase at TE = 0 of the complex images"})
        w.write_image("maps/labels.nii.gz", case.labels.astype(np.int16), g, quantity="labels", unit="label",
                      sidecar={"labels": {str(k): v for k, v in case.label_names.items()}})
        for si in images:
            side = {**si.image.acq.to_bids(), "Q2MRIPhantom": case.phantom, "Q2MRIProtocol": protocol.name,
                    "Q2MRISNR": snr, "NoiseSigma": si.sigma}
            if np.iscomplexobj(si.data):
                w.write_image(f"{si.image.name}_mag.nii.gz", _compact(np.abs(si.data), compact_bits), g,
                              quantity="magnitude", unit="a.u.", sidecar=side)
                w.write_image(f"{si.image.name}_phase.nii.gz", _compact(np.angle(si.data), compact_bits), g,
                              quantity="phase", unit="rad", sidecar=side)
                entry["images"] += [f"{si.image.name}_mag.nii.gz", f"{si.image.name}_phase.nii.gz"]
            else:
                w.write_image(f"{si.image.name}.nii.gz", _compact(si.data, compact_bits), g, quantity=si.image.kind,
                              unit="a.u.", sidecar=side)
                entry["images"].append(f"{si.image.name}.nii.gz")
    entry["drawn"] = json.loads(json.dumps(case.drawn, default=float))
    return entry


def iter_cases(phantom: str, n: int, seed: int, slices: int | None = None,
               matrix: int | None = None) -> Iterator[tuple[int, PhantomCase, np.random.Generator]]:
    """Cases one at a time (streaming), each with its own random stream."""
    for i in range(n):
        rng = case_rng(seed, i)
        yield i, make_case(phantom, rng, slices, matrix), rng


def simulate_dataset(phantom: str, protocol_name: str, n: int, seed: int, out: str | os.PathLike, *,
                     slices: int | None = None, snr: float | None = 100.0, matrix: int | None = None,
                     compact_bits: int = 0, progress: Callable[[int, int], None] | None = None) -> Path:
    """Write DIR/case-XXXX/ for n cases plus DIR/manifest.json, streaming case by case."""
    protocol = get_protocol(protocol_name)
    if protocol.phantom != phantom:
        raise Q2MRIError(f"protocol {protocol_name} is for the {protocol.phantom} phantom, not {phantom}; "
                         f"choose a {phantom} protocol")
    if n < 1:
        raise Q2MRIError("--cases must be 1 or more")
    if snr is not None and snr <= 0:
        raise Q2MRIError("--snr must be > 0")
    out = Path(out)
    with OutputWriter(out):
        pass  # fails early, with one clear line, if out cannot be written
    manifest = {"phantom": phantom, "protocol": protocol_name, "protocol_source": protocol.source, "seed": seed,
                "snr": snr, "slices": slices, "matrix": matrix, "cases": []}
    if progress:
        progress(0, n)
    for i, case, rng in iter_cases(phantom, n, seed, slices, matrix):
        phase0 = None
        if any(img.kind == "gre_complex" for img in protocol.images):
            phase0 = (rng.uniform(-np.pi, np.pi) + 0.8 * fields.smooth_field(rng, case.labels.shape, 3)).astype(np.float32)
        images = simulate_images(case, protocol, snr, rng, phase0)
        manifest["cases"].append(write_case(out / f"case-{i:04d}", case, images, snr=snr, protocol=protocol,
                                            compact_bits=compact_bits, phase0=phase0))
        if progress:
            progress(i + 1, n)
    with OutputWriter(out) as w:
        w.write_json("manifest.json", manifest)
    return out
