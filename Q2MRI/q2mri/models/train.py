"""Training: q2mri train --task TASK --data DIR|simulate --out MODEL_DIR.

Defaults from papers/000: loss l1 + 5 (1 - SSIM) on normalised maps, Adam with lr 1e-3,
beta1 = beta2 = 0.89, eps 1e-8; patch training. Added: the Laplace NLL of the
uncertainty head, an optional physics-consistency term (papers/003, type 3), k-fold
splits by subject, resumable checkpoints, a loss log, deterministic seeds, a time budget,
mixed precision on CUDA, and fine-tuning from an existing model.
"""
from __future__ import annotations

import csv
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from ..device import resolve_device
from ..errors import Q2MRIError
from ..phantoms.dataset import Augment, FolderDataset, SimulatedSliceDataset
from .losses import laplace_nll, paper_loss
from .quantnet import ModelConfig, QuantNet
from .registry import find_model, load_model, save_model
from .tasks import RESYNTHESIS, TASKS, Task, consistency


@dataclass
class TrainConfig:
    task: str
    out: Path
    data: str = "simulate"          # a folder of cases, or "simulate" for on-the-fly phantoms
    arch: str = "sacnn"
    levels: int = 4
    width: int = 16
    steps: int = 2000
    max_minutes: float | None = None
    batch: int = 8
    patch: int = 96
    lr: float = 1e-3
    ssim_weight: float = 5.0
    nll_weight: float = 0.1
    physics_weight: float = 0.0
    folds: int = 5
    fold: int = 0
    seed: int = 0
    cases: int = 16                 # simulated training cases per phantom
    slices: int = 16
    matrix: int = 128
    device: str = "auto"
    init: str | None = None         # fine-tune from this model (bundled name or folder)
    resume: bool = False
    checkpoint_every: int = 200
    command: str = ""
    bank: str | None = None         # a case bank folder (models.bank): images synthesized per batch from it
    bank_cases: int = 0             # build (or extend) the bank to this many cases per phantom first
    calibration_cases: int = 4      # the bank's last cases per phantom: never trained on, used by models.calibrate
    ensemble: int = 4               # output heads per primary map (physics networks: epistemic spread)
    convs: int = 2                  # convolution groups per U-Net scale (physics networks)
    aux_weight: float = 0.5         # weight of the ensemble heads' bootstrap loss
    workers: int = 1                # processes building the bank
    # bank batches built by a background process while the network trains: on 2 cores it competes with the
    # network's threads and costs 1.6x per step (benchmarks/train_step.py), so off by default; for more cores
    loader: bool = False
    randomize: bool = True          # bank samples randomize the scanner and field of view (models.bank.Randomization)


BANK_SEED_OFFSET = {"knee": 0, "brain": 101, "liver": 202}


def bank_split(bank: str, task: Task, calibration_cases: int) -> tuple[list[int], list[int]]:
    """Case ids of a bank used for training and for calibration (the last ones, never trained on)."""
    from pathlib import Path as _P
    n = min(len(list((_P(bank) / ph).glob("case-*.npz"))) for ph in task.phantoms)
    cal = list(range(max(0, n - calibration_cases), n))
    return [i for i in range(n) if i not in cal], cal


def _datasets(cfg: TrainConfig, task: Task, seed: int, n_cases: int) -> Dataset:
    aug = Augment(patch=cfg.patch)
    if cfg.bank:
        from .bank import BankDataset
        train_ids, _ = bank_split(cfg.bank, task, cfg.calibration_cases)
        if not train_ids:
            raise Q2MRIError(f"the bank {cfg.bank} has no training cases left after {cfg.calibration_cases} for calibration")
        return BankDataset(cfg.bank, task, cases=train_ids, seed=seed, patch=cfg.patch, randomize=_randomization(cfg))
    if cfg.data == "simulate":
        parts = [SimulatedSliceDataset(ph, task.inputs, task.targets, n_cases=n_cases, seed=seed + 101 * i,
                                       samples_per_case=4 * cfg.slices, slices=cfg.slices,
                                       matrix=None if ph == "brain" else cfg.matrix, augment=aug,
                                       normalise=task.normalise)
                 for i, ph in enumerate(task.phantoms)]
        return ConcatDataset(parts)
    return FolderDataset(cfg.data, task.folder_inputs if not task.complex_inputs else
                         [f"{s}_{p}" for s in task.folder_inputs for p in ("mag", "phase")],
                         task.targets, augment=aug, seed=seed, normalise=task.normalise,
                         complex_pairs=task.complex_inputs)


def _randomization(cfg: TrainConfig):
    from .bank import NO_RANDOMIZATION, Randomization
    return Randomization() if cfg.randomize else NO_RANDOMIZATION


def split_cases(names: list[str], folds: int, fold: int, seed: int) -> tuple[list[str], list[str]]:
    """k-fold split by subject: every slice of a case lands on the same side."""
    if folds < 2:
        return names, []
    order = list(names)
    random.Random(seed).shuffle(order)
    held = [n for i, n in enumerate(order) if i % folds == fold]
    return [n for n in names if n not in held], held


def _batch(ds: Dataset, idx: list[int], task: Task, rng: np.random.Generator, device, drop_optional: bool = True):
    items = [ds[i] for i in idx]
    return _finish_batch(_collate(items), task, rng, device, drop_optional)


def _finish_batch(batch: dict, task: Task, rng: np.random.Generator, device, drop_optional: bool = True):
    """Inputs, acquisitions, targets and masks on the device; trailing optional inputs dropped at random."""
    x, a = batch["inputs"].clone(), batch["acq"].clone()
    items = range(x.shape[0])
    if drop_optional and task.optional_inputs:
        per = 2 if task.complex_inputs else 1
        n_in = len(task.inputs)
        for j in range(len(items)):
            keep = n_in - int(rng.integers(0, task.optional_inputs + 1))
            x[j, keep * per:] = 0
            a[j, keep * 5:] = 0
    return x.to(device), a.to(device), batch["targets"].to(device), batch["mask"].to(device)


class _BankBatches:
    """Batches of a case bank built by a background process while the network trains (image
    formation is half of a CPU step: benchmarks/train_step.py). Each index is a fresh sample."""

    def __init__(self, ds: Dataset, batch: int, rng: np.random.Generator):
        from torch.utils.data import DataLoader
        seeds = rng.integers(0, 2 ** 31)
        sampler = _RandomIndices(len(ds), int(seeds))
        self.loader = iter(DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=1, persistent_workers=True,
                                      prefetch_factor=2, worker_init_fn=_one_thread,
                                      collate_fn=_collate))

    def next(self) -> dict:
        return next(self.loader)


class _RandomIndices(torch.utils.data.Sampler):
    def __init__(self, n: int, seed: int):
        self.n, self.seed = n, seed

    def __iter__(self):
        r = np.random.default_rng(self.seed)
        while True:
            yield int(r.integers(0, self.n))


def _collate(items: list[dict]) -> dict:
    return {k: torch.stack([b[k] for b in items]) for k in ("inputs", "acq", "targets", "mask")}


def _one_thread(_):
    torch.set_num_threads(1)


def _block_order(ds: Dataset, rng: np.random.Generator) -> list[int]:
    """Indices grouped by case (the simulated datasets cache few cases), shuffled inside; a
    case bank draws its own case per index, so its indices are just fresh numbers."""
    if hasattr(ds, "banks"):
        return list(rng.integers(0, len(ds), 4096))
    n = len(ds)
    block = 64
    starts = list(range(0, n, block))
    rng.shuffle(starts)
    order = []
    for s in starts:
        idx = list(range(s, min(n, s + block)))
        rng.shuffle(idx)
        order += idx
    return order


def train(cfg: TrainConfig, progress: Callable[[int, int, float], None] | None = None) -> Path:
    if cfg.task not in TASKS:
        raise Q2MRIError(f"unknown task {cfg.task!r}; choose one of {', '.join(TASKS)}")
    task = TASKS[cfg.task]
    if cfg.physics_weight and cfg.task not in RESYNTHESIS:
        raise Q2MRIError(f"--physics-weight is available for {', '.join(RESYNTHESIS)} only")
    dev = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.bank and cfg.bank_cases:
        from .bank import build_bank
        for ph in task.phantoms:     # one bank per phantom, shared by every task of it
            build_bank(cfg.bank, ph, cfg.bank_cases, cfg.seed + BANK_SEED_OFFSET[ph], workers=cfg.workers)
    if cfg.bank:
        train_ds = _datasets(cfg, task, cfg.seed, cfg.cases)
        held_desc = (f"simulated subjects of seed 10007 and up (models.evaluate); calibration on the bank's last "
                     f"{cfg.calibration_cases} cases per phantom")
    elif cfg.data == "simulate":
        train_ds = _datasets(cfg, task, cfg.seed, cfg.cases)
        held_desc = f"{max(2, cfg.cases // 4)} simulated cases per phantom with seed {cfg.seed + 10007}"
    else:
        full = _datasets(cfg, task, cfg.seed, 0)
        names = [c.name for c in full.cases]
        tr, held = split_cases(names, cfg.folds, cfg.fold, cfg.seed)
        train_ds = FolderDataset(cfg.data, full.inputs, task.targets, augment=Augment(patch=cfg.patch), seed=cfg.seed,
                                 cases=tr, normalise=task.normalise, complex_pairs=task.complex_inputs)
        held_desc = f"fold {cfg.fold} of {cfg.folds}: cases {', '.join(held)}"
    if cfg.init:
        net, _ = load_model(find_model(cfg.init, cfg.task), "cpu")
    elif cfg.arch == "physics":
        from .physicsnet import PhysicsNet
        net = PhysicsNet(ModelConfig("physics", task.channels, list(task.targets), list(task.target_scales), cfg.levels,
                                     cfg.width, task.acq_dim, extra={"task": cfg.task, "ensemble": cfg.ensemble,
                                                                     "convs": cfg.convs}))
    else:
        net = QuantNet(ModelConfig(cfg.arch, task.channels, list(task.targets), list(task.target_scales),
                                   cfg.levels, cfg.width, task.acq_dim))
    net = net.to(dev).train()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(0.89, 0.89), eps=1e-8)   # papers/000
    step = 0
    ckpt = out / "checkpoint.pt"
    if cfg.resume and ckpt.exists():
        state = torch.load(ckpt, map_location=dev, weights_only=False)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        for g in opt.param_groups:      # a resumed run takes the --lr it is given (a lower-lr phase)
            g["lr"] = cfg.lr
        step = state["step"]
        rng = np.random.default_rng(state["rng_seed"])
        torch.set_rng_state(state["torch_rng"])
    log_path = out / "loss_log.csv"
    new_log = not (cfg.resume and log_path.exists())
    log = open(log_path, "w" if new_log else "a", newline="")
    writer = csv.writer(log)
    if new_log:
        writer.writerow(["step", "loss", "paper_loss", "nll", "physics", "seconds"])
    t0 = time.time()
    skipped = 0
    order: list[int] = []
    # a bank's samples are built in a background process (the collate runs there too)
    batches = _BankBatches(train_ds, cfg.batch, rng) if cfg.bank and cfg.loader else None
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else torch.autocast("cpu", enabled=False)
    try:
        while step < cfg.steps:
            if cfg.max_minutes is not None and time.time() - t0 > 60 * cfg.max_minutes:
                break
            if batches is not None:
                x, a, y, m = _finish_batch(batches.next(), task, rng, dev)
            else:
                if len(order) < cfg.batch:
                    order += _block_order(train_ds, rng)
                idx, order = order[:cfg.batch], order[cfg.batch:]
                x, a, y, m = _batch(train_ds, idx, task, rng, dev)
            yn = y / net.scales
            with amp:
                mean, b = net.forward_normalised(x, a)
            mean, b = mean.float(), b.float()
            lp = paper_loss(mean, yn, m, cfg.ssim_weight)
            nll = laplace_nll(mean, b, yn, m)
            loss = lp + cfg.nll_weight * nll
            if hasattr(net, "aux_loss"):
                loss = loss + cfg.aux_weight * net.aux_loss(yn, m)
            phys = torch.zeros(())
            if cfg.physics_weight:
                maps = {k: mean[:, i] * net.scales[0, i, 0, 0] for i, k in enumerate(task.targets)}
                phys = consistency(cfg.task, x, maps, a, m)[1].mean()
                loss = loss + cfg.physics_weight * phys
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            if not (torch.isfinite(loss) and torch.isfinite(grad_norm)):
                skipped += 1          # a rare non-finite batch must not poison the weights
                if skipped > 50:
                    raise Q2MRIError(f"training diverged: {skipped} non-finite steps; lower --lr")
                continue
            opt.step()
            step += 1
            writer.writerow([step, f"{loss.item():.6f}", f"{lp.item():.6f}", f"{nll.item():.6f}",
                             f"{float(phys):.6f}", f"{time.time() - t0:.1f}"])
            if step % 10 == 0:
                log.flush()
            if progress:
                progress(step, cfg.steps, loss.item())
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                _checkpoint(ckpt, net, opt, step, rng)
    finally:
        log.close()
    _checkpoint(ckpt, net, opt, step, rng)
    calibration = None
    if cfg.bank and hasattr(net, "sd_scale"):
        from .calibrate import calibrate
        _, cal_ids = bank_split(cfg.bank, task, cfg.calibration_cases)
        if cal_ids:
            calibration = calibrate(net.eval(), task, cfg.bank, cal_ids, device=dev, randomize=_randomization(cfg))
    card = {"task": cfg.task, "description": task.description, "inputs": list(task.folder_inputs),
            "optional_inputs": task.optional_inputs, "outputs": list(task.targets),
            "units": {k: v for k, v in zip(task.targets, ("see q2mri.maps",) * len(task.targets))},
            "protocol_ranges": task.ranges, "normalisation": ("all inputs divided by the 95th percentile of the first input's "
            "magnitude in the body mask, per slice" if task.normalise == "joint" else "each input divided by its 95th "
            "percentile in the body mask, per slice (papers/001)"), "training": {"data": cfg.bank or cfg.data, "steps": step, "batch": cfg.batch,
            "patch": cfg.patch, "seed": cfg.seed, "minutes": round((time.time() - t0) / 60, 1),
            "device": str(dev), "randomized": cfg.randomize}, "held_out": held_desc, "command": cfg.command, "default": True,
            "calibration": calibration}
    return save_model(net.cpu().eval(), out, card)


def _checkpoint(path: Path, net, opt, step: int, rng: np.random.Generator) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "step": step,
                "rng_seed": int(rng.integers(2 ** 31)), "torch_rng": torch.get_rng_state()}, tmp)
    tmp.replace(path)


def describe(path: Path) -> str:
    card = json.loads((Path(path) / "card.json").read_text())
    return f"{card['task']}: {card['training']['steps']} steps in {card['training']['minutes']} min, {card['size_mb']} MB"


