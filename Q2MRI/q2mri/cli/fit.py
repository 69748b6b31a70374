"""q2mri fit vfa | t2star | t1-ir | t2 | b1-afi | b1-dam | b0 | fatwater | dixon."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..errors import Q2MRIError
from .args import add_common, add_register, number_list, print_flagged, progress_bar, write_quality, write_registrations
from .dicom import add_dicom_out

if TYPE_CHECKING:
    from .common import Series


def _write(args, series: "Series", maps: dict, method: str, extra: dict | None = None) -> None:
    import numpy as np

    from ..io.writer import OutputWriter
    quality = maps.get("quality")
    mask = quality > 0 if quality is not None else next(iter(maps.values())) != 0
    with OutputWriter(args.out) as w:
        for name, arr in maps.items():
            if name == "quality":
                write_quality(w, f"quality.{args.format}", arr, series.geometry, {"Method": method, "Sources": series.paths},
                              "fitted", "flagged: at a bound, not converged or not identifiable with this "
                              "protocol (NaN in the maps)")
                continue
            w.write_image(f"{name}.{args.format}", arr.astype(np.float32), series.geometry,
                          sidecar={"Method": method, "Sources": series.paths, **(extra or {})})
        moved = write_registrations(w, series)
    print(f"wrote {', '.join(f'{n}.{args.format}' for n in maps)}{' and ' + ', '.join(moved) if moved else ''} to {args.out}")
    from .dicom import write_dicom_out
    write_dicom_out(args, maps, series.geometry, f"fit {args.model}")
    for name in maps:
        if name in ("residual", "water", "fat", "S0", "quality", "confidence"):
            continue
        vals = maps[name][mask & np.isfinite(maps[name])]
        if vals.size:
            print(f"  {name}: median {np.median(vals):.4g}, p5 {np.percentile(vals, 5):.4g}, "
                  f"p95 {np.percentile(vals, 95):.4g} over {vals.size} voxels")
    if quality is not None:
        print_flagged(quality)


def _load(args, phases: bool = False):
    """The series, with what was corrected said once on stderr."""
    import sys

    from .common import load_series
    from .dicom import check_dicom_out
    check_dicom_out(args)
    s = load_series(args.input, args.phase if phases else None, resample=args.resample, component=args.component,
                    phase_scale=getattr(args, "phase_scale", None), register=args.register,
                    progress=progress_bar("register", args.quiet))
    for n in s.notes:
        print(f"q2mri: {n if n.startswith('warning:') else 'note: ' + n}", file=sys.stderr)
    return s


def _fixed(s, fields, fit: str, args) -> None:
    import sys
    before = len(s.notes)
    s.check_fixed(fields, fit, args.allow_mixed)
    for n in s.notes[before:]:
        print(f"q2mri: {n}", file=sys.stderr)


def _magnitude(series: "Series", what: str):
    import numpy as np
    if np.iscomplexobj(series.data):
        raise Q2MRIError(f"{what} uses magnitude images; drop --phase")
    return series.data


def cmd_vfa(args) -> None:
    from ..fitting.protocol_checks import check_flip_angles, check_tr
    from ..fitting.vfa import fit_vfa
    from .common import load_3d, load_mask
    s = _load(args)
    fa = s.values("flip_angle_deg", args.flip_angles, "--flip-angles")
    tr = s.values("tr_ms", [args.tr] if args.tr is not None else None, "--tr")
    for a, f, t in zip(s.acquisitions, fa, tr):
        a.with_overrides(flip_angle_deg=f, tr_ms=t).validate()
    check_flip_angles(fa, "VFA")
    for t in sorted(set(tr)):
        check_tr(t, "VFA")
    # TE must be one (T2* decay cancels only then); each image may have its own TR (MPM and MTsat
    # protocols, Helms et al. 2008): the SPGR equation takes each image's TR
    _fixed(s, ("te_ms",), "VFA", args)
    if len(set(round(f, 6) for f in fa)) < 2:
        hint = " (a 4D input needs a FlipAngle list in its sidecar, one per volume)" if s.any_4d else ""
        raise Q2MRIError(f"VFA needs at least two different flip angles, got {fa}{hint}; give --flip-angles")
    b1 = load_3d(args.b1, s.geometry, "B1 map", args.resample)
    mask = load_mask(args.mask, s.geometry, args.resample)
    one_tr = len(set(round(t, 6) for t in tr)) == 1
    maps = fit_vfa(_magnitude(s, "VFA"), fa, tr[0] if one_tr else tr, b1=b1, mask=mask, device=args.device,
                   progress=progress_bar("fit vfa", args.quiet))
    start = "DESPOT1 start" if one_tr else "Helms 2008 closed-form start (one TR per image)"
    _write(args, s, maps, f"VFA: {start} + Levenberg-Marquardt on the SPGR equation",
           {"FlipAngles": fa, "RepetitionTime": tr[0] / 1000.0 if one_tr else [t / 1000.0 for t in tr],
            "B1Corrected": b1 is not None})


def _cmd_mono(args, fitter, what: str, method: str) -> None:
    from ..fitting.protocol_checks import check_echo_times
    from .common import load_mask
    s = _load(args)
    te = s.values("te_ms", args.te, "--te")
    check_echo_times(te, what, spin_echo=args.model == "t2")
    _fixed(s, ("flip_angle_deg", "tr_ms"), what, args)
    mask = load_mask(args.mask, s.geometry, args.resample)
    maps = fitter(_magnitude(s, what), te, mask=mask, device=args.device,
                  progress=progress_bar(f"fit {args.model}", args.quiet))
    _write(args, s, maps, method, {"EchoTime": [t / 1000.0 for t in te]})


def cmd_t2star(args) -> None:
    from ..fitting.relaxation import fit_t2star
    _cmd_mono(args, fit_t2star, "T2* fitting", "mono-exponential: weighted log-linear start + Levenberg-Marquardt")


def cmd_t2(args) -> None:
    from ..fitting.relaxation import fit_t2
    _cmd_mono(args, fit_t2, "T2 fitting", "mono-exponential multi-echo spin echo")


def cmd_t1_ir(args) -> None:
    from ..fitting.inversion_recovery import fit_t1_ir
    from ..fitting.protocol_checks import check_inversion_times, check_tr
    from .common import load_mask
    import math
    import sys
    s = _load(args)
    ti = s.values("ti_ms", args.ti, "--ti")
    if args.tr is None and all(a.tr_ms is None for a in s.acquisitions):
        # Barral 2010: a + b exp(-TI/T1) gives T1 without TR (physics.inversion_recovery with TR -> inf is the
        # same three-parameter family); PD and the inversion efficiency need TR and are not written
        tr = [math.inf] * len(ti)
        print("q2mri: note: TR is not recorded: T1 from a + b exp(-TI/T1) (Barral 2010), which needs no TR; PD and "
              "the inversion efficiency need TR (--tr) and are not written", file=sys.stderr)
    else:
        tr = s.values("tr_ms", [args.tr] if args.tr is not None else None, "--tr")
        check_tr(tr[0], "IR")
    check_inversion_times(ti, tr[0])
    _fixed(s, ("te_ms",) + (() if args.tr is not None or math.isinf(tr[0]) else ("tr_ms",)), "IR", args)
    if len(set(round(t, 6) for t in tr if math.isfinite(t))) > 1:
        raise Q2MRIError(f"the IR images have different TRs {sorted(set(tr))} ms; give one TR (--tr)")
    mask = load_mask(args.mask, s.geometry, args.resample)
    maps = fit_t1_ir(_magnitude(s, "IR T1"), ti, tr[0], mask=mask, device=args.device,
                     progress=progress_bar("fit t1-ir", args.quiet))
    if math.isinf(tr[0]):
        maps = {k: v for k, v in maps.items() if k not in ("PD", "inversion_efficiency")}
    _write(args, s, maps, "IR: RD-NLS-PR (Barral 2010) + Levenberg-Marquardt" +
           (" on a + b exp(-TI/T1) (TR not recorded)" if math.isinf(tr[0]) else ""),
           {"InversionTime": [t / 1000.0 for t in ti], "RepetitionTime": None if math.isinf(tr[0]) else tr[0] / 1000.0})


def _smoothed_b1(args, s, maps):
    """The B1 map smoothed inside the fitted voxels (--smooth-mm: B1+ varies over centimetres), NaN where flagged."""
    import numpy as np

    from ..fitting.afi import smooth_in_mask
    b1 = maps["B1"]
    if args.smooth_mm:
        if args.smooth_mm < 0:
            raise Q2MRIError("--smooth-mm must be >= 0 (the Gaussian SD in mm)")
        b1 = smooth_in_mask(b1, maps["quality"] == 1, args.smooth_mm, s.geometry.spacing[::-1])
        b1 = np.where(maps["quality"] == 2, np.nan, b1).astype(np.float32)
    return b1


def cmd_b1_afi(args) -> None:
    from ..fitting.afi import fit_b1_afi
    from ..fitting.protocol_checks import check_tr
    from .common import load_3d, load_mask
    s = _load(args)
    if s.data.shape[-1] != 2:
        raise Q2MRIError(f"AFI needs exactly two images (TR1 then TR2), got {s.data.shape[-1]}")
    fa = s.values("flip_angle_deg", [args.flip_angle] * 2 if args.flip_angle else None, "--flip-angle")
    tr = s.values("tr_ms", args.tr, "--tr")
    for t in tr:
        check_tr(t, "AFI")
    _fixed(s, ("te_ms", "flip_angle_deg"), "AFI", args)
    s.acquisitions[0].with_overrides(flip_angle_deg=fa[0], tr_ms=tr[0]).validate()
    t1 = load_3d(args.t1, s.geometry, "T1 map", args.resample)
    mask = load_mask(args.mask, s.geometry, args.resample)
    d = _magnitude(s, "AFI")
    maps = fit_b1_afi(d[..., 0], d[..., 1], fa[0], tr[0], tr[1], t1_ms=t1, mask=mask)
    b1 = _smoothed_b1(args, s, maps)
    _write(args, s, {"B1": b1, "quality": maps["quality"]}, "AFI (Yarnykh 2007)" + (" exact with T1 map" if t1 is not None else " TR << T1 limit"),
           {"FlipAngle": fa[0], "RepetitionTime": [tr[0] / 1000.0, tr[1] / 1000.0], "SmoothingSDmm": args.smooth_mm or 0})


def cmd_b1_dam(args) -> None:
    from ..fitting.dam import fit_b1_dam
    from .common import load_mask
    s = _load(args)
    if s.data.shape[-1] != 2:
        raise Q2MRIError(f"the double-angle method needs exactly two images (A then 2A), got {s.data.shape[-1]}")
    if args.flip_angle is not None:
        fa = [float(args.flip_angle), 2.0 * float(args.flip_angle)]
    else:
        fa = s.values("flip_angle_deg", None, "--flip-angle")
        if abs(fa[1] - 2.0 * fa[0]) > 0.01 * fa[0]:
            raise Q2MRIError(f"the double-angle method needs the second image at twice the first's flip angle; the "
                             f"sidecars give {fa[0]:g} and {fa[1]:g} deg (list the A image first, or give --flip-angle)")
    if not 0 < fa[0] < 90:
        raise Q2MRIError(f"the nominal flip angle A must be between 0 and 90 deg (2A up to 180), got {fa[0]:g}")
    _fixed(s, ("te_ms", "tr_ms"), "DAM", args)
    mask = load_mask(args.mask, s.geometry, args.resample)
    d = _magnitude(s, "DAM")
    maps = fit_b1_dam(d[..., 0], d[..., 1], fa[0], mask=mask)
    b1 = _smoothed_b1(args, s, maps)
    _write(args, s, {"B1": b1, "flip_angle_actual": maps["flip_angle_actual"], "quality": maps["quality"]},
           "double-angle method (Insko and Bolinger 1993): B1 = arccos(S_2A / (2 S_A)) / A",
           {"FlipAngle": fa, "SmoothingSDmm": args.smooth_mm or 0})


def cmd_b0(args) -> None:
    import numpy as np

    from ..fitting.b0 import fit_b0_dual_echo
    from ..fitting.protocol_checks import check_echo_times
    from .common import load_mask
    s = _load(args, phases=True)
    if not np.iscomplexobj(s.data) or s.data.shape[-1] != 2:
        raise Q2MRIError("B0 mapping needs two echoes with their phase: --input MAG1 --input MAG2 --phase PH1 --phase PH2")
    te = s.values("te_ms", args.te, "--te")
    if te[0] == te[1]:
        raise Q2MRIError(f"B0 mapping needs two different echo times, got {te} ms; check EchoTime or --te")
    if abs(te[1] - te[0]) < 0.2 or abs(te[1] - te[0]) > 50.0:
        raise Q2MRIError(f"B0: echo times {te} ms are {abs(te[1] - te[0]):g} ms apart; a dual-echo field map uses "
                         "0.2-50 ms (times in ms on the command line, seconds in BIDS sidecars)")
    check_echo_times(te, "B0")
    _fixed(s, ("flip_angle_deg", "tr_ms"), "B0", args)
    mask = load_mask(args.mask, s.geometry, args.resample)
    maps = fit_b0_dual_echo(s.data[..., 0], s.data[..., 1], te[0], te[1], mask=mask, unwrap=not args.no_unwrap,
                            negate=args.negate)
    _write(args, s, maps, "dual-echo phase difference" + ("" if args.no_unwrap else ", spatially unwrapped "
                                                           "(Herraez et al. 2002; scikit-image unwrap_phase)"),
           {"EchoTime": [t / 1000.0 for t in te], "WrapPeriodHz": 1000.0 / abs(te[1] - te[0]),
            "B0SignConvention": ("phase(TE2) - phase(TE1) = 2 pi B0 (TE2 - TE1): positive where the phase grows with "
                                 "echo time" + ("; negated (--negate)" if args.negate else ""))})


def cmd_fatwater(args) -> None:
    import numpy as np

    from ..fitting.fatwater import fit_fatwater
    from ..fitting.protocol_checks import check_echo_times
    from .common import load_mask
    s = _load(args, phases=True)
    if not np.iscomplexobj(s.data):
        raise Q2MRIError("water-fat separation needs the phase of every echo: add --phase PH for each --input")
    te = s.values("te_ms", args.te, "--te")
    check_echo_times(te, "water-fat separation")
    _fixed(s, ("flip_angle_deg", "tr_ms"), "multi-echo", args)
    fs = s.values("field_strength_t", [args.field_strength] if args.field_strength else None, "--field-strength")[0]
    mask = load_mask(args.mask, s.geometry, args.resample)
    t1c = None
    if args.t1_correct:
        fa = s.values("flip_angle_deg", [args.flip_angle] * s.data.shape[-1] if args.flip_angle else None, "--flip-angle")[0]
        tr = s.values("tr_ms", [args.tr] if args.tr else None, "--tr")[0]
        t1c = (fa, tr, args.t1_water, args.t1_fat)
    readout = args.readout or _sidecar_readout(s)
    report: dict = {}
    maps = fit_fatwater(s.data, te, fs, mask=mask, device=args.device, t1_correction=t1c,
                        progress=progress_bar("fit fatwater", args.quiet), spacing_mm=tuple(s.geometry.spacing[::-1]),
                        precession=args.precession, readout=readout, readout_axis=_readout_axis(s), report=report)
    _fatwater_notes(report, readout, s)
    _write(args, s, maps, "confounder-corrected water-fat: VARPRO residual curves, region-growing start, iterative graph-cut "
           "field map (Hernando et al. 2010), Levenberg-Marquardt",
           {"EchoTime": [t / 1000.0 for t in te], "MagneticFieldStrength": fs, "T1Corrected": t1c is not None,
            "FatSpectrum": "Hamilton 2011 six-peak liver fat", "Precession": report["precession"]["chosen"],
            "Readout": readout, "GraphCut": {k: v for k, v in report["graph_cut"].items() if k != "energy"},
            "SwapSuspects": report["swap_suspects"]})


def _sidecar_readout(s) -> str:
    """A vendor's readout polarity where its sidecar records it (no dcm2niix key is standard; Q2MRI reads
    ReadoutPolarity or BipolarReadout if present), else monopolar."""
    from ..io.images import sidecar_path
    import json
    for p in s.paths:
        side = sidecar_path(p)
        if side.exists():
            d = json.loads(side.read_text())
            if str(d.get("ReadoutPolarity", "")).lower().startswith("bipolar") or d.get("BipolarReadout") is True:
                return "bipolar"
    return "monopolar"


def _readout_axis(s) -> int:
    """The readout (frequency-encoding) axis of the (z, y, x) array: the in-plane axis that the
    sidecar's PhaseEncodingDirection (i or j) does not name; x by default."""
    from ..io.images import sidecar_path
    import json
    side = sidecar_path(s.paths[0])
    pe = json.loads(side.read_text()).get("PhaseEncodingDirection", "j") if side.exists() else "j"
    return 1 if str(pe).startswith("i") else 2


def _fatwater_notes(report: dict, readout: str, s) -> None:
    import sys
    prec = report["precession"]
    if "relative_residual_clockwise" in prec:
        print(f"q2mri: note: precession auto: {prec['chosen']} (relative residual {prec['relative_residual_clockwise']:.3g} "
              f"as stored, {prec['relative_residual_counterclockwise']:.3g} conjugated)", file=sys.stderr)
    if readout == "bipolar":
        lo, hi = report["bipolar_phase_rad"]
        print(f"q2mri: note: bipolar readout: echo-alternating phase {lo:.3g}..{hi:.3g} rad removed", file=sys.stderr)
    for r in report["swap_suspects"]:
        print(f"q2mri: warning: a region of {r['voxels']} voxels ({r['percent_of_mask']:.1f} % of the mask, around slice "
              f"{r['slice']}) looks water-fat swapped (its field is off the smooth field by about a fat shift); check "
              "PDFF there (flagged 2 in quality.nii.gz)", file=sys.stderr)


def cmd_dixon(args) -> None:
    import numpy as np

    from ..fitting.dixon import fit_dixon_two_point
    from .common import load_mask
    s = _load(args)
    if s.data.shape[-1] != 2:
        raise Q2MRIError(f"two-point Dixon needs exactly two images (in-phase then out-of-phase), got {s.data.shape[-1]}")
    mask = load_mask(args.mask, s.geometry, args.resample)
    if not args.force:
        _check_in_out_phase(s, args)
    d = np.abs(s.data)
    maps = fit_dixon_two_point(d[..., 0], d[..., 1], mask=mask)
    _write(args, s, maps, "two-point Dixon, magnitude, water-dominant (PDFF 0-50 %)")


DIXON_TOLERANCE_DEG = 20.0


def _check_in_out_phase(s, args) -> None:
    """Two-point Dixon assumes the first echo in phase and the second opposed: the main fat peak's
    phase relative to water (physics.fat) at each TE must be within 20 degrees of 0 and 180."""
    from ..physics.fat import GAMMA_BAR_MHZ_PER_T, MAIN_PEAK_PPM
    te = s.values("te_ms", args.te, "--te")
    fs = s.values("field_strength_t", [args.field_strength] if args.field_strength else None, "--field-strength")[0]
    f_hz = abs(MAIN_PEAK_PPM * GAMMA_BAR_MHZ_PER_T * fs)
    ang = [abs(((360.0 * f_hz * t / 1000.0) + 180.0) % 360.0 - 180.0) for t in te]   # 0 in phase, 180 opposed
    off_ip, off_op = ang[0], 180.0 - ang[1]
    if off_ip > DIXON_TOLERANCE_DEG or off_op > DIXON_TOLERANCE_DEG:
        raise Q2MRIError(f"two-point Dixon needs an in-phase then an out-of-phase echo: at {fs:g} T fat is "
                         f"{ang[0]:.0f} deg from water at TE {te[0]:g} ms (in phase is 0) and {ang[1]:.0f} deg at TE "
                         f"{te[1]:g} ms (opposed is 180), more than {DIXON_TOLERANCE_DEG:g} deg off; check the echo order "
                         "and times, or pass --force")


def register(sub: argparse._SubParsersAction) -> None:
    fit = sub.add_parser("fit", help="model-based fitting of quantitative maps from a series",
                         description="Model-based fitting of quantitative maps from a multi-image series.")
    fsub = fit.add_subparsers(dest="model", metavar="MODEL", required=True)

    def base(name, help_, func, phase=False, torch_fit=True):
        p = fsub.add_parser(name, help=help_, description=help_)
        p.add_argument("--input", action="append", required=True, metavar="IMG",
                       help="image (NIfTI/NRRD file or DICOM folder); repeat, or give one 4D file")
        if phase:
            p.add_argument("--phase", action="append", metavar="IMG",
                           help="phase image for each --input, in order (radians; integer vendor encodings are recognised)")
            p.add_argument("--phase-scale", type=float, metavar="F",
                           help="radians per stored phase unit, where the encoding is not recognised (e.g. 0.001 for mrad)")
        p.add_argument("--out", required=True, metavar="DIR", help="output folder")
        add_common(p, device=torch_fit)  # closed-form fits run in numpy: no --device
        p.add_argument("--component", type=int, metavar="K",
                       help="use volume K (0-based) of 4D inputs whose 4th dimension holds components, not the series")
        p.add_argument("--allow-mixed", action="store_true",
                       help="fit a series whose images differ in a parameter the fit needs fixed (with a warning)")
        add_dicom_out(p)
        add_register(p)
        p.set_defaults(func=func)
        return p

    p = base("vfa", "variable-flip-angle T1 (ms) and PD from SPGR images", cmd_vfa)
    p.add_argument("--flip-angles", type=number_list, metavar="DEG,...", help="flip angles in degrees (default: sidecars)")
    p.add_argument("--tr", type=float, metavar="MS", help="repetition time in ms (default: sidecars)")
    p.add_argument("--b1", metavar="IMG", help="relative B1 map (1 = nominal)")
    p = base("t2star", "T2* (ms), R2* (1/s) and S0 from multi-echo GRE magnitudes", cmd_t2star)
    p.add_argument("--te", type=number_list, metavar="MS,...", help="echo times in ms (default: sidecars)")
    p = base("t2", "T2 (ms) and S0 from multi-echo spin-echo magnitudes", cmd_t2)
    p.add_argument("--te", type=number_list, metavar="MS,...", help="echo times in ms (default: sidecars)")
    p = base("t1-ir", "inversion-recovery T1 (ms), the reference method", cmd_t1_ir)
    p.add_argument("--ti", type=number_list, metavar="MS,...", help="inversion times in ms (default: sidecars)")
    p.add_argument("--tr", type=float, metavar="MS", help="repetition time in ms (default: sidecars)")
    p = base("b1-afi", "relative B1 from an AFI pair (TR1 image first, then TR2)", cmd_b1_afi, torch_fit=False)
    p.add_argument("--flip-angle", type=float, metavar="DEG", help="nominal flip angle in degrees (default: sidecar)")
    p.add_argument("--tr", type=number_list, metavar="TR1,TR2", help="the two TRs in ms (default: sidecars)")
    p.add_argument("--t1", metavar="IMG", help="T1 map (ms) for the exact AFI equation; without it TR << T1 is assumed")
    p.add_argument("--smooth-mm", type=float, default=0.0, metavar="MM",
                   help="Gaussian SD (mm) to smooth the B1 map inside the mask (B1+ varies over centimetres; default 0)")
    p = base("b1-dam", "relative B1 from a double-angle pair (the A image first, then 2A; long TR)", cmd_b1_dam,
             torch_fit=False)
    p.add_argument("--flip-angle", type=float, metavar="DEG", help="the nominal angle A in degrees (default: sidecars)")
    p.add_argument("--smooth-mm", type=float, default=0.0, metavar="MM",
                   help="Gaussian SD (mm) to smooth the B1 map inside the mask (B1+ varies over centimetres; default 0)")
    p = base("b0", "B0 (Hz) from two complex echoes (magnitude + phase)", cmd_b0, phase=True, torch_fit=False)
    p.add_argument("--te", type=number_list, metavar="MS,MS", help="the two echo times in ms (default: sidecars)")
    p.add_argument("--negate", action="store_true", help="flip the sign of B0, for scanners whose phase runs the other way")
    p.add_argument("--no-unwrap", action="store_true", help="keep the voxel-wise wrapped field (+-1/(2 dTE))")
    p = base("fatwater", "PDFF (%%), R2* (1/s), B0 (Hz), water and fat from 3+ complex echoes", cmd_fatwater, phase=True)
    p.add_argument("--te", type=number_list, metavar="MS,...", help="echo times in ms (default: sidecars)")
    p.add_argument("--field-strength", type=float, metavar="T", help="B0 field in tesla (default: sidecar)")
    p.add_argument("--t1-correct", action="store_true", help="remove the SPGR T1 bias of PDFF (needs flip angle and TR)")
    p.add_argument("--precession", choices=("auto", "clockwise", "counterclockwise"), default="auto",
                   help="sign of the fat frequency in the stored data: clockwise (as Q2MRI's model), counterclockwise "
                        "(conjugated), or auto: the one whose residual is lower on the strongest voxels (default)")
    p.add_argument("--readout", choices=("monopolar", "bipolar"),
                   help="bipolar removes the echo-alternating phase error along the readout first (default: the "
                        "sidecar's, else monopolar)")
    p.add_argument("--flip-angle", type=float, metavar="DEG", help="flip angle for --t1-correct (default: sidecar)")
    p.add_argument("--tr", type=float, metavar="MS", help="TR for --t1-correct (default: sidecar)")
    p.add_argument("--t1-water", type=float, default=809.0, metavar="MS", help="water T1 for --t1-correct (default 809, liver 3 T)")
    p.add_argument("--t1-fat", type=float, default=380.0, metavar="MS", help="fat T1 for --t1-correct (default 380, 3 T)")
    p = base("dixon", "two-point Dixon PDFF (%%) from in-phase then out-of-phase magnitudes", cmd_dixon, torch_fit=False)
    p.add_argument("--te", type=number_list, metavar="MS,MS", help="the two echo times in ms (default: sidecars)")
    p.add_argument("--field-strength", type=float, metavar="T", help="B0 field in tesla (default: sidecar)")
    p.add_argument("--force", action="store_true", help="skip the check that the echoes are in and out of phase")
