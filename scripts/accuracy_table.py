"""Print the README's accuracy table from the bundled models' cards (held-out simulated subjects).

    .venv/bin/python scripts/accuracy_table.py
"""
from pathlib import Path

from q2mri.models.registry import list_models
from q2mri.models.targets import check

print("| task (model) | what | ours | target | met | seed (real data) |")
print("|---|---|---|---|---|---|")
for card in list_models():
    name = Path(card["path"]).name
    for what, value, target, ok, seed in check(card["task"], card.get("held_out_metrics", {})):
        val = "n/a" if value is None else f"{value:.3g}"
        met = "" if ok is None else ("yes" if ok else "**no**")
        print(f"| {card['task']} ({name}) | {what} | {val} | {target} | {met} | {seed} |")
