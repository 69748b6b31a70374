"""q2mri simulate: physics-driven training data from digital phantoms."""
from __future__ import annotations

import argparse

from ..names import KSPACE_FILTERS, PROTOCOL_NAMES
from .args import progress_bar


def cmd_simulate(args) -> None:
    import shutil
    import tempfile
    from pathlib import Path

    from ..phantoms.simulate import default_workers, simulate_dataset
    snr = None if args.snr == 0 else args.snr
    target = args.out
    if args.bids:
        from ..errors import Q2MRIError
        if Path(args.out).exists() and any(Path(args.out).iterdir()):
            raise Q2MRIError(f"BIDS folder {args.out} exists and is not empty; give a new folder")
        Path(args.out).resolve().parent.mkdir(parents=True, exist_ok=True)
        target = tempfile.mkdtemp(prefix=".q2mri-sim-", dir=Path(args.out).resolve().parent)
    try:
        out = simulate_dataset(args.phantom, args.protocol, args.cases, args.seed, target, slices=args.slices,
                               snr=snr, matrix=args.matrix, compact_bits=args.compact_bits,
                               field_strength=args.field_strength, oversample=args.oversample,
                               partial_fourier=args.partial_fourier, kspace_filter=args.kspace_filter,
                               workers=args.workers or default_workers(args.cases),
                               progress=progress_bar("simulate", args.quiet))
        if args.bids:
            from ..cohort.bids_sim import write_bids
            write_bids(out, args.out, args.protocol)
            print(f"wrote {args.cases} {args.phantom} subject(s) with protocol {args.protocol} as BIDS to {args.out} "
                  "(ground truth in derivatives/truth)")
            return
    finally:
        if args.bids:
            shutil.rmtree(target, ignore_errors=True)
    print(f"wrote {args.cases} {args.phantom} case(s) with protocol {args.protocol} to {out} (manifest.json)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="simulate phantom cases: ground-truth maps, labels and images",
                       description="Digital phantoms (the whole head around the MNI152 2009a brain; procedural knee; "
                                   "liver and abdomen) with a physical B1+ field, imaged with a named protocol through "
                                   "the Q2MRI physics and formed in k-space. Writes DIR/case-XXXX/maps/ (ground truth "
                                   "on the acquisition grid, labels), the images with BIDS sidecars, and "
                                   "DIR/manifest.json. Same seed, same data.")
    p.add_argument("--phantom", required=True, choices=("brain", "knee", "liver"))
    p.add_argument("--cases", type=int, required=True, metavar="N")
    p.add_argument("--seed", type=int, required=True, metavar="S")
    p.add_argument("--protocol", required=True, choices=PROTOCOL_NAMES, help="the papers' protocols")
    p.add_argument("--field-strength", type=float, choices=(1.5, 3.0, 7.0), metavar="T",
                   help="1.5, 3 or 7 T: tissue relaxation, fat frequency, B0 and B1+ follow it (default: the preset's, 3)")
    p.add_argument("--slices", type=int, metavar="K", help="slices per case (brain 24, knee 36, liver 32 by default)")
    p.add_argument("--matrix", type=int, metavar="N", help="in-plane acquisition matrix for knee (256) and liver (180)")
    p.add_argument("--snr", type=float, default=100.0, metavar="X",
                   help="signal-to-noise ratio per image, median body signal / noise SD (default 100; 0 = noiseless)")
    p.add_argument("--oversample", type=int, default=2, metavar="F",
                   help="make the phantom F times finer in-plane than the matrix and form the images in k-space "
                        "(truncation, Gibbs ringing, partial volume); 1 computes them directly on the matrix (default 2)")
    p.add_argument("--partial-fourier", type=float, metavar="F",
                   help="fraction of phase-encode lines acquired, 0.5-1, zero-filled (default: the preset's, 1)")
    p.add_argument("--kspace-filter", choices=KSPACE_FILTERS, help="apodisation filter (default: the preset's, none)")
    p.add_argument("--workers", type=int, metavar="N", help="cases simulated in parallel (default: cores, at most 4)")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--compact-bits", type=int, default=0, metavar="B",
                   help="zero the lowest B mantissa bits of the stored floats (images and maps) so files compress; "
                        "12 keeps a relative precision of 5e-4, far below the noise (default 0: exact)")
    p.add_argument("--bids", action="store_true",
                   help="write a raw BIDS dataset (qMRI names: VFA flip-<n>, TB1AFI acq-tr1/tr2, MEGRE echo-<n> "
                        "part-mag/phase, T1w, FLAIR; sidecars in seconds) with the truth in derivatives/truth")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_simulate)
