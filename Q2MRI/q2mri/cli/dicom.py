"""q2mri export dicom, q2mri pacs echo|find|get|send, and --dicom-out of fit and predict."""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from ..errors import Q2MRIError
from .args import progress_bar


def _read_table(path: str) -> list[dict]:
    p = Path(path)
    if not p.is_file():
        raise Q2MRIError(f"ROI table {p} does not exist; write it with 'q2mri roi --csv'")
    with open(p, newline="") as f:
        rows = list(csv.DictReader(f))
    need = {"Segment", "Map", "Mean", "SD", "Median", "Volume_mL"}
    if not rows or not need <= set(rows[0]):
        raise Q2MRIError(f"ROI table {p} lacks the columns {', '.join(sorted(need))}; write it with 'q2mri roi --csv'")
    return rows


def _report(res, quiet: bool = False) -> None:
    for n in res.notes:
        print(f"q2mri: note: {n}", file=sys.stderr)
    print(f"wrote {len(res.maps)} Parametric Map(s) ({', '.join(res.maps)})"
          + (", a SEG" if res.seg else "") + (" and a TID 1500 measurement report" if res.sr else "") + f" to {res.out}")


def cmd_export_dicom(args) -> None:
    import numpy as np

    from ..dicom.export import export_dicom
    from ..io.images import as_3d, read_image
    from ..io.maps_dir import MAP_SUFFIXES
    from .roi import _label_names
    folder = Path(args.maps)
    if not folder.is_dir():
        raise Q2MRIError(f"maps folder {folder} does not exist; give the folder written by 'q2mri fit' or 'q2mri predict'")
    maps, geom = {}, None
    for p in sorted(folder.iterdir()):
        name = next((p.name[: -len(s)] for s in MAP_SUFFIXES if p.name.endswith(s)), None)
        if name is None:
            continue
        from ..dicom.codes import is_exportable
        if not is_exportable(name):
            continue
        v = read_image(p, f"{name} map")
        maps[name] = as_3d(v, f"{name} map")
        if geom is None:
            geom = v.geometry
        elif not v.geometry.matches(geom):
            raise Q2MRIError(f"{p} has another grid than the other maps in {folder}; give one folder per grid")
    if not maps:
        raise Q2MRIError(f"{folder} has no maps to export (T1, T2, T2s, R2s, B0, B1, PD, PDFF or their _sd)")
    labels = names = None
    if args.labels:
        lab = read_image(args.labels, "label image")
        if not lab.geometry.matches(geom):
            raise Q2MRIError(f"label image {args.labels} is on another grid than the maps; give labels drawn on the maps")
        labels = np.round(as_3d(lab, "label image")).astype(np.int64)
        names = _label_names(args.labels)
    table = _read_table(args.table) if args.table else None
    res = export_dicom(maps, geom, args.reference, args.out, labels=labels, label_names=names, table=table,
                       model=args.model or _model_of(folder), resample=args.resample,
                       progress=progress_bar("export DICOM", args.quiet))
    _report(res)


def _model_of(folder: Path) -> str:
    """The task or method the maps came from, from their sidecars (for the series description)."""
    for side in sorted(folder.glob("*.json")):
        try:
            d = json.loads(side.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(d, dict) and (d.get("Task") or d.get("Method")):
            return str(d.get("Task") or d.get("Method")).split(":")[0][:24]
    return ""


def add_dicom_out(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dicom-out", metavar="DIR", help="also write the maps as DICOM Parametric Maps derived from the "
                   "first --input, which must be a DICOM series folder (as q2mri export dicom)")


def check_dicom_out(args) -> None:
    """Before any work: --dicom-out needs a DICOM input to derive from."""
    if getattr(args, "dicom_out", None):
        first = Path(args.input[0])
        if not first.is_dir():
            raise Q2MRIError(f"--dicom-out needs the first --input to be a DICOM series folder, not {first}; "
                             "or run 'q2mri export dicom --reference SERIES' later")
        out = Path(args.dicom_out)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise Q2MRIError(f"--dicom-out folder {out} exists and is not empty; give a new folder")


def write_dicom_out(args, maps: dict, geometry, model: str) -> None:
    if not getattr(args, "dicom_out", None):
        return
    import numpy as np

    from ..dicom.export import export_dicom
    res = export_dicom({k: np.asarray(v, np.float32) for k, v in maps.items()}, geometry, args.input[0],
                       args.dicom_out, model=model, resample=False, progress=progress_bar("export DICOM", args.quiet))
    _report(res)


def _pacs(args):
    from ..dicom.pacs import Pacs
    return Pacs(args.host, args.port, args.called_aet, args.aet, args.timeout)


def cmd_echo(args) -> None:
    _pacs(args).echo()
    print(f"{args.called_aet}@{args.host}:{args.port} answered C-ECHO")


def cmd_find(args) -> None:
    filters = {"PatientID": args.patient_id, "StudyInstanceUID": args.study_uid, "StudyDate": args.study_date,
               "Modality": args.modality, "SeriesDescription": args.series_description}
    rows = _pacs(args).find(**filters)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        print(f"{r['PatientID']}\t{r['StudyDate']}\t{r['StudyInstanceUID']}\t{r['SeriesInstanceUID']}\t"
              f"{r['Modality']}\t{r['SeriesNumber']}\t{r['SeriesDescription']}\t{r['NumberOfSeriesRelatedInstances']}")
    if not rows:
        print("no series match", file=sys.stderr)


def cmd_get(args) -> None:
    folders = _pacs(args).get(args.out, args.study_uid, args.series_uid, progress_bar("C-GET", args.quiet))
    for uid, folder in folders.items():
        n = sum(1 for _ in folder.glob("*.dcm"))
        print(f"{folder}\t{n} file(s)\tseries {uid}")


def cmd_send(args) -> None:
    from ..dicom.pacs import dicom_files
    files = dicom_files(args.path)
    accepted, refused = _pacs(args).send(files, progress_bar("C-STORE", args.quiet))
    for line in refused:
        print(f"q2mri: {line}", file=sys.stderr)
    print(f"{args.called_aet}@{args.host}:{args.port} accepted {accepted} of {accepted + len(refused)} object(s)")
    if refused:
        raise Q2MRIError(f"{len(refused)} object(s) were refused; see the lines above and the PACS's log")


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("export", help="write maps in hospital formats", description="Write maps in hospital formats.")
    esub = e.add_subparsers(dest="format_", metavar="FORMAT", required=True)
    d = esub.add_parser("dicom", help="DICOM Parametric Maps, SEG and TID 1500 report derived from the source series",
                        description="One Parametric Map per map (float pixels, UCUM unit, coded quantity), a SEG from "
                                    "--labels and a TID 1500 measurement report of the ROI statistics, all in the "
                                    "reference series' study and frame of reference.")
    d.add_argument("--maps", required=True, metavar="DIR", help="folder of maps (q2mri fit / predict output)")
    d.add_argument("--reference", required=True, metavar="DICOM_SERIES_DIR", help="the DICOM series the maps came from")
    d.add_argument("--out", required=True, metavar="OUTDIR", help="new folder for the DICOM objects")
    d.add_argument("--labels", metavar="LABELS", help="label image (0 = background) for the SEG and the report; "
                   "names from labels.json beside it")
    d.add_argument("--table", metavar="ROI.csv", help="ROI statistics (q2mri roi --csv); default: computed from --labels")
    d.add_argument("--model", metavar="NAME", help="the task or method named in the series description "
                   "(default: from the maps' sidecars)")
    d.add_argument("--resample", action="store_true", help="resample maps of another grid onto the reference series")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=cmd_export_dicom)

    p = sub.add_parser("pacs", help="PACS echo, find, get and send (DICOM network)",
                       description="Talk to a PACS: C-ECHO, C-FIND (series level), C-GET, C-STORE.")
    psub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def net(name, help_, func):
        q = psub.add_parser(name, help=help_, description=help_)
        q.add_argument("--host", default="127.0.0.1", help="PACS host (default 127.0.0.1)")
        q.add_argument("--port", type=int, required=True, help="PACS DICOM port (often 104, 4242 or 11112)")
        q.add_argument("--aet", default="Q2MRI", help="our AE title (default Q2MRI)")
        q.add_argument("--called-aet", default="ANY-SCP", help="the PACS's AE title (default ANY-SCP)")
        q.add_argument("--timeout", type=float, default=30.0, metavar="S", help="network timeout in seconds (default 30)")
        q.add_argument("--quiet", action="store_true", help="no progress bar")
        q.set_defaults(func=func)
        return q

    net("echo", "check that the PACS answers (C-ECHO)", cmd_echo)
    q = net("find", "list series matching the filters (C-FIND; wildcards * and ? allowed)", cmd_find)
    q.add_argument("--patient-id")
    q.add_argument("--study-uid")
    q.add_argument("--study-date", help="YYYYMMDD or a range YYYYMMDD-YYYYMMDD")
    q.add_argument("--modality")
    q.add_argument("--series-description")
    q.add_argument("--json", action="store_true", help="print JSON instead of one tab-separated line per series")
    q = net("get", "retrieve a study or series into a folder (C-GET)", cmd_get)
    q.add_argument("--study-uid", required=True)
    q.add_argument("--series-uid", help="only this series")
    q.add_argument("--out", required=True, metavar="DIR", help="folder; one subfolder per series")
    q = net("send", "send DICOM files or folders to the PACS (C-STORE)", cmd_send)
    q.add_argument("path", nargs="+", metavar="PATH", help="DICOM files or folders")
