"""q2mri predict and q2mri models."""
from __future__ import annotations

import argparse
import json
import sys
import warnings

from ..errors import Q2MRIError
from ..names import TASK_NAMES
from .args import (add_common, add_register, number_list, print_flagged, progress_bar, write_quality,
                   write_registrations)
from .dicom import add_dicom_out


def cmd_predict(args) -> None:
    import numpy as np

    from ..io.writer import OutputWriter
    from .common import load_mask, load_series
    from ..models.predict import predict
    from .dicom import check_dicom_out, write_dicom_out
    check_dicom_out(args)
    s = load_series(args.input, args.phase, resample=args.resample, register=args.register,
                    progress=progress_bar("register", args.quiet))
    for n in s.notes:
        print(f"q2mri: {n if n.startswith('warning:') else 'note: ' + n}", file=sys.stderr)
    n = s.data.shape[-1]
    over = {"flip_angle_deg": args.flip_angle, "tr_ms": args.tr, "te_ms": args.te, "ti_ms": args.ti}
    acqs = []
    for i, a in enumerate(s.acquisitions):
        kw = {}
        for f, vals in over.items():
            if vals is not None:
                if len(vals) not in (1, n):
                    raise Q2MRIError(f"a protocol flag has {len(vals)} values for {n} inputs; give 1 or {n}")
                kw[f] = vals[0] if len(vals) == 1 else vals[i]
        acqs.append(a.with_overrides(**kw).validate())
    mask = load_mask(args.mask, s.geometry, args.resample)
    images = [s.data[..., i] for i in range(n)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = predict(args.task, images, acqs, model=args.model, device=args.device, mask=mask,
                      progress=progress_bar(f"predict {args.task}", args.quiet), refine_steps=args.refine_steps)
    for w in caught:
        print(f"q2mri: warning: {w.message}", file=sys.stderr)
    with OutputWriter(args.out) as w:
        for name, arr in res.maps.items():
            side = {"Task": args.task, "Model": res.model, "Sources": s.paths}
            if name == "quality":
                fam = res.familiarity
                write_quality(w, f"quality.{args.format}", arr, s.geometry,
                              {**side, "Method": "DESPOT1 identifiability of the inputs with the predicted B1 (two flip "
                                                 "angles); slices unfamiliar to the network (models.familiarity)",
                               "FeatureDistanceOverLimit": None if fam is None else [round(float(v), 3) for v in fam]},
                              "predicted", "flagged: the inputs determine no value here (NaN in the maps), or the "
                                           "slice is unfamiliar to the network (maps kept, SD widened)")
                continue
            if name == "consistency":
                side["MeanConsistency"] = res.consistency
            w.write_image(f"{name}.{args.format}", arr.astype(np.float32), s.geometry, sidecar=side)
        write_registrations(w, s)
    print(f"wrote {', '.join(res.maps)} to {args.out}" +
          (f"; mean consistency residual {res.consistency:.4f}" if res.consistency is not None else ""))
    if "quality" in res.maps:
        print_flagged(res.maps["quality"])
    write_dicom_out(args, res.maps, s.geometry, args.task)


def cmd_models(args) -> None:
    from ..models.registry import list_models
    cards = list_models()
    if args.json:
        print(json.dumps(cards, indent=2))
        return
    if not cards:
        print("no bundled models yet (train one with 'q2mri train')")
    for c in cards:
        print(f"{c['task']:14s} {c.get('path', '')}\n  inputs {c['inputs']} -> outputs {c['outputs']}; "
              f"ranges {c.get('protocol_ranges', {})}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict quantitative maps from weighted images with a network",
                       description="Maps (units of q2mri.maps), <MAP>_sd uncertainty and consistency (the physics "
                                   "residual) on the input geometry. Acquisition parameters come from the sidecars or "
                                   "DICOM; flags override them.")
    p.add_argument("--task", required=True, choices=TASK_NAMES)
    p.add_argument("--input", action="append", required=True, metavar="IMG")
    p.add_argument("--phase", action="append", metavar="IMG", help="phase image per --input (fatwater-ipop)")
    p.add_argument("--flip-angle", type=number_list, metavar="DEG[,DEG]")
    p.add_argument("--tr", type=number_list, metavar="MS[,MS]")
    p.add_argument("--te", type=number_list, metavar="MS[,MS]")
    p.add_argument("--ti", type=number_list, metavar="MS[,MS]")
    p.add_argument("--model", metavar="NAME|PATH", help="a bundled model name or a model folder (default: the task's)")
    p.add_argument("--refine-steps", type=int, default=None, metavar="N",
                   help="fine-tune on this scan with the Bloch loss first (papers/004; needs a series, e.g. two flip "
                        "angles); default: 10 where the inputs form such a series, else 0")
    p.add_argument("--out", required=True, metavar="DIR")
    add_common(p)
    add_dicom_out(p)
    add_register(p)
    p.set_defaults(func=cmd_predict)
    q = sub.add_parser("models", help="list the bundled models", description="Bundled models with their inputs, "
                       "outputs and protocol ranges.")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_models)
