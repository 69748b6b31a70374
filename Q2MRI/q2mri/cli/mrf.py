"""q2mri mrf dictionary | match | synth: MR fingerprinting (papers/002), q2mri.mrf."""
from __future__ import annotations

import argparse

from .args import number_list


def cmd_dictionary(args) -> None:
    import numpy as np

    from ..errors import Q2MRIError
    from ..mrf import build_dictionary, log_grid, read_schedule
    sched = read_schedule(args.schedule)
    t1 = log_grid(args.t1_range[0], args.t1_range[1], args.step)
    t2 = log_grid(args.t2_range[0], args.t2_range[1], args.step)
    b1 = np.asarray(args.b1 or [1.0], float)
    if len(args.t1_range) != 2 or len(args.t2_range) != 2 or args.step <= 0:
        raise Q2MRIError("--t1-range and --t2-range take LO,HI in ms and --step a relative step such as 0.05")
    d = build_dictionary(sched, t1, t2, b1, rank=args.rank)
    d.save(args.out)
    print(f"wrote {args.out}: {len(d.params)} atoms (T1 {t1[0]:g}-{t1[-1]:g} ms, T2 {t2[0]:g}-{t2[-1]:g} ms in "
          f"{100 * args.step:g} % steps, B1 {', '.join(f'{x:g}' for x in b1)}), {sched.flip_deg.size} time points, SVD "
          f"rank {d.atoms.shape[1]} keeping {100 * d.energy:.3f} % of the energy")


def cmd_match(args) -> None:
    import numpy as np

    from ..errors import Q2MRIError
    from ..io.images import read_image
    from ..io.writer import OutputWriter
    from ..mrf import Dictionary, match
    dic = Dictionary.load(args.dictionary)
    v = read_image(args.input, "MRF series")
    if v.array.ndim != 4:
        raise Q2MRIError(f"{args.input} is 3D; give the MRF series as one 4D image (one volume per time point)")
    data = v.array
    if args.phase:
        ph = read_image(args.phase, "MRF phase series").array
        if ph.shape != data.shape:
            raise Q2MRIError("the phase series has another shape than the magnitude series")
        data = data * np.exp(1j * ph)
    t = data.shape[0]
    sig = np.moveaxis(data, 0, -1).reshape(-1, t)
    energy = np.linalg.norm(sig, axis=1)
    mask = energy > 0.02 * np.percentile(energy, 99)
    res = match(dic, sig[mask])
    quality = np.zeros(sig.shape[0], np.uint8)
    quality[mask] = np.where(res["match"] >= args.min_match, 1, 2)
    with OutputWriter(args.out) as w:
        for name in ("T1", "T2", "B1", "PD", "match"):
            if name == "B1" and len(np.unique(dic.params[:, 2])) == 1:
                continue
            full = np.zeros(sig.shape[0], np.float32)
            full[mask] = res[name]
            if name in ("T1", "T2", "B1", "PD"):
                full[quality == 2] = np.nan            # a poor match is flagged, not a plausible number
            w.write_image(f"{name}.nii.gz", full.reshape(data.shape[1:]), v.geometry,
                          quantity=name if name != "match" else "match", unit="relative" if name in ("match", "B1", "PD") else None,
                          sidecar={"Method": "MRF dictionary matching (max normalised inner product, SVD-compressed)",
                                   "Dictionary": str(args.dictionary), "Sources": [str(args.input)]})
        w.write_image("quality.nii.gz", quality.reshape(data.shape[1:]), v.geometry, quantity="quality", unit="label",
                      sidecar={"Values": {"0": "outside", "1": "matched", "2": f"flagged: match below {args.min_match}"}})
    n_bad = int((quality == 2).sum())
    print(f"wrote T1, T2, PD, match and quality to {args.out}: {int(mask.sum())} voxels matched, "
          f"median match {float(np.median(res['match'])):.4f}, {n_bad} flagged (match < {args.min_match})")


def cmd_synth(args) -> None:
    import numpy as np

    from ..io.maps_dir import read_maps
    from ..io.writer import write_single
    from ..mrf import read_schedule, simulate
    sched = read_schedule(args.schedule)
    maps, geom = read_maps(args.maps, names=("T1", "T2", "PD", "B1"), required=("T1", "T2", "PD"))
    t1, t2, pd = maps["T1"], maps["T2"], maps["PD"]
    b1 = maps.get("B1", np.ones_like(t1))
    ok = np.isfinite(t1) & np.isfinite(t2) & (t1 > 0) & (t2 > 0) & (pd > 0)
    sig = simulate(sched, t1[ok], t2[ok], np.where(np.isfinite(b1[ok]), b1[ok], 1.0))
    # FISP's signal is -i times a real one (rotations about x, on resonance): written as that real,
    # signed series (the phase renormalisation papers/002 applies before its SVD)
    real = (1j * sig).real.astype(np.float32) * pd[ok][:, None]
    out = np.zeros((sched.flip_deg.size,) + t1.shape, np.float32)
    out[:, ok] = real.T
    write_single(args.out, out, geom, quantity="MRF series", unit="a.u.",
                 sidecar={"Schedule": sched.to_json(), "SynthesizedFrom": sorted(maps),
                          "Method": "FISP MRF by extended phase graphs (q2mri.physics.epg)"})
    print(f"wrote {args.out}: {sched.flip_deg.size} time points for {int(ok.sum())} voxels")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mrf", help="MR fingerprinting: dictionary, matching, synthesis (papers/002)",
                       description="FISP MR fingerprinting by extended phase graphs: make an SVD-compressed dictionary "
                                   "over (T1, T2, B1), match a series to it, or synthesize a series from maps.")
    s = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    d = s.add_parser("dictionary", help="simulate and compress a dictionary for a schedule")
    d.add_argument("--schedule", default="default", help="JSON/CSV schedule (flip_deg, tr_ms; te_ms, inversion_ti_ms) "
                   "or 'default' (500 TRs after Jiang et al. 2015)")
    d.add_argument("--t1-range", type=number_list, default=[100.0, 4000.0], metavar="LO,HI", help="ms (default 100,4000)")
    d.add_argument("--t2-range", type=number_list, default=[10.0, 2000.0], metavar="LO,HI", help="ms (default 10,2000)")
    d.add_argument("--step", type=float, default=0.05, help="relative grid step (default 0.05 = 5 %%)")
    d.add_argument("--b1", type=number_list, metavar="B1,...", help="B1 values (default 1)")
    d.add_argument("--rank", type=int, default=15, help="SVD rank (default 15, as papers/002)")
    d.add_argument("--out", required=True, metavar="DICT.npz")
    d.set_defaults(func=cmd_dictionary)
    m = s.add_parser("match", help="T1, T2 (B1) and PD of a series by dictionary matching")
    m.add_argument("--input", required=True, metavar="SERIES", help="4D image, one volume per time point (real or magnitude)")
    m.add_argument("--phase", metavar="SERIES", help="its phase (radians), for complex data")
    m.add_argument("--dictionary", required=True, metavar="DICT.npz")
    m.add_argument("--min-match", type=float, default=0.9, help="flag voxels whose normalised inner product is lower")
    m.add_argument("--out", required=True, metavar="DIR")
    m.set_defaults(func=cmd_match)
    y = s.add_parser("synth", help="a FISP MRF series from maps (T1, T2, PD; B1 if present)")
    y.add_argument("--maps", required=True, metavar="DIR")
    y.add_argument("--schedule", default="default")
    y.add_argument("--out", required=True, metavar="SERIES.nii.gz")
    y.set_defaults(func=cmd_synth)

