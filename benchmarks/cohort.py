"""Benchmark: the BIDS App on a Dask LocalCluster, 8 simulated knee subjects (knee-vfa, 12 slices of
128 x 128), pipeline predict-spgr-t1 (the network, 10 refinement steps on each scan), with 1 and
with 2 worker processes (1 thread each), from one run.

    .venv/bin/python benchmarks/cohort.py [--subjects 8] [--pipeline predict-spgr-t1]

Prints the wall time of each and the speed-up; each run starts from an empty output folder and
includes the cluster's start.
"""
import argparse
import shutil
import tempfile
import time
from pathlib import Path

from q2mri.cli.main import main


def run(bids: Path, out: Path, workers: int, pipeline: str) -> float:
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    code = main(["bids", str(bids), str(out), "participant", "--pipeline", pipeline, "--workers", str(workers),
                 "--threads-per-worker", "1", "--quiet"])
    dt = time.perf_counter() - t
    assert code == 0, f"q2mri bids failed with {code}"
    return dt


def bench() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subjects", type=int, default=8)
    ap.add_argument("--pipeline", default="predict-spgr-t1")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bids = Path(tmp) / "bids"
        assert main(["simulate", "--phantom", "knee", "--protocol", "knee-vfa", "--cases", str(args.subjects),
                     "--seed", "3", "--slices", "12", "--matrix", "128", "--bids", "--out", str(bids), "--quiet"]) == 0
        t1 = run(bids, Path(tmp) / "out1", 1, args.pipeline)
        t2 = run(bids, Path(tmp) / "out2", 2, args.pipeline)
    print(f"{args.subjects} subjects, {args.pipeline}: 1 worker {t1:.1f} s, 2 workers {t2:.1f} s, "
          f"speed-up {t1 / t2:.2f}x")


if __name__ == "__main__":
    bench()
