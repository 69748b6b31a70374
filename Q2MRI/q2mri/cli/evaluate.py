"""q2mri evaluate: accuracy of a map against a reference."""
from __future__ import annotations

import argparse
import json


def cmd_evaluate(args) -> None:
    import numpy as np

    from ..io.images import as_3d, check_same_geometry, read_image
    from ..metrics.agreement import bland_altman, bland_altman_plot
    from ..metrics.image import evaluate
    pred = read_image(args.pred, "prediction")
    ref = read_image(args.ref, "reference")
    vols = [ref, pred]
    mask = None
    if args.mask:
        m = read_image(args.mask, "mask")
        as_3d(m, "mask")
        vols.append(m)
    vols = check_same_geometry(vols, args.resample)
    if args.mask:
        mask = vols[2].array > 0.5
    res = evaluate(vols[1].array, vols[0].array, mask)
    sel = mask if mask is not None else np.ones(ref.array.shape, bool)
    ba = bland_altman(vols[1].array[sel], vols[0].array[sel])
    res["bias"], res["loa_lower"], res["loa_upper"] = ba.bias, ba.loa_lower, ba.loa_upper
    if args.bland_altman:
        rng = np.random.default_rng(0)
        idx = np.flatnonzero(sel)
        idx = rng.choice(idx, min(idx.size, 5000), replace=False)
        bland_altman_plot(vols[1].array.ravel()[idx], vols[0].array.ravel()[idx], args.bland_altman,
                          label="prediction vs reference")
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        for k in ("l1", "corr", "ssim", "psnr", "mae", "mpe", "ccc", "bias", "loa_lower", "loa_upper", "voxels"):
            v = res[k]
            print(f"{k:10s} {v:.6g}" if isinstance(v, float) else f"{k:10s} {v}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="accuracy metrics of a map against a reference",
                       description="Relative l1, Pearson r, SSIM, PSNR, MAE, MPE (%) and Lin's CCC, plus the "
                                   "Bland-Altman bias and limits of agreement, inside an optional mask.")
    p.add_argument("--pred", required=True, metavar="IMG")
    p.add_argument("--ref", required=True, metavar="IMG")
    p.add_argument("--mask", metavar="IMG", help="e.g. a brain mask without CSF (papers/001)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--bland-altman", metavar="PNG", help="also write a Bland-Altman plot")
    p.add_argument("--resample", action="store_true", help="resample onto the reference grid")
    p.set_defaults(func=cmd_evaluate)
