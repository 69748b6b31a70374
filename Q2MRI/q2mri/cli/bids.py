"""q2mri bids: the BIDS App (BIDS_DIR OUT_DIR participant|group), on Dask."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import Q2MRIError
from .args import progress_bar


def _pipelines(text: str) -> list[str]:
    from ..cohort.names import PIPELINES
    pipes = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in pipes if p not in PIPELINES]
    if bad or not pipes:
        raise argparse.ArgumentTypeError(f"unknown pipeline(s) {', '.join(bad) or text!r}; choose from {', '.join(PIPELINES)}")
    return pipes


def cmd_bids(args) -> None:
    from ..cohort.engine import run_jobs, summarise
    from ..cohort.group import dataset_description, group_table, write_group
    from ..cohort.inputs import MissingInputs, find_inputs, open_layout, subject_sessions
    from ..cohort.participant import Job
    bids_dir, out_dir = Path(args.bids_dir).resolve(), Path(args.output_dir).resolve()
    if out_dir == bids_dir:
        raise Q2MRIError("the output folder must not be the BIDS dataset itself; give e.g. BIDS_DIR/derivatives/q2mri")
    if args.analysis_level == "group":
        rows = group_table(out_dir, args.labels_from)
        files = write_group(rows, out_dir / "group")
        print(f"wrote {len(rows)} rows to {files[0]} and {files[1].name}, and {len(files) - 2} box plot(s)")
        return
    if not args.pipeline:
        raise Q2MRIError("the participant level needs --pipeline (e.g. fit-vfa or predict-spgr-t1)")
    if args.workers < 0 or args.threads_per_worker < 1:
        raise Q2MRIError("--workers must be >= 0 and --threads-per-worker >= 1")
    layout = open_layout(bids_dir)
    pairs = subject_sessions(layout, args.participant_label, args.session_label)
    if not pairs:
        raise Q2MRIError("no subject/session matches --participant-label/--session-label")
    from ..cohort.names import pipeline_maps
    shared = any(set(pipeline_maps(a)) & set(pipeline_maps(b)) for i, a in enumerate(args.pipeline)
                 for b in args.pipeline[i + 1:])
    jobs, missing = [], []
    for sub, ses in pairs:
        for pipe in args.pipeline:
            try:
                inp = find_inputs(layout, pipe, sub, ses)
            except MissingInputs as e:
                missing.append(f"sub-{sub}{' ses-' + ses if ses else ''}\t{pipe}\tskipped: {e}")
                continue
            jobs.append(Job(str(bids_dir), str(out_dir), sub, ses, pipe, inp.argv, [str(f) for f in inp.files],
                            device=args.device, threads=args.threads_per_worker, desc_pipeline=shared))
    for line in missing:
        print(f"q2mri: {line}", file=sys.stderr)
    dataset_description(out_dir, args.pipeline)
    results = run_jobs(jobs, workers=args.workers, threads=args.threads_per_worker, scheduler=args.scheduler,
                       device=args.device, progress=progress_bar("participants", args.quiet))
    done, skipped, failed, lines = summarise(results)
    print(f"{done} run(s) done, {skipped} already complete, {failed} failed, {len(missing)} without inputs "
          f"({len(pairs)} subject/session(s), pipelines {', '.join(args.pipeline)}) -> {out_dir}")
    for line in lines:
        print(f"q2mri: failed: {line}", file=sys.stderr)
    if failed:
        raise Q2MRIError(f"{failed} run(s) failed (listed above: subject, pipeline, reason); the others are complete "
                         "and a rerun redoes only the failed ones")


def register(sub: argparse._SubParsersAction) -> None:
    from ..names import TASK_NAMES
    pipes = ("fit-vfa", "fit-t1-ir", "fit-t2star", "fit-b1-afi", "fit-fatwater") + tuple(f"predict-{t}" for t in TASK_NAMES)
    p = sub.add_parser("bids", help="BIDS App: maps for a whole cohort on Dask (participant), then a group table",
                       description="BIDS App (bids_dir output_dir analysis_level). participant: one Dask task per "
                                   "subject/session and pipeline, BIDS derivatives (T1map, M0map, R2starmap, "
                                   "T2starmap, TB1map, PDFFmap, fieldmap; SDs as desc-<map>_sd, residuals as _residual, quality as _dseg, "
                                   "so that a suffix query for a map finds only maps) with "
                                   "provenance; complete runs are skipped on a rerun. group: group/q2mri_group.tsv "
                                   f"and .parquet and a box plot per map. Pipelines: {', '.join(pipes)}.")
    p.add_argument("bids_dir", metavar="BIDS_DIR")
    p.add_argument("output_dir", metavar="OUT_DIR")
    p.add_argument("analysis_level", choices=("participant", "group"))
    p.add_argument("--participant-label", nargs="+", metavar="LABEL", help="subjects (without sub-); default all")
    p.add_argument("--session-label", nargs="+", metavar="LABEL", help="sessions (without ses-); default all")
    p.add_argument("--pipeline", type=_pipelines, metavar="PIPE[,PIPE...]", help=f"one or more of {', '.join(pipes)}")
    p.add_argument("--workers", type=int, default=2, metavar="N",
                   help="Dask LocalCluster worker processes (default 2; 0 = run in this process, no Dask)")
    p.add_argument("--threads-per-worker", type=int, default=1, metavar="T", help="threads per worker (default 1)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="join an existing Dask cluster, e.g. tcp://host:8786")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="cuda: tasks ask for the Dask worker resource GPU=1 (default cpu)")
    p.add_argument("--labels-from", metavar="DERIVATIVES_DIR",
                   help="group: a derivatives dataset with a _dseg segmentation (and its .tsv) per subject; default: "
                        "the body (quality mask)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_bids)
