"""Running jobs on Dask distributed: a LocalCluster of worker processes by default, or an existing
scheduler (--scheduler tcp://host:8786, e.g. one started by dask-jobqueue on SLURM). One task per
subject/session and pipeline, submitted in a bounded window so that a cohort of 10,000 never holds
10,000 futures; GPU work asks for the worker resource GPU=1. Ctrl-C cancels what is queued."""
from __future__ import annotations

import logging
import sys
from typing import Callable, Iterable

from ..errors import Q2MRIError
from .participant import Job, Result, run_job


def run_jobs(jobs: list[Job], *, workers: int = 2, threads: int = 1, scheduler: str | None = None,
             device: str = "cpu", progress: Callable[[int, int], None] | None = None,
             say: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> list[Result]:
    total = len(jobs)
    if total == 0:
        return []
    if workers == 0 and not scheduler:              # in-process, one after another (debugging, tests)
        out = []
        for i, job in enumerate(jobs):
            out.append(run_job(job))
            if progress:
                progress(i + 1, total)
        return out
    from distributed import Client, LocalCluster, as_completed
    cluster = None
    gpu = device == "cuda"
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as e:
                raise Q2MRIError(f"cannot reach the Dask scheduler at {scheduler} ({e}); check the address "
                                 "and that the scheduler is running") from None
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                                   dashboard_address=":0", silence_logs=logging.ERROR,
                                   resources={"GPU": 1} if gpu else None)
            client = Client(cluster)
    except Q2MRIError:
        raise
    say(f"q2mri: Dask dashboard at {client.dashboard_link}")
    n_workers = max(1, len(client.scheduler_info().get("workers", {})) or workers)
    window = max(4, 2 * n_workers)
    results: list[Result] = []
    pending = iter(jobs)
    futures = as_completed()
    running = []
    try:
        def submit(k: int) -> None:
            for _ in range(k):
                job = next(pending, None)
                if job is None:
                    return
                f = client.submit(run_job, job, key=f"q2mri-{job.key}", pure=False,
                                  resources={"GPU": 1} if gpu else None)
                running.append(f)
                futures.add(f)

        submit(window)
        for f in futures:
            running.remove(f)
            try:
                results.append(f.result())
            except Exception as e:                   # noqa: BLE001  (a worker died: name the job, go on)
                name = str(f.key).removeprefix("q2mri-")
                sub, _, rest = name.partition("_")
                results.append(Result(sub.removeprefix("sub-"), None, rest, "failed", f"worker lost: {e}"))
            if progress:
                progress(len(results), total)
            submit(1)
    except KeyboardInterrupt:
        for f in running:
            f.cancel()
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return results


def summarise(results: Iterable[Result]) -> tuple[int, int, int, list[str]]:
    done = skipped = failed = 0
    lines = []
    for r in results:
        if r.status == "done":
            done += 1
        elif r.status == "skipped":
            skipped += 1
        else:
            failed += 1
            ses = f" ses-{r.session}" if r.session else ""
            lines.append(f"sub-{r.subject}{ses}\t{r.pipeline}\t{r.reason}")
    return done, skipped, failed, lines
