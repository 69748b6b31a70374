"""The group level: one tidy table over the participants' derivatives (subject, session, map, label,
n, mean, SD, median, p5, p95, unit), as TSV and Parquet, and a box plot per map of the subjects'
means per label. Labels come from a segmentation (_dseg with its .tsv) in a derivatives dataset
(--labels-from), else the fitted/predicted body: the pipeline's quality map where it has one,
else the voxels where the map is finite and non-zero."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import Q2MRIError
from ..metrics.roi import region_statistics
from .names import SUFFIX_MAP, pipeline_desc

GROUP_COLUMNS = ("subject", "session", "map", "label", "n", "mean", "sd", "median", "p5", "p95", "unit")
SKIP_DESC = ("sd", "quality", "residual", "consistency", "confidence", "inversionefficiency", "water", "fat")


def _layout(folder: Path):
    from bids import BIDSLayout
    return BIDSLayout(str(folder), validate=False, is_derivative=True, derivatives=False)


def _label_table(dseg_path: str) -> dict[int, str]:
    p = Path(dseg_path)
    for cand in (p.with_name(p.name.replace(".nii.gz", ".tsv").replace(".nii", ".tsv")), p.parent / "dseg.tsv"):
        if cand.is_file():
            rows = [ln.split("\t") for ln in cand.read_text().splitlines()[1:] if ln.strip()]
            return {int(r[0]): r[1] for r in rows if len(r) >= 2}
    return {}


def _maps(out_dir: Path):
    """(file, subject, session, map label, unit) of each quantitative map among the derivatives."""
    layout = _layout(out_dir)
    for f in layout.get(extension=[".nii.gz", ".nii"], datatype="anat", return_type="object"):
        ent = f.entities
        suffix, desc = ent.get("suffix"), ent.get("desc") or ""
        if suffix not in SUFFIX_MAP or any(desc.endswith(s) for s in SKIP_DESC):
            continue
        unit = str(f.get_metadata().get("Units", ""))
        label = f"{suffix}" if not desc else f"{suffix} ({desc})"
        yield f, ent.get("subject"), ent.get("session"), label, desc, unit


def group_table(out_dir: str | Path, labels_from: str | Path | None = None) -> list[dict]:
    from ..io.images import read_image
    out_dir = Path(out_dir)
    seg_layout = _layout(Path(labels_from)) if labels_from else None
    rows = []
    for f, sub, ses, label, desc, unit in _maps(out_dir):
        vol = read_image(f.path, "map")
        arr = vol.array
        if seg_layout is not None:
            from bids.layout import Query
            segs = seg_layout.get(subject=sub, session=ses if ses else Query.NONE, suffix="dseg",
                                  extension=[".nii.gz", ".nii"], return_type="object")
            segs = [s for s in segs if not s.entities.get("desc")] or segs
            if not segs:
                raise Q2MRIError(f"no segmentation (_dseg) for sub-{sub}{' ses-' + ses if ses else ''} in {labels_from}; "
                                 "give the derivatives folder that holds one per subject")
            lab = read_image(segs[0].path, "segmentation")
            if not lab.geometry.matches(vol.geometry):
                raise Q2MRIError(f"the segmentation {segs[0].filename} is on another grid than {f.filename}")
            labels = lab.array.round().astype(int)
            names = _label_table(segs[0].path)
            regions = [(names.get(k, str(k)), labels == k) for k in sorted(int(v) for v in np.unique(labels) if v > 0)]
        else:
            prefix = f"sub-{sub}" + (f"_ses-{ses}" if ses else "")
            pipe = pipeline_desc(str(f.get_metadata().get("Pipeline", "")))
            qual = Path(f.path).parent / f"{prefix}_desc-{pipe}quality_dseg.nii.gz"
            mask = read_image(qual, "quality").array > 0 if qual.is_file() else np.isfinite(arr) & (arr != 0)
            regions = [("body", mask)]
        for name, m in regions:
            st = region_statistics(arr[m], vol.geometry.voxel_volume_ml)
            rows.append({"subject": sub, "session": ses or "", "map": label, "label": name, "n": st["Voxels"],
                         "mean": st["Mean"], "sd": st["SD"], "median": st["Median"], "p5": st["P5"], "p95": st["P95"],
                         "unit": unit})
    if not rows:
        raise Q2MRIError(f"no participant maps in {out_dir}; run the participant level first")
    rows.sort(key=lambda r: (r["map"], r["label"], r["subject"], r["session"]))
    return rows


def write_group(rows: list[dict], folder: str | Path) -> list[Path]:
    """group/q2mri_group.tsv and .parquet and group/boxplot_<map>.png, each written whole."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    tsv = folder / "q2mri_group.tsv"
    lines = ["\t".join(GROUP_COLUMNS)] + ["\t".join(_fmt(r[c]) for c in GROUP_COLUMNS) for r in rows]
    _atomic(tsv, lambda p: Path(p).write_text("\n".join(lines) + "\n"))
    written.append(tsv)
    table = pa.table({c: [r[c] for r in rows] for c in GROUP_COLUMNS})
    pqf = folder / "q2mri_group.parquet"
    _atomic(pqf, lambda p: pq.write_table(table, p))
    written.append(pqf)
    for m in sorted({r["map"] for r in rows}):
        png = folder / f"boxplot_{m.replace(' ', '_').replace('(', '').replace(')', '')}.png"
        _atomic(png, lambda p, m=m: _boxplot([r for r in rows if r["map"] == m], m, p))
        written.append(png)
    return written


def _fmt(v) -> str:
    if isinstance(v, float):
        return "n/a" if not np.isfinite(v) else f"{v:.6g}"
    return "n/a" if v in ("", None) else str(v)


def _atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _boxplot(rows: list[dict], name: str, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = sorted({r["label"] for r in rows})
    data = [[r["mean"] for r in rows if r["label"] == lab and np.isfinite(r["mean"])] for lab in labels]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(labels) + 2), 3.6), dpi=100)
    ax.boxplot(data, tick_labels=labels, showmeans=True)
    for i, d in enumerate(data, start=1):
        ax.plot(np.full(len(d), i) + np.linspace(-0.08, 0.08, len(d)) if d else [], d, ".", color="0.3", ms=4)
    unit = rows[0]["unit"] if rows else ""
    ax.set_ylabel(f"subject mean [{unit}]" if unit else "subject mean")
    ax.set_title(f"{name}: {len({(r['subject'], r['session']) for r in rows})} subject(s)")
    ax.tick_params(axis="x", labelrotation=45)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def dataset_description(out_dir: Path, pipelines: list[str]) -> None:
    from .. import __version__
    from .bids_sim import BIDS_VERSION
    desc = {"Name": "Q2MRI quantitative maps", "BIDSVersion": BIDS_VERSION, "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "q2mri", "Version": __version__, "Description": "q2mri bids: " + ", ".join(pipelines),
                             "CodeURL": "https://github.com/q2mri/q2mri"}]}
    p = out_dir / "dataset_description.json"
    if p.is_file():
        try:
            old = json.loads(p.read_text())
            have = old.get("GeneratedBy", [{}])[0].get("Description", "")
            if have and have != desc["GeneratedBy"][0]["Description"]:
                done = set(have.removeprefix("q2mri bids: ").split(", ")) | set(pipelines)
                desc["GeneratedBy"][0]["Description"] = "q2mri bids: " + ", ".join(sorted(done))
        except (OSError, json.JSONDecodeError):
            pass
    out_dir.mkdir(parents=True, exist_ok=True)
    _atomic(p, lambda t: Path(t).write_text(json.dumps(desc, indent=2)))
