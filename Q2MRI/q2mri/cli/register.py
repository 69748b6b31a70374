"""q2mri register: one image rigidly onto another (q2mri.registration)."""
from __future__ import annotations

import argparse

from .args import progress_bar


def cmd_register(args) -> None:
    from pathlib import Path

    from ..io.images import check_intensities, read_image
    from ..io.writer import OutputWriter
    from ..registration import register_volume
    fixed, moving = read_image(args.fixed, "fixed image"), read_image(args.moving, "moving image")
    for v, what in ((fixed, "fixed image"), (moving, "moving image")):
        check_intensities(v, what, allow_negative=True)
    moved, r = register_volume(fixed, moving, progress=progress_bar("register", args.quiet))
    out = Path(args.out)
    tfm = Path(args.transform) if args.transform else None
    # both written whole or neither (the writers commit on leaving, innermost first)
    with OutputWriter(out.parent if str(out.parent) else ".") as w, \
            OutputWriter(tfm.parent if tfm is not None and str(tfm.parent) else ".") as wt:
        w.write_image(out.name, moved.array, fixed.geometry, quantity="registered", unit="a.u.",
                      sidecar={"Fixed": str(args.fixed), "Moving": str(args.moving),
                               "RotationDeg": [float(x) for x in r.rotation_deg],
                               "TranslationMm": [float(x) for x in r.translation_mm], "MattesMI": r.metric})
        if tfm is not None:
            wt.write_transform(tfm.name, r.transform)
    rot = ", ".join(f"{x:.2f}" for x in r.rotation_deg)
    tr = ", ".join(f"{x:.2f}" for x in r.translation_mm)
    print(f"wrote {args.out}" + (f" and {args.transform}" if args.transform else "") +
          f": rotation ({rot}) deg, translation ({tr}) mm, {r.iterations} iterations at the finest level")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("register", help="rigidly register one image onto another",
                       description="Rigid (Euler 3D) registration of --moving onto --fixed: Mattes mutual information "
                                   "(works across contrasts), 3 resolution levels, body masks. Writes the moving image "
                                   "on the fixed grid and, with --transform, the ITK transform (fixed -> moving points), "
                                   "which Slicer and ITK tools read.")
    p.add_argument("--fixed", required=True, metavar="IMG")
    p.add_argument("--moving", required=True, metavar="IMG")
    p.add_argument("--out", required=True, metavar="IMG", help="the moving image resampled onto the fixed grid")
    p.add_argument("--transform", metavar="T.tfm", help="also write the transform (.tfm or .h5)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_register)
