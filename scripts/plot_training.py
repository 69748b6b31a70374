"""The learning curves of the bundled models' training runs (out/train/<task>/loss_log.csv):
the papers' loss (l1 + 5 (1 - SSIM), normalised units) against steps, smoothed over 200 steps.
A run folder is drawn only when it is the bundled model's (its last step is the card's), and a
step logged twice (a run resumed from an earlier checkpoint) counts once, the later row.

    .venv/bin/python scripts/plot_training.py [RUNS_DIR] [OUT_PNG]
"""
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import json  # noqa: E402

import numpy as np  # noqa: E402

MODELS = Path(__file__).resolve().parents[1] / "Resources" / "Models"

runs = Path(sys.argv[1] if len(sys.argv) > 1 else "out/train")
out = Path(sys.argv[2] if len(sys.argv) > 2 else "docs/images/training_curves.png")
fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
for log in sorted(runs.glob("*/loss_log.csv")):
    card = MODELS / log.parent.name / "card.json"
    d = np.atleast_1d(np.genfromtxt(log, delimiter=",", names=True))
    if not card.exists() or d.size < 20 or int(d["step"][-1]) != json.loads(card.read_text())["training"]["steps"]:
        continue
    loss = {}
    for s_, l_ in zip(d["step"].astype(int), d["paper_loss"]):
        loss[s_] = l_                                  # the later row of a step logged twice
    step = np.array(sorted(loss))
    w = min(200, max(5, step.size // 20))
    smooth = np.convolve([loss[k] for k in step], np.ones(w) / w, mode="valid")
    ax.plot(step[w - 1:], smooth, label=f"{log.parent.name} ({step[-1]:,} steps)")
ax.set_xlabel("step (batch 8, 96 x 96 patches)")
ax.set_ylabel("l1 + 5 (1 - SSIM)")
ax.set_title("Physics-network training on 2 CPU cores (smoothed)")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
fig.tight_layout()
fig.savefig(out)
print(f"wrote {out}")
