"""Benchmark: q2mri simulate, 100 brain cases of 24 slices (brain-qiu protocol).

    .venv/bin/python benchmarks/simulate.py [--cases 100] [--slices 24] [--workers 2]

The whole head with a physical B1+, maps on a grid twice as fine in-plane and the images
formed in k-space (the defaults of q2mri simulate). Prints the wall time of the whole run
(written to a temporary folder), per case, and the size on disk; the target is under 10
minutes on 2 cores.
"""
import argparse
import shutil
import tempfile
import time
from pathlib import Path

from q2mri.phantoms.simulate import simulate_dataset


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=100)
    ap.add_argument("--slices", type=int, default=24)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    out = Path(tempfile.mkdtemp()) / "brain"
    t0 = time.perf_counter()
    simulate_dataset("brain", "brain-qiu", a.cases, 1, out, slices=a.slices, snr=100.0, workers=a.workers)
    dt = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"q2mri simulate --phantom brain --cases {a.cases} --slices {a.slices} --protocol brain-qiu --workers {a.workers}: "
          f"{dt:.0f} s ({dt / 60:.1f} min), {dt / a.cases:.2f} s/case, {size / 1e9:.2f} GB on disk")
    print(f"target 100 cases x 24 slices < 10 min: {'met' if dt < 600 * a.cases / 100 else 'NOT met'}")
    shutil.rmtree(out.parent)


if __name__ == "__main__":
    main()
