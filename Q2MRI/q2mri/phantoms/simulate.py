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

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .. import physics
from ..errors import Q2MRIError
from ..io.writer import OutputWriter
from . import fields
from .brain import make_brain
from .case import PhantomCase
from .knee import make_knee
from .liver import make_liver
from .imaging import Readout, acquire, noise_gain, truth_case
from .protocols import Image, Protocol, get_protocol

GROUND_TRUTH = ("maps on the acquisition grid: PD, PD/T1, PD/T2, PD*R2*, PD*PDFF, B1, B0 and receive of the "
                "oversampled phantom resampled in k-space with the images' truncation and filter (no partial Fourier), "
                "then T1 = PD/(PD/T1) etc.; the PD-weighted average over the point-spread function (docs/phantoms.md)")
MAKERS: dict[str, Callable[..., PhantomCase]] = {"brain": make_brain, "knee": make_knee, "liver": make_liver}
MAPS_BY_PHANTOM = {
    "brain": ("T1", "T2", "T2s", "R2s", "PD", "PDFF", "B1", "B0"),
    "knee": ("T1", "T2", "T2s", "R2s", "PD", "PDFF", "B1", "B0"),
    "liver": ("T1", "T2", "T2s", "R2s", "PD", "PDFF", "B1", "B0"),
}


def case_rng(seed: int, index: int) -> np.random.Generator:
    """Case i of a dataset draws from its own stream: same seed, same case, whatever N."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


def complex_signal(case: PhantomCase, img: Image, phase0: np.ndarray | None = None) -> np.ndarray:
    """The noiseless complex image on the case's grid, receive sensitivity included.

    Gradient-echo images (SPGR, GRE, AFI, MPRAGE's readout) carry the B0 phase at their TE,
    so that an acquisition voxel spanning a B0 gradient loses signal (intravoxel dephasing)
    when k-space formation averages it; spin-echo images (FLAIR, SE) are refocused. phase0
    is the transmit/receive phase at TE = 0 (complex protocols)."""
    m, a = case.maps, img.acq
    te = a.te_ms or 0.0
    ph0 = np.exp(1j * phase0) if phase0 is not None else 1.0
    gre_phase = lambda: np.exp(2j * np.pi * m["B0"] * te / 1000.0)
    if img.kind in ("spgr", "gre_magnitude", "gre_complex"):
        s = physics.spgr_water_fat(m["T1"], m["PD"], m.get("PDFF", np.zeros_like(m["PD"])), m["R2s"], m["B0"],
                                   a.flip_angle_deg, a.tr_ms, np.array([te]), m["B1"], case.field_strength_t)[..., 0]
        return (case.receive * s * ph0).astype(np.complex64)
    if img.kind == "mprage":
        s = physics.mprage(m["T1"], m["PD"], a.flip_angle_deg, a.tr_ms, a.ti_ms, a.echo_spacing_ms, a.n_excitations,
                           te, np.where(m["T2s"] > 0, m["T2s"], 1.0), m["B1"])
        return (case.receive * s * gre_phase() * ph0).astype(np.complex64)
    if img.kind == "se":
        s = physics.spin_echo(m["T1"], np.where(m["T2"] > 0, m["T2"], 1.0), m["PD"], a.tr_ms, te)
        return (case.receive * s * ph0).astype(np.complex64)
    if img.kind == "flair":
        s = physics.flair(m["T1"], np.where(m["T2"] > 0, m["T2"], 1.0), m["PD"], a.ti_ms, a.tr_ms, te)
        return (case.receive * s * ph0).astype(np.complex64)
    raise Q2MRIError(f"unknown image kind {img.kind}")


def clean_signal(case: PhantomCase, img: Image, phase0: np.ndarray | None = None) -> np.ndarray:
    """The noiseless image on the case's grid: complex for gre_complex, else its magnitude."""
    s = complex_signal(case, img, phase0)
    return s if img.kind == "gre_complex" else np.abs(s).astype(np.float32)


def afi_pair(case: PhantomCase, img1: Image, img2: Image, complex_out: bool = False) -> tuple[np.ndarray, np.ndarray]:
    m = case.maps
    te = img1.acq.te_ms or 0.0
    s = physics.afi(m["T1"], m["PD"], img1.acq.flip_angle_deg, img1.acq.tr_ms, img2.acq.tr_ms, te,
                    np.where(m["T2s"] > 0, m["T2s"], 1.0), m["B1"])
    if not complex_out:
        return (case.receive * s[..., 0]).astype(np.float32), (case.receive * s[..., 1]).astype(np.float32)
    ph = case.receive * np.exp(2j * np.pi * m["B0"] * te / 1000.0)
    return (ph * s[..., 0]).astype(np.complex64), (ph * s[..., 1]).astype(np.complex64)


def noise_sigma(clean: np.ndarray, body: np.ndarray, snr: float) -> float:
    level = float(np.median(np.abs(clean[body]))) if body.any() else 1.0
    return level / snr


@dataclass
class SimulatedImage:
    image: Image
    data: np.ndarray        # float32 magnitude or complex64, on the acquisition grid
    sigma: float            # noise SD per channel in the image (after the filter)


def simulate_images(case: PhantomCase, protocol: Protocol, snr: float | None, rng: np.random.Generator,
                    phase0: np.ndarray | None = None, readout: Readout | None = None,
                    body: np.ndarray | None = None) -> list[SimulatedImage]:
    """Noisy (or noiseless when snr is None) images of every acquisition in the protocol, formed
    in k-space (phantoms.imaging) from the case's (fine) grid onto the acquisition grid.

    The noise SD is set after the filter: sigma = median body signal of the clean image / SNR,
    with ``body`` the acquisition-grid tissue mask (default: the case's labels, which is right
    when the grid is not oversampled)."""
    readout = (readout or Readout(oversample=case.oversample)).validate()
    fine: dict[str, np.ndarray] = {}
    imgs = {i.name: i for i in protocol.images}
    for img in protocol.images:
        if img.kind == "afi1":
            pair = [i for i in protocol.images if i.kind == "afi2"][0]
            fine[img.name], fine[pair.name] = afi_pair(case, img, pair, complex_out=True)
        elif img.kind != "afi2":
            fine[img.name] = complex_signal(case, img, phase0)
    if body is None:
        body = case.body
    gain = noise_gain(body.shape[1:], readout)
    out = []
    for name, f in fine.items():
        clean = acquire(f, readout)
        keep_complex = imgs[name].kind == "gre_complex"
        if snr is None:
            out.append(SimulatedImage(imgs[name], clean if keep_complex else np.abs(clean).astype(np.float32), 0.0))
            continue
        sigma = noise_sigma(clean, body, snr)
        noisy = acquire(f, readout, noise_sigma=sigma / gain, rng=rng) if (readout.oversample > 1 or gain != 1.0) \
            else fields.complex_noise(rng, clean, sigma)
        data = noisy.astype(np.complex64) if keep_complex else np.abs(noisy).astype(np.float32)
        out.append(SimulatedImage(imgs[name], data, sigma))
    return [o for i in protocol.images for o in out if o.image.name == i.name]


def make_case(phantom: str, rng: np.random.Generator, slices: int | None = None, matrix: int | None = None,
              field_t: float = 3.0, oversample: int = 1) -> PhantomCase:
    """One phantom case on a grid ``oversample`` times finer in-plane than the acquisition matrix."""
    return MAKERS[phantom](rng, **case_arguments(phantom, slices, matrix, field_t, oversample))


def case_arguments(phantom: str, slices: int | None, matrix: int | None, field_t: float, oversample: int) -> dict:
    """The phantom maker's keyword arguments, checked (one clear line per mistake)."""
    if phantom not in MAKERS:
        raise Q2MRIError(f"unknown phantom {phantom!r}; choose brain, knee or liver")
    kw: dict = {"field_t": float(field_t), "oversample": int(oversample)}
    if not (0.0 < float(field_t) <= 11.7):
        raise Q2MRIError(f"field strength {field_t} T is outside 0-11.7 T; give 1.5, 3 or 7")
    if oversample < 1:
        raise Q2MRIError("--oversample must be 1 or more")
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
    return kw


def draw_phase0(rng: np.random.Generator, shape: tuple[int, int, int], oversample: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth transmit/receive phase at TE = 0: (acquisition grid, phantom grid)."""
    coarse = (shape[0], shape[1] // oversample, shape[2] // oversample)
    ph = (rng.uniform(-np.pi, np.pi) + 0.8 * fields.smooth_field(rng, coarse, 3)).astype(np.float32)
    return ph, fields.upsample_inplane(ph, oversample)


def protocol_at(protocol: Protocol, field_t: float | None) -> Protocol:
    """The protocol with every acquisition at field_t (None: as it is)."""
    if field_t is None:
        return protocol
    imgs = tuple(dataclasses.replace(i, acq=i.acq.with_overrides(field_strength_t=float(field_t))) for i in protocol.images)
    return dataclasses.replace(protocol, images=imgs)


def simulate_case(phantom: str, protocol: Protocol, rng: np.random.Generator, snr: float | None, *,
                  slices: int | None = None, matrix: int | None = None, readout: Readout = Readout()):
    """One case end to end: the phantom on the fine grid, its images formed in k-space, and the
    ground truth on the acquisition grid. Returns (truth case, images, phase0 or None)."""
    readout = readout.validate()
    field_t = protocol.images[0].acq.field_strength_t or 3.0
    case = make_case(phantom, rng, slices, matrix, field_t, readout.oversample)
    truth = truth_case(case, readout)
    phase0 = fine0 = None
    if any(img.kind == "gre_complex" for img in protocol.images):
        phase0, fine0 = draw_phase0(rng, case.labels.shape, readout.oversample)
    images = simulate_images(case, protocol, snr, rng, fine0, readout, body=truth.body)
    return truth, images, phase0


def _compact(a: np.ndarray, bits: int) -> np.ndarray:
    """Zero the lowest mantissa bits of float32 data (relative precision 2^-(23-bits)) so
    that noisy data compress; used for the small bundled sample."""
    if bits <= 0:
        return a
    v = np.ascontiguousarray(a, np.float32).view(np.uint32)
    return (v & np.uint32(~((1 << bits) - 1) & 0xFFFFFFFF)).view(np.float32)


def write_case(folder: Path, case: PhantomCase, images: list[SimulatedImage], *, snr: float | None, protocol: Protocol,
               compact_bits: int = 0, phase0: np.ndarray | None = None, readout: Readout | None = None) -> dict:
    """Write one case (maps, labels, images with BIDS sidecars) whole or not at all."""
    g = case.geometry
    entry = {"id": folder.name, "images": [], "maps": []}
    with OutputWriter(folder) as w:
        for name in MAPS_BY_PHANTOM[case.phantom]:
            w.write_image(f"maps/{name}.nii.gz", _compact(case.maps[name], compact_bits), g,
                          sidecar={"Description": "ground truth", "Phantom": case.phantom, "GroundTruth": GROUND_TRUTH})
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
            if readout is not None:
                side.update({"PartialFourier": readout.partial_fourier, "Q2MRIKSpaceFilter": readout.filter,
                             "Q2MRIOversample": readout.oversample})
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


def _simulate_one(args: tuple) -> dict:
    """One case, simulated and written (a worker's unit of work)."""
    phantom, protocol, seed, i, snr, slices, matrix, readout, out, compact_bits = args
    truth, images, phase0 = simulate_case(phantom, protocol, case_rng(seed, i), snr, slices=slices, matrix=matrix,
                                          readout=readout)
    return write_case(Path(out) / f"case-{i:04d}", truth, images, snr=snr, protocol=protocol, compact_bits=compact_bits,
                      phase0=phase0, readout=readout)


def _worker_init() -> None:
    import torch
    torch.set_num_threads(1)         # the workers share the cores; one thread each


def default_workers(n_cases: int) -> int:
    return max(1, min(n_cases, os.cpu_count() or 1, 4))


def simulate_dataset(phantom: str, protocol_name: str, n: int, seed: int, out: str | os.PathLike, *,
                     slices: int | None = None, snr: float | None = 100.0, matrix: int | None = None,
                     compact_bits: int = 0, progress: Callable[[int, int], None] | None = None,
                     field_strength: float | None = None, oversample: int = 2, partial_fourier: float | None = None,
                     kspace_filter: str | None = None, workers: int = 1) -> Path:
    """Write DIR/case-XXXX/ for n cases plus DIR/manifest.json, case by case.

    field_strength: 1.5, 3 or 7 T (default: the preset's); oversample: phantom grid refinement
    over the acquisition matrix for k-space image formation (1 = images computed directly on
    the acquisition grid); partial_fourier, kspace_filter: the readout (default: the preset's);
    workers: cases simulated in parallel processes (case i always draws from its own
    stream, so the data do not depend on it)."""
    protocol = protocol_at(get_protocol(protocol_name), field_strength)
    if protocol.phantom != phantom:
        raise Q2MRIError(f"protocol {protocol_name} is for the {protocol.phantom} phantom, not {phantom}; "
                         f"choose a {phantom} protocol")
    if n < 1:
        raise Q2MRIError("--cases must be 1 or more")
    if snr is not None and snr <= 0:
        raise Q2MRIError("--snr must be > 0")
    if workers < 1:
        raise Q2MRIError("--workers must be 1 or more")
    readout = Readout(oversample, protocol.partial_fourier if partial_fourier is None else partial_fourier,
                      protocol.kspace_filter if kspace_filter is None else kspace_filter).validate()
    case_arguments(phantom, slices, matrix, protocol.images[0].acq.field_strength_t or 3.0, oversample)
    out = Path(out)
    with OutputWriter(out):
        pass  # fails early, with one clear line, if out cannot be written
    manifest = {"phantom": phantom, "protocol": protocol_name, "protocol_source": protocol.source, "seed": seed,
                "snr": snr, "slices": slices, "matrix": matrix,
                "field_strength_t": protocol.images[0].acq.field_strength_t,
                "readout": dataclasses.asdict(readout), "ground_truth": GROUND_TRUTH, "cases": []}
    jobs = [(phantom, protocol, seed, i, snr, slices, matrix, readout, str(out), compact_bits) for i in range(n)]
    if progress:
        progress(0, n)
    entries: dict[int, dict] = {}
    if workers == 1 or n == 1:
        for i, job in enumerate(jobs):
            entries[i] = _simulate_one(job)
            if progress:
                progress(i + 1, n)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed
        ctx = multiprocessing.get_context("spawn")     # no fork after torch's threads have started
        with ProcessPoolExecutor(max_workers=min(workers, n), mp_context=ctx, initializer=_worker_init) as pool:
            futures = {pool.submit(_simulate_one, job): i for i, job in enumerate(jobs)}
            for done, fut in enumerate(as_completed(futures), 1):
                entries[futures[fut]] = fut.result()
                if progress:
                    progress(done, n)
    manifest["cases"] = [entries[i] for i in range(n)]
    with OutputWriter(out) as w:
        w.write_json("manifest.json", manifest)
    return out
