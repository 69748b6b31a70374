"""A simulated dataset (q2mri simulate) as raw BIDS with the qMRI naming of the BIDS
specification (appendix "Quantitative MRI"): VFA with flip-<n>, TB1AFI with acq-tr1/tr2,
MEGRE with echo-<n> (and part-mag/part-phase for complex echoes), IRT1 with inv-<n>, T1w for
MPRAGE and FLAIR; sidecars already in BIDS units (seconds). The ground truth goes to
derivatives/truth/ as <map suffix> files plus the labels as _dseg with its dseg.tsv, so the
group step can measure per tissue (--labels-from derivatives/truth)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .. import __version__
from ..errors import Q2MRIError
from .names import MAP_SUFFIX

BIDS_VERSION = "1.10.0"


def bids_name(image: str, kind: str, index: int) -> tuple[str, str]:
    """(entities, suffix) of a protocol image: index is its 1-based place among images of its kind."""
    if kind == "spgr":
        return f"flip-{index}", "VFA"
    if kind in ("afi1", "afi2"):
        return f"acq-tr{kind[-1]}", "TB1AFI"
    if kind in ("gre_magnitude", "gre_complex"):
        return f"echo-{index}", "MEGRE"
    if kind == "ir":
        return f"inv-{index}", "IRT1"
    if kind == "mprage":
        return "", "T1w"
    if kind == "flair":
        return "", "FLAIR"
    if kind == "se":
        return f"echo-{index}", "MESE"
    raise Q2MRIError(f"no BIDS name for image {image} of kind {kind}")


def _join(*parts: str) -> str:
    return "_".join(p for p in parts if p)


def write_bids(sim_dir: str | Path, out: str | Path, protocol_name: str) -> Path:
    """Lay out sim_dir/case-XXXX as out/sub-XX/anat (raw) and out/derivatives/truth; all or nothing."""
    from ..phantoms.protocols import PRESETS
    sim_dir, out = Path(sim_dir), Path(out)
    if out.exists() and any(out.iterdir()):
        raise Q2MRIError(f"BIDS folder {out} exists and is not empty; give a new folder")
    protocol = PRESETS[protocol_name]
    cases = sorted(p for p in sim_dir.glob("case-*") if p.is_dir())
    width = max(2, len(str(len(cases))))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        counts: dict[str, int] = {}
        names = {}
        for img in protocol.images:
            key = "spgr" if img.kind == "spgr" else img.kind
            counts[key] = counts.get(key, 0) + 1
            names[img.name] = bids_name(img.name, img.kind, counts[key])
        for k, case in enumerate(cases):
            sub = f"sub-{k + 1:0{width}d}"
            anat = tmp / sub / "anat"
            anat.mkdir(parents=True)
            for img in protocol.images:
                ent, suffix = names[img.name]
                parts = ("mag", "phase") if img.kind == "gre_complex" else ("",)
                for part in parts:
                    src = case / (f"{img.name}_{part}.nii.gz" if part else f"{img.name}.nii.gz")
                    stem = _join(sub, ent, f"part-{part}" if part else "", suffix)
                    shutil.copyfile(src, anat / f"{stem}.nii.gz")
                    side = json.loads(src.with_name(src.name.replace(".nii.gz", ".json")).read_text())
                    side.pop("GeneratedBy", None)
                    if part == "phase":
                        side["Units"] = "rad"
                    side["Q2MRISimulatedImage"] = img.name
                    (anat / f"{stem}.json").write_text(json.dumps(side, indent=2))
            truth = tmp / "derivatives" / "truth" / sub / "anat"
            truth.mkdir(parents=True)
            for m in sorted((case / "maps").glob("*.nii.gz")):
                name = m.name[:-7]
                if name == "labels":
                    shutil.copyfile(m, truth / f"{sub}_dseg.nii.gz")
                    table = json.loads((case / "maps" / "labels.json").read_text()).get("labels", {})
                    rows = ["index\tname"] + [f"{int(i)}\t{n}" for i, n in sorted(table.items(), key=lambda kv: int(kv[0]))]
                    (truth / f"{sub}_dseg.tsv").write_text("\n".join(rows) + "\n")
                elif name in MAP_SUFFIX:
                    ent, suffix = MAP_SUFFIX[name]
                    shutil.copyfile(m, truth / f"{_join(sub, ent, suffix)}.nii.gz")
        desc = {"Name": f"Q2MRI simulated {protocol.phantom} cohort ({protocol_name})", "BIDSVersion": BIDS_VERSION,
                "DatasetType": "raw", "GeneratedBy": [{"Name": "q2mri simulate", "Version": __version__}],
                "License": "CC0"}
        (tmp / "dataset_description.json").write_text(json.dumps(desc, indent=2))
        (tmp / "participants.tsv").write_text("participant_id\n" + "".join(
            f"sub-{k + 1:0{width}d}\n" for k in range(len(cases))))
        (tmp / "derivatives" / "truth" / "dataset_description.json").write_text(json.dumps(
            {"Name": "ground truth of the simulation", "BIDSVersion": BIDS_VERSION, "DatasetType": "derivative",
             "GeneratedBy": [{"Name": "q2mri simulate", "Version": __version__}]}, indent=2))
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
