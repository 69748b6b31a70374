"""q2mri roi: statistics of maps inside labelled regions."""
from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

from ..errors import Q2MRIError
from ..maps import map_unit


def _label_names(labels_path: str) -> dict[int, str]:
    """Names from a labels.json beside the label image ({"1": "liver"} or [{"value":1,"name":..}])."""
    p = Path(labels_path)
    cand = [p.with_name("labels.json")]
    for suf in (".nii.gz", ".nii", ".nrrd"):
        if p.name.endswith(suf):
            cand.insert(0, p.with_name(p.name[: -len(suf)] + ".json"))
    for c in cand:
        if c.exists():
            try:
                data = json.loads(c.read_text())
            except json.JSONDecodeError:
                return {}
            if isinstance(data, dict):
                table = data.get("labels", data)
                if isinstance(table, dict):
                    return {int(k): str(v if not isinstance(v, dict) else v.get("name", k)) for k, v in table.items()
                            if str(k).lstrip("-").isdigit()}
                if isinstance(table, list):
                    return {int(e["value"]): str(e["name"]) for e in table if "value" in e and "name" in e}
    return {}


def _stem(path: str) -> str:
    name = Path(path).name
    for suf in (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha"):
        if name.endswith(suf):
            return name[: -len(suf)]
    return name


def cmd_roi(args) -> None:
    from ..io.images import as_3d, check_same_geometry, read_image
    from ..metrics.roi import ROI_COLUMNS, roi_statistics
    lab = read_image(args.labels, "label image")
    as_3d(lab, "label image")
    maps, vols = {}, []
    for path in args.map:
        v = read_image(path, "map")
        as_3d(v, "map")
        vols.append(v)
        name = _stem(path)
        if name in maps:
            raise Q2MRIError(f"two maps are named {name}; give maps with different file names")
        maps[name] = v.array
    check_same_geometry([lab] + vols)
    labels = lab.array.round().astype(int)
    rows = roi_statistics(maps, labels, lab.geometry.voxel_volume_ml, _label_names(args.labels),
                          {k: map_unit(k) for k in maps})
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=ROI_COLUMNS, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=ROI_COLUMNS, delimiter="\t", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    print(buf.getvalue(), end="")
    flagged = sum(r["Flagged"] for r in rows)
    if flagged:
        print(f"excluded {flagged} flagged (NaN) voxel-map values from the statistics (the JSON output counts them per row)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("roi", help="ROI statistics of maps per label",
                       description="Per label and map: voxels, volume (mL), mean, SD, median, p5, p95. "
                                   "Label names come from a labels.json beside the label image.")
    p.add_argument("--map", action="append", required=True, metavar="IMG", help="map image; repeat for more maps")
    p.add_argument("--labels", required=True, metavar="LABELS", help="label image (0 = background)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    p.set_defaults(func=cmd_roi)
