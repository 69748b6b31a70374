"""What each pipeline needs from a subject/session, found with pybids by suffix and entities, as
the q2mri command line that runs it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Q2MRIError
from .names import PIPELINES


class MissingInputs(Exception):
    """The subject/session lacks what the pipeline needs (reported and skipped)."""


@dataclass
class Inputs:
    argv: list[str]                       # q2mri arguments without --out
    files: list[Path] = field(default_factory=list)


def open_layout(bids_dir: str | Path):
    from bids import BIDSLayout
    bids_dir = Path(bids_dir)
    if not (bids_dir / "dataset_description.json").is_file():
        raise Q2MRIError(f"{bids_dir} is not a BIDS dataset (no dataset_description.json); give the dataset's root folder")
    return BIDSLayout(str(bids_dir), validate=False, derivatives=False)


def subject_sessions(layout, participants: list[str] | None, sessions: list[str] | None) -> list[tuple[str, str | None]]:
    subs = layout.get_subjects()
    if participants:
        want = [p.removeprefix("sub-") for p in participants]
        unknown = sorted(set(want) - set(subs))
        if unknown:
            raise Q2MRIError(f"no subject(s) {', '.join(unknown)} in the dataset; it has {', '.join(sorted(subs)) or 'none'}")
        subs = want
    out = []
    for s in sorted(subs):
        ses = layout.get_sessions(subject=s)
        if sessions:
            ses = [x for x in ses if x in {v.removeprefix("ses-") for v in sessions}]
            if not ses:
                continue
        out.extend([(s, x) for x in sorted(ses)] or [(s, None)])
    return out


def _get(layout, sub: str, ses: str | None, suffix: str, **entities):
    from bids.layout import Query
    return layout.get(subject=sub, session=ses if ses else Query.NONE, suffix=suffix, datatype="anat",
                      extension=[".nii.gz", ".nii"], return_type="object", **entities)


def _by(files, entity: str):
    return sorted(files, key=lambda f: int(f.entities.get(entity, 0) or 0))


def _magnitudes(layout, sub, ses):
    from bids.layout import Query
    files = _get(layout, sub, ses, "MEGRE", part=Query.NONE) or _get(layout, sub, ses, "MEGRE", part="mag")
    return _by(files, "echo")


def _pairs(layout, sub, ses):
    mags = _by(_get(layout, sub, ses, "MEGRE", part="mag"), "echo")
    phases = {f.entities.get("echo"): f for f in _get(layout, sub, ses, "MEGRE", part="phase")}
    return [(m, phases[m.entities.get("echo")]) for m in mags if m.entities.get("echo") in phases]


def _te(f) -> float:
    return float(f.get_metadata().get("EchoTime", 0.0)) * 1000.0


def _need(files, n: int, what: str):
    if len(files) < n:
        raise MissingInputs(f"needs {n} {what}, found {len(files)}")
    return files


def find_inputs(layout, pipeline: str, sub: str, ses: str | None) -> Inputs:
    """The q2mri command (without --out) for this subject/session; MissingInputs if it cannot run."""
    if pipeline not in PIPELINES:
        raise Q2MRIError(f"unknown pipeline {pipeline!r}; choose from {', '.join(PIPELINES)}")
    if pipeline == "fit-vfa":
        files = _need(_by(_get(layout, sub, ses, "VFA"), "flip"), 2, "VFA images (suffix VFA, flip-<n>)")
        return _cmd(["fit", "vfa"], files)
    if pipeline == "fit-t1-ir":
        files = _need(_by(_get(layout, sub, ses, "IRT1"), "inv"), 3, "inversion-recovery images (IRT1, inv-<n>)")
        return _cmd(["fit", "t1-ir"], files)
    if pipeline == "fit-t2star":
        files = _need(_magnitudes(layout, sub, ses), 3, "gradient echoes (MEGRE, echo-<n>)")
        return _cmd(["fit", "t2star"], files)
    if pipeline == "fit-b1-afi":
        tr1, tr2 = (_get(layout, sub, ses, "TB1AFI", acquisition=a) for a in ("tr1", "tr2"))
        if not tr1 or not tr2:
            raise MissingInputs("needs the AFI pair (TB1AFI with acq-tr1 and acq-tr2)")
        return _cmd(["fit", "b1-afi"], [tr1[0], tr2[0]])
    if pipeline == "fit-fatwater":
        pairs = _need(_pairs(layout, sub, ses), 3, "complex echoes (MEGRE part-mag and part-phase)")
        return _cmd(["fit", "fatwater"], [m for m, _ in pairs], [p for _, p in pairs])
    return _predict(layout, pipeline.removeprefix("predict-"), sub, ses)


def _predict(layout, task: str, sub: str, ses: str | None) -> Inputs:
    from ..models.tasks import TASKS
    t = TASKS[task]
    need = len(t.inputs) - t.optional_inputs
    chosen, phases, used = [], [], set()
    for k, spec in enumerate(t.inputs):
        kind = spec.image.kind
        target_te = spec.image.acq.te_ms or 0.0
        if kind == "spgr":
            # the most T1-weighted (largest flip) first, then the least (papers/000: VFA pairs)
            cands = _by(_get(layout, sub, ses, "VFA"), "flip")
            cands = cands[::-1] if k == 0 else cands
        elif kind == "gre_magnitude":
            cands = sorted(_magnitudes(layout, sub, ses), key=lambda f: abs(_te(f) - target_te))
        elif kind == "gre_complex":
            cands = [m for m, _ in sorted(_pairs(layout, sub, ses), key=lambda p: abs(_te(p[0]) - target_te))]
        elif kind == "mprage":
            cands = _get(layout, sub, ses, "T1w")
        elif kind == "flair":
            cands = _get(layout, sub, ses, "FLAIR")
        else:
            cands = []
        cands = [c for c in cands if c.path not in used]
        if not cands:
            if k < need:
                raise MissingInputs(f"predict-{task} needs a {kind} image, found none")
            continue
        chosen.append(cands[0])
        used.add(cands[0].path)
        if kind == "gre_complex":
            phases.append(dict((m.path, p) for m, p in _pairs(layout, sub, ses))[cands[0].path])
    return _cmd(["predict", "--task", task], chosen, phases or None)


def _cmd(head: list[str], files, phases=None) -> Inputs:
    argv = list(head)
    for f in files:
        argv += ["--input", f.path]
    for p in phases or []:
        argv += ["--phase", p.path]
    return Inputs(argv, [Path(f.path) for f in files] + [Path(p.path) for p in (phases or [])])
