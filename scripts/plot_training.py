"""The learning curves of the bundled models' training runs (out/train/<task>/loss_log.csv):
the papers' loss (l1 + 5 (1 - SSIM), normalised units) against steps, smoothed over 200 steps.

    .venv/bin/python scripts/plot_training.py [RUNS_DIR] [OUT_PNG]
"""
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

runs = Path(sys.argv[1] if len(sys.argv) > 1 else "out/train")
out = Path(sys.argv[2] if len(sys.argv) > 2 else "docs/images/training_curves.png")
fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
for log in sorted(runs.glob("*/loss_log.csv")):
    d = np.genfromtxt(log, delimiter=",", names=True)
    if d.size < 20:
        continue
    w = min(200, max(5, d.size // 20))
    smooth = np.convolve(d["paper_loss"], np.ones(w) / w, mode="valid")
    ax.plot(np.arange(smooth.size) + w, smooth, label=f"{log.parent.name} ({d.size} steps)")
ax.set_xlabel("step (batch 8, 96 x 96 patches)")
ax.set_ylabel("l1 + 5 (1 - SSIM)")
ax.set_title("Physics-network training on 2 CPU cores (smoothed)")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
fig.tight_layout()
fig.savefig(out)
print(f"wrote {out}")
