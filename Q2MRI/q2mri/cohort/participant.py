"""One pipeline on one subject/session: the same q2mri command a user would type, run in-process
(so the derivatives equal the command line's), then its maps renamed to BIDS derivatives with
provenance. Whole or not at all: the command writes into a private folder, the files are moved
into place, and a record written last marks the run complete; a rerun with the same inputs
(SHA256) and version skips it."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from .names import MAP_SUFFIX, pipeline_desc, pipeline_maps

RECORDS = ".q2mri"


@dataclass
class Job:
    bids_dir: str
    out_dir: str
    subject: str
    session: str | None
    pipeline: str
    argv: list[str]
    files: list[str]
    device: str = "auto"
    threads: int = 1
    desc_pipeline: bool = False          # several pipelines write the same map: name them apart

    @property
    def key(self) -> str:
        return "_".join(x for x in (f"sub-{self.subject}", f"ses-{self.session}" if self.session else "",
                                    self.pipeline) if x)


@dataclass
class Result:
    subject: str
    session: str | None
    pipeline: str
    status: str                           # done | skipped | failed
    reason: str = ""
    outputs: list[str] = field(default_factory=list)


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _record_path(job: Job) -> Path:
    return Path(job.out_dir) / RECORDS / f"{job.key}.json"


def is_complete(job: Job, hashes: dict[str, str]) -> bool:
    rec = _record_path(job)
    if not rec.is_file():
        return False
    try:
        r = json.loads(rec.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    out = Path(job.out_dir)
    return (r.get("Version") == __version__ and r.get("Inputs") == hashes and r.get("Argv") == job.argv
            and all((out / p).is_file() and sha256(out / p) == h for p, h in r.get("Outputs", {}).items()))


def derivative_name(job: Job, name: str) -> str:
    """BIDS derivative file stem of one q2mri output. Only maps of the quantity carry its qMRI
    suffix (T1 -> sub-01_T1map; with the pipeline in desc when two requested pipelines write the
    same map), so that selecting T1 maps by suffix finds T1 maps alone. Everything else is named
    by what it is: T1_sd -> sub-01_desc-T1map_sd, residual -> sub-01_desc-fitvfa_residual,
    consistency -> sub-01_desc-predictspgrt1_consistency, quality -> sub-01_desc-fitvfaquality_dseg."""
    pipe = pipeline_desc(job.pipeline)
    base = name[:-3] if name.endswith("_sd") else name
    if base in MAP_SUFFIX:
        ent, suffix = MAP_SUFFIX[base]
        desc = (pipe if job.desc_pipeline else "") + ent.removeprefix("desc-")
        if name.endswith("_sd"):          # the SD of a map is not that map: its own suffix
            desc, suffix = desc + suffix, "sd"
    elif name == "quality":
        desc, suffix = pipe + "quality", "dseg"
    else:                                   # residual, consistency, inversion_efficiency, confidence
        desc, suffix = pipe, name.replace("_", "")
    parts = [f"sub-{job.subject}", f"ses-{job.session}" if job.session else "", f"desc-{desc}" if desc else "", suffix]
    return "_".join(p for p in parts if p)


def _model_provenance(job: Job) -> dict:
    if not job.pipeline.startswith("predict-"):
        return {}
    from ..models.registry import find_model
    folder = find_model(None, job.pipeline.removeprefix("predict-"))
    weights = folder / "weights.safetensors"
    return {"Model": folder.name, "ModelSHA256": sha256(weights) if weights.is_file() else ""}


def run_job(job: Job) -> Result:
    """Never raises for a subject's own problem: a failure is a Result with its one-line reason."""
    try:
        return _run(job)
    except KeyboardInterrupt:
        raise
    except Exception as e:                                          # noqa: BLE001  (reported per subject)
        return Result(job.subject, job.session, job.pipeline, "failed", f"{type(e).__name__}: {e}")


def _run(job: Job) -> Result:
    import torch

    from ..cli.main import main as q2mri
    torch.set_num_threads(max(1, job.threads))
    out = Path(job.out_dir)
    hashes = {os.path.relpath(f, job.bids_dir): sha256(f) for f in job.files}
    if is_complete(job, hashes):
        rec = json.loads(_record_path(job).read_text())
        return Result(job.subject, job.session, job.pipeline, "skipped", outputs=sorted(rec["Outputs"]))
    work = out / RECORDS / f"tmp-{job.key}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        argv = list(job.argv) + ["--out", str(work / "maps"), "--quiet"]
        if job.pipeline.startswith("predict-") or job.pipeline in ("fit-vfa", "fit-t2star", "fit-t1-ir", "fit-fatwater"):
            argv += ["--device", job.device]
        err, std = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
            code = q2mri(argv)
        if code != 0:
            lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
            reason = lines[-1].removeprefix("q2mri: error: ").removeprefix("q2mri: ") if lines else f"exit status {code}"
            return Result(job.subject, job.session, job.pipeline, "failed", reason)
        made = sorted((work / "maps").glob("*.nii.gz"))
        names = [p.name[:-7] for p in made]
        anat = out / f"sub-{job.subject}" / (f"ses-{job.session}" if job.session else "") / "anat"
        anat.mkdir(parents=True, exist_ok=True)
        prov = {"Q2MRIVersion": __version__, "Pipeline": job.pipeline, "Command": ["q2mri", *job.argv],
                "Sources": sorted(hashes), "SourceSHA256": hashes, **_model_provenance(job)}
        staged = []
        for p, name in zip(made, names):
            stem = derivative_name(job, name)
            side_src = p.with_name(f"{name}.json")
            side = json.loads(side_src.read_text()) if side_src.is_file() else {}
            side.pop("Sources", None)           # temporary paths: replaced by the dataset-relative ones
            side.update(prov)
            side_tmp = work / f"{stem}.json"
            side_tmp.write_text(json.dumps(side, indent=2))
            staged += [(p, anat / f"{stem}.nii.gz"), (side_tmp, anat / f"{stem}.json")]
        for src, dst in staged:
            os.replace(src, dst)
        outputs = {os.path.relpath(dst, out): sha256(dst) for _, dst in staged}
        rec = _record_path(job)
        tmp = rec.with_name(rec.name + ".part")
        tmp.write_text(json.dumps({"Version": __version__, "Argv": job.argv, "Inputs": hashes, "Outputs": outputs},
                                  indent=2))
        os.replace(tmp, rec)
        return Result(job.subject, job.session, job.pipeline, "done", outputs=sorted(outputs))
    finally:
        shutil.rmtree(work, ignore_errors=True)
