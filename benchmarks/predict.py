"""Benchmark: q2mri predict, time per task for a 256x256x100 volume, and peak memory for a
512x512x300 volume.

    .venv/bin/python benchmarks/predict.py [--device cpu|cuda] [--tasks spgr-t1,...]

Uses each task's bundled model where one exists, else an untrained network of the default
training configuration (levels 5, width 8): the timing does not depend on the weights,
and the output says which was used. CPU runs use 2 threads. The 512x512x300 run is made in
a child process so that its peak resident memory (ru_maxrss) is its own.
"""
import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from q2mri.models.predict import predict
from q2mri.models.quantnet import ModelConfig, QuantNet
from q2mri.models.registry import find_model, save_model
from q2mri.models.tasks import TASKS
from q2mri.errors import Q2MRIError


def model_for(task: str, tmp: Path) -> tuple[str, str]:
    try:
        return str(find_model(None, task)), "bundled"
    except Q2MRIError:
        t = TASKS[task]
        net = QuantNet(ModelConfig("sacnn", t.channels, list(t.targets), list(t.target_scales), 5, 8, t.acq_dim))
        return str(save_model(net, tmp / task, {"task": task, "inputs": [], "outputs": list(t.targets)})), "untrained"


def inputs(task: str, shape, rng):
    t = TASKS[task]
    n = len(t.inputs) - t.optional_inputs
    ims, acqs = [], []
    for spec in t.inputs[:n]:
        a = rng.uniform(0.2, 1.0, shape).astype(np.float32)
        ims.append(a * np.exp(1j * rng.uniform(-3, 3, shape)).astype(np.complex64) if t.complex_inputs else a)
        acqs.append(spec.image.acq)
    return ims, acqs


def run(task: str, shape, device: str, model: str) -> float:
    ims, acqs = inputs(task, shape, np.random.default_rng(0))
    predict(task, [i[:2] for i in ims], acqs, model=model, device=device)      # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    predict(task, ims, acqs, model=model, device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--memory-child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    torch.set_num_threads(2)
    tmp = Path(tempfile.mkdtemp())
    if a.memory_child:
        model = a.memory_child
        ims, acqs = inputs("spgr-t1", (300, 512, 512), np.random.default_rng(0))
        t0 = time.perf_counter()
        predict("spgr-t1", ims, acqs, model=model, device=a.device)
        print(json.dumps({"seconds": time.perf_counter() - t0,
                          "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        return
    dev = torch.cuda.get_device_name(0) if a.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {dev}")
    for task in a.tasks.split(","):
        model, kind = model_for(task, tmp)
        dt = run(task, (100, 256, 256), a.device, model)
        print(f"{task:14s} 256x256x100: {dt:6.2f} s ({kind} model)")
    model, kind = model_for("spgr-t1", tmp)
    out = subprocess.run([sys.executable, __file__, "--device", a.device, "--memory-child", model],
                         capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"spgr-t1 512x512x300: {r['seconds']:.1f} s, peak resident memory {r['peak_mb']:.0f} MB ({kind} model)")


if __name__ == "__main__":
    main()
