"""Bundled models in Resources/Models/<name>/: weights (safetensors), model card, checksum.

card.json holds the task, architecture configuration, inputs and outputs, protocol
ranges, normalisation, training data and command, held-out metrics and the SHA256 of the
weights; loading verifies the checksum, and a mismatch is a clear error.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from typing import TYPE_CHECKING

from ..errors import Q2MRIError

if TYPE_CHECKING:      # torch is imported only to save or load weights: listing models stays light (GUIs)
    from .quantnet import QuantNet

# The checkout's Resources/Models; an installed Slicer extension points Q2MRI_MODELS_DIR at its own copy.
MODELS_DIR = Path(os.environ.get("Q2MRI_MODELS_DIR") or Path(__file__).resolve().parents[3] / "Resources" / "Models")
WEIGHTS = "weights.safetensors"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def list_models(root: Path = MODELS_DIR) -> list[dict]:
    cards = []
    if root.is_dir():
        for d in sorted(root.iterdir()):
            if (d / "card.json").exists():
                card = json.loads((d / "card.json").read_text())
                card["path"] = str(d)
                cards.append(card)
    return cards


def find_model(name_or_path: str | None, task: str, root: Path = MODELS_DIR) -> Path:
    """A model folder: an explicit path, a bundled name, or the bundled default for the task."""
    if name_or_path:
        p = Path(name_or_path)
        if (p / "card.json").exists():
            return p
        if (root / name_or_path / "card.json").exists():
            return root / name_or_path
        raise Q2MRIError(f"no model {name_or_path!r}: give a bundled name from 'q2mri models' or a folder with card.json")
    for card in list_models(root):
        if card.get("task") == task and card.get("default", True):
            return Path(card["path"])
    raise Q2MRIError(f"no bundled model for task {task} yet; train one with 'q2mri train --task {task}' and pass --model DIR")


def save_model(net: "QuantNet", folder: Path, card: dict) -> Path:
    from safetensors.torch import save_file
    folder.mkdir(parents=True, exist_ok=True)
    w = folder / WEIGHTS
    save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(w))
    card = dict(card)
    card["config"] = net.cfg.as_dict()
    card["weights"] = WEIGHTS
    card["sha256"] = sha256(w)
    card["size_mb"] = round(w.stat().st_size / 1e6, 2)
    (folder / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return folder


def build_model(cfg):
    """The network a configuration describes: the physics networks (arch "physics") or QuantNet."""
    from .quantnet import QuantNet
    if cfg.arch == "physics":
        from .physicsnet import PhysicsNet
        return PhysicsNet(cfg)
    return QuantNet(cfg)


def load_model(folder: Path, device="cpu") -> tuple["QuantNet", dict]:
    from safetensors.torch import load_file

    from .quantnet import ModelConfig, QuantNet
    card = json.loads((folder / "card.json").read_text())
    w = folder / card.get("weights", WEIGHTS)
    if not w.exists():
        raise Q2MRIError(f"model {folder} lacks its weights file {w.name}")
    digest = sha256(w)
    if digest != card.get("sha256"):
        raise Q2MRIError(f"model {folder}: the weights' SHA256 {digest[:12]}... does not match the card's "
                         f"{str(card.get('sha256'))[:12]}...; the file is corrupt or was replaced, restore it")
    cfg = ModelConfig(**card["config"])
    net = build_model(cfg)
    net.load_state_dict(load_file(str(w)))
    return net.to(device).eval(), card
