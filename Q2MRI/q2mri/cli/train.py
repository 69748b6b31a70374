"""q2mri train: train or fine-tune a map-prediction network."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..names import TASK_NAMES
from .args import progress_bar


def cmd_train(args) -> None:
    from ..models.train import TrainConfig, describe, train

    cfg = TrainConfig(task=args.task, out=Path(args.out), data=args.data, arch=args.arch, levels=args.levels,
                      width=args.width, steps=args.steps, max_minutes=args.max_minutes, batch=args.batch,
                      patch=args.patch, lr=args.lr, physics_weight=args.physics_weight, folds=args.folds,
                      fold=args.fold, seed=args.seed, cases=args.cases, slices=args.slices, matrix=args.matrix,
                      device=args.device, init=args.init, resume=args.resume, bank=args.bank, bank_cases=args.bank_cases,
                      calibration_cases=args.calibration_cases, ensemble=args.ensemble, convs=args.convs,
                      workers=args.workers, randomize=not args.no_randomize, command="q2mri " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    bar = progress_bar("train", args.quiet)
    out = train(cfg, progress=lambda s, n, loss: bar(s, n))
    print(f"wrote {out} ({describe(out)})")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train or fine-tune a map-prediction network",
                       description="Train a network for a task on simulated phantoms (--data simulate, on the fly) or "
                                   "on a folder of cases (q2mri simulate output, or a site's own paired data: case "
                                   "folders with images, JSON sidecars and maps/). Defaults follow papers/000: loss "
                                   "l1 + 5 (1 - SSIM), Adam lr 1e-3, betas 0.89/0.89, eps 1e-8.")
    p.add_argument("--task", required=True, choices=TASK_NAMES)
    p.add_argument("--data", default="simulate", metavar="DIR|simulate")
    p.add_argument("--out", required=True, metavar="MODEL_DIR")
    p.add_argument("--arch", default="physics", choices=("physics", "sacnn", "unet"),
                   help="physics: U-Net with the task's physics layers and closed-form inputs (default); sacnn: the "
                        "papers/000 self-attention CNN; unet: the papers/001 U-Net")
    p.add_argument("--bank", metavar="DIR", help="case bank folder: phantom cases simulated once, images formed per batch "
                   "with a random protocol (models.bank); built or extended first with --bank-cases")
    p.add_argument("--bank-cases", type=int, default=0, metavar="N", help="cases per phantom to have in the bank")
    p.add_argument("--calibration-cases", type=int, default=4, metavar="N",
                   help="the bank's last N cases per phantom: not trained on; the uncertainty is recalibrated on them")
    p.add_argument("--ensemble", type=int, default=4, metavar="K", help="output heads per primary map (physics)")
    p.add_argument("--convs", type=int, default=2, metavar="N", help="convolution groups per U-Net scale (physics)")
    p.add_argument("--no-randomize", action="store_true",
                   help="bank samples without the scanner and field-of-view randomization (stripping, slabs, receive "
                        "coils, resolution, g-factor noise, B1 perturbations, quarter turns)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="processes building the bank")
    p.add_argument("--levels", type=int, default=4)
    p.add_argument("--width", type=int, default=16, help="channels of the first level (doubling per level)")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--max-minutes", type=float, metavar="MIN", help="time budget; stops and saves when spent")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, default=96)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--physics-weight", type=float, default=0.0, help="weight of the physics-consistency loss")
    p.add_argument("--folds", type=int, default=5, help="k-fold split by subject (folder data)")
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cases", type=int, default=16, help="simulated cases per phantom (--data simulate)")
    p.add_argument("--slices", type=int, default=16)
    p.add_argument("--matrix", type=int, default=128)
    p.add_argument("--init", metavar="MODEL", help="fine-tune from a bundled model or a model folder")
    p.add_argument("--resume", action="store_true", help="continue from MODEL_DIR/checkpoint.pt")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)
