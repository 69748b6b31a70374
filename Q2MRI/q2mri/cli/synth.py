"""q2mri synth: a new contrast from quantitative maps (papers/000 A.4)."""
from __future__ import annotations

import argparse

from ..acquisition import Acquisition
from ..errors import Q2MRIError
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
    notes = []
    if args.set:
        from ..contrast import apply_settings, parse_setting
        from ..io.images import as_3d, read_image
        from .roi import _label_names
        if not args.labels:
            raise Q2MRIError("--set needs the label image the labels refer to: give --labels L.nii.gz")
        settings = [parse_setting(t) for t in args.set]
        lab = read_image(args.labels, "label image")
        if not lab.geometry.matches(geom):
            raise Q2MRIError(f"label image {args.labels} is on another grid than the maps; give labels drawn on the maps")
        maps, notes = apply_settings(maps, np.round(as_3d(lab, "label image")).astype(int), _label_names(args.labels),
                                     settings, args.field_strength)
    elif args.labels:
        raise Q2MRIError("--labels is used with --set LABEL:T1=MS or LABEL:agent=NAME:CONCmM; give --set too")
    dev = resolve_device(args.device)
    tmaps = {k: torch.from_numpy(np.asarray(v, np.float32)).to(dev) for k, v in maps.items()}
    img = synthesize(tmaps, args.sequence, acq).cpu().numpy()
    # flagged (NaN) voxels of the maps stay NaN: no plausible-looking signal where the maps failed
    img = np.nan_to_num(img.astype(np.float32), nan=np.nan, posinf=0.0, neginf=0.0)
    side = {"Sequence": args.sequence, "SynthesizedFrom": sorted(maps), **acq.to_bids()}
    if notes:
        side["VirtualContrast"] = notes
    if args.sequence in ("spgr", "mprage") and not t2s_used(args.sequence, acq, maps):
        side["T2sDecay"] = (f"none: TE {acq.te_ms or 0:g} ms is below 0.1 ms and there is no T2s map, so "
                            "exp(-TE/T2*) is taken as 1")
    write_single(args.out, img, geom, quantity=f"synthetic {args.sequence}", unit="a.u.", sidecar=side)
    print(f"wrote {args.out} ({args.sequence}, {', '.join(f'{k}={v}' for k, v in acq.to_bids().items())})"
          + "".join(f"\n  virtual contrast: {n}" for n in notes))


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
    p.add_argument("--labels", metavar="L.nii.gz", help="label image for --set (names from labels.json beside it)")
    p.add_argument("--set", action="append", metavar="LABEL:KEY=VALUE",
                   help="virtual contrast before synthesis: LABEL:T1=300 (T1, T2, T2s in ms; PD relative; several as "
                        "T1=300,T2=50), or LABEL:agent=gadobutrol:0.5mM (1/T1 = 1/T1_0 + r1 C, 1/T2 = 1/T2_0 + r2 C; "
                        "Rohrer et al. 2005 relaxivities); LABEL is a name or number; repeat for more")
    p.add_argument("--field-strength", type=float, metavar="T", help="field strength for the relaxivities of an agent")
    p.set_defaults(func=cmd_synth)
