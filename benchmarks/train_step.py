"""Training speed on this machine: samples per second and where a step's time goes (data,
physics layers, network forward, backward and optimizer), per task, for the configuration the
bundled models were trained with and for the campaign's current one, measured in one run.

    .venv/bin/python benchmarks/train_step.py [--tasks spgr-t1 t2star ...] [--steps 10] [--bank DIR]

Without --bank a small bank (two cases per phantom) is simulated into a temporary folder first
(not timed). The data time is the building of one batch from the bank (image formation through
the physics, randomization, normalisation), or with the background loader (models.train) the wait
for the next one; the physics time is the task's closed-form features
and assembly (models.physicsnet) inside the forward pass; forward is the rest of the forward
pass and the loss; backward includes the optimizer step.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import contextmanager

import numpy as np
import torch

from q2mri.models.bank import NO_RANDOMIZATION, BankDataset, Randomization, build_bank
from q2mri.models.losses import laplace_nll, paper_loss
from q2mri.models.physicsnet import PhysicsNet
from q2mri.models.quantnet import ModelConfig
from q2mri.models.tasks import TASKS
from q2mri.models.train import BANK_SEED_OFFSET, _BankBatches, _batch, _finish_batch

# "bundled": how stop 18's networks were trained (scripts/train_campaign.sh then): 96-pixel patches,
# no randomization, data built between steps. "campaign": scripts/train_campaign.sh now.
CONFIGS = {
    "bundled": dict(levels=5, width=8, patch=96, batch=8, randomize=False, loader=False),
    "campaign (as run this session)": dict(levels=5, width=8, patch=96, batch=8, randomize=True, loader=True),
    "campaign now (no loader)": dict(levels=5, width=8, patch=96, batch=8, randomize=True, loader=False),
    "campaign, 64-pixel patches": dict(levels=5, width=8, patch=64, batch=8, randomize=True, loader=True),
}


@contextmanager
def _timer(acc: dict, key: str):
    t = time.perf_counter()
    yield
    acc[key] = acc.get(key, 0.0) + time.perf_counter() - t


def _net(task: str, c: dict) -> PhysicsNet:
    t = TASKS[task]
    return PhysicsNet(ModelConfig("physics", t.channels, list(t.targets), list(t.target_scales), c["levels"], c["width"],
                                  t.acq_dim, extra={"task": task, "ensemble": 4, "convs": 2}))


def measure(task: str, bank: str, c: dict, steps: int) -> dict:
    t = TASKS[task]
    net = _net(task, c).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.89, 0.89), eps=1e-8)
    ds = BankDataset(bank, t, patch=c["patch"], seed=3, randomize=Randomization() if c["randomize"] else NO_RANDOMIZATION)
    rng = np.random.default_rng(0)
    batches = _BankBatches(ds, c["batch"], rng) if c["loader"] else None
    acc: dict = {}
    # time the physics layers inside the forward pass by wrapping them
    phys = net.phys
    feats, assemble = phys.features, phys.assemble

    def timed(fn):
        def run(*a, **k):
            with _timer(acc, "physics"):
                return fn(*a, **k)
        return run
    phys.features, phys.assemble = timed(feats), timed(assemble)
    for s in range(steps + 2):
        if s == 2:                     # two warm-up steps
            acc.clear()
            t0 = time.perf_counter()
        with _timer(acc, "data"):          # with the loader: the wait for the next batch
            if batches is not None:
                x, a, y, m = _finish_batch(batches.next(), t, rng, "cpu")
            else:
                x, a, y, m = _batch(ds, list(rng.integers(0, len(ds), c["batch"])), t, rng, "cpu")
        with _timer(acc, "forward"):
            yn = y / net.scales
            mean, b = net.forward_normalised(x, a)
            loss = paper_loss(mean, yn, m, 5.0) + 0.1 * laplace_nll(mean, b, yn, m) + 0.5 * net.aux_loss(yn, m)
        with _timer(acc, "backward"):
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    total = time.perf_counter() - t0
    acc["forward"] -= acc.get("physics", 0.0)
    return {"samples_per_s": steps * c["batch"] / total, "pixels_per_s": steps * c["batch"] * c["patch"] ** 2 / total,
            **{k: v / steps for k, v in acc.items()}, "step_s": total / steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--bank", help="an existing case bank (else two cases per phantom are simulated first)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tmp = None
    bank = args.bank
    if bank is None:
        tmp = tempfile.TemporaryDirectory()
        bank = tmp.name
        for ph in sorted({p for k in args.tasks for p in TASKS[k].phantoms}):
            build_bank(bank, ph, 2, BANK_SEED_OFFSET[ph], keep=2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.steps} timed steps per row "
          f"(seconds per step: data / physics / forward / backward)")
    print("| task | configuration | samples/s | pixels/s | step s | data | physics | forward | backward | speed-up (pixels/s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for task in args.tasks:
        base = None
        for name, c in CONFIGS.items():
            r = measure(task, bank, c, args.steps)
            base = base or r["pixels_per_s"]
            print(f"| {task} | {name} (levels {c['levels']}, width {c['width']}, patch {c['patch']}, batch {c['batch']}"
                  f"{', randomized' if c['randomize'] else ''}{', background loader' if c['loader'] else ''}) | {r['samples_per_s']:.1f} | {r['pixels_per_s']:.0f} | "
                  f"{r['step_s']:.2f} | {r['data']:.2f} | {r.get('physics', 0):.2f} | {r['forward']:.2f} | "
                  f"{r['backward']:.2f} | {r['pixels_per_s'] / base:.2f}x |", flush=True)
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
