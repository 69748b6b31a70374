"""q2mri synth: a new contrast from quantitative maps (papers/000 A.4)."""
from __future__ import annotations

import argparse

from ..acquisition import Acquisition
from ..names import SEQUENCE_NAMES


def cmd_synth(args) -> None:
    import numpy as np
    import torch

    from ..device import resolve_device
    from ..io.maps_dir import read_maps
    from ..io.writer import write_single
    from ..synthesis import required_maps, synthesize, t2s_used
    acq = Acquisition(flip_angle_deg=args.flip_angle, tr_ms=args.tr, te_ms=args.te, ti_ms=args.ti,
                      echo_spacing_ms=args.echo_spacing, n_excitations=args.n_excitations,
                      sequence=args.sequence, source="the command line").validate()
    needed = required_maps(args.sequence, acq)
    maps, geom = read_maps(args.maps, names=tuple(dict.fromkeys(needed + ("B1", "T2s"))), required=needed)
    dev = resolve_device(args.device)
    tmaps = {k: torch.from_numpy(np.asarray(v, np.float32)).to(dev) for k, v in maps.items()}
    img = synthesize(tmaps, args.sequence, acq).cpu().numpy()
    # flagged (NaN) voxels of the maps stay NaN: no plausible-looking signal where the maps failed
    img = np.nan_to_num(img.astype(np.float32), nan=np.nan, posinf=0.0, neginf=0.0)
    side = {"Sequence": args.sequence, "SynthesizedFrom": sorted(maps), **acq.to_bids()}
    if args.sequence in ("spgr", "mprage") and not t2s_used(args.sequence, acq, maps):
        side["T2sDecay"] = (f"none: TE {acq.te_ms or 0:g} ms is below 0.1 ms and there is no T2s map, so "
                            "exp(-TE/T2*) is taken as 1")
    write_single(args.out, img, geom, quantity=f"synthetic {args.sequence}", unit="a.u.", sidecar=side)
    print(f"wrote {args.out} ({args.sequence}, {', '.join(f'{k}={v}' for k, v in acq.to_bids().items())})")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="synthesize a weighted image from maps with the Bloch equations",
                       description="Synthesize a weighted image from quantitative maps. Maps are found by file name "
                                   "(T1.nii.gz, PD.nii.gz, B1.nii.gz, T2.nii.gz, T2s.nii.gz); a missing B1 means B1 = 1.")
    p.add_argument("--maps", required=True, metavar="DIR", help="folder with the maps")
    p.add_argument("--sequence", required=True, choices=SEQUENCE_NAMES)
    p.add_argument("--flip-angle", type=float, metavar="DEG", help="flip angle in degrees")
    p.add_argument("--tr", type=float, metavar="MS", help="repetition time in ms (MPRAGE: inversion to inversion)")
    p.add_argument("--te", type=float, metavar="MS", help="echo time in ms")
    p.add_argument("--ti", type=float, metavar="MS", help="inversion time in ms")
    p.add_argument("--echo-spacing", type=float, metavar="MS", help="MPRAGE readout excitation spacing in ms")
    p.add_argument("--n-excitations", type=int, metavar="N", help="MPRAGE readout excitations per inversion")
    p.add_argument("--out", required=True, metavar="IMG", help="output image (.nii.gz or .nrrd)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where torch runs (default auto)")
    p.set_defaults(func=cmd_synth)
