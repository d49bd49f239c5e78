"""Model files: a folder with weights in safetensors and everything else in JSON. No pickle.

    MODEL/model.safetensors   network weights ("module.*") and numeric preprocessing state ("state.*")
    MODEL/config.json         format version, biovae version, model config, training config,
                              workflow metadata, and the SHA-256 of model.safetensors
    MODEL/history.json        per-epoch training history

Loading refuses, with a message saying what to do: a missing folder or file, a newer format, a
weights file whose checksum differs from the one recorded (edited or swapped), and tensors whose
names or shapes do not fit the recorded architecture.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from biovae import __version__
from biovae.errors import BiovaeError
from biovae.io.atomic import atomic_dir

FORMAT = "biovae-model"
FORMAT_VERSION = 1
WEIGHTS, CONFIG, HISTORY = "model.safetensors", "config.json", "history.json"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write(folder, *, weights: dict[str, torch.Tensor], state: dict[str, np.ndarray], config: dict,
          history: list[dict], summary: dict | None = None) -> Path:
    """Write a model folder atomically (the old folder stays until the new one is complete);
    `summary`, when given, goes to summary.json inside it."""
    tensors = {f"module.{k}": v.detach().cpu().contiguous() for k, v in weights.items()}
    tensors.update({f"state.{k}": torch.as_tensor(np.ascontiguousarray(v)) for k, v in state.items()})
    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        save_file(tensors, str(tmp / WEIGHTS), metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
        doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "biovae_version": __version__,
               **config, "weights_sha256": sha256(tmp / WEIGHTS)}
        (tmp / CONFIG).write_text(json.dumps(doc, indent=2) + "\n")
        (tmp / HISTORY).write_text(json.dumps(history, indent=1) + "\n")
        if summary is not None:
            (tmp / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return folder


def read(folder) -> tuple[dict, dict[str, torch.Tensor], dict[str, np.ndarray], list[dict]]:
    """Read a model folder: (config document, module weights, preprocessing state, history)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BiovaeError(f"model folder {folder} does not exist", "give the folder written by fit/save")
    cpath, wpath = folder / CONFIG, folder / WEIGHTS
    for p in (cpath, wpath):
        if not p.is_file():
            raise BiovaeError(f"model file {p} is missing", "the model folder is incomplete; fit or save it again")
    try:
        doc = json.loads(cpath.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise BiovaeError(f"model file {cpath} is not valid JSON ({exc})", "restore it or fit the model again") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BiovaeError(f"{cpath} is not a biovae model file", "give a folder written by biovae fit/save")
    version = doc.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise BiovaeError(
            f"model {folder} uses file format {version!r}, made by biovae {doc.get('biovae_version')}; "
            f"this biovae {__version__} reads format <= {FORMAT_VERSION}",
            "upgrade biovae to load it",
        )
    if sha256(wpath) != doc.get("weights_sha256"):
        raise BiovaeError(f"{wpath} does not match the checksum recorded in {cpath}: it was changed or swapped",
                          "restore the original model folder or fit again")
    try:
        tensors = load_file(str(wpath))
    except (SafetensorError, OSError) as exc:
        raise BiovaeError(f"{wpath} is damaged ({exc})", "restore it or fit the model again") from None
    weights = {k[7:]: v for k, v in tensors.items() if k.startswith("module.")}
    state = {k[6:]: v.numpy() for k, v in tensors.items() if k.startswith("state.")}
    hpath = folder / HISTORY
    history = json.loads(hpath.read_text()) if hpath.is_file() else []
    return doc, weights, state, history


def load_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor], where) -> None:
    """Load weights into `module`, refusing missing, extra or mis-shaped tensors."""
    own = module.state_dict()
    missing = sorted(set(own) - set(weights))
    extra = sorted(set(weights) - set(own))
    shaped = [k for k in own if k in weights and tuple(own[k].shape) != tuple(weights[k].shape)]
    if missing or extra or shaped:
        what = (f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}" if extra
                else f"shape of {shaped[0]} is {tuple(weights[shaped[0]].shape)}, expected {tuple(own[shaped[0]].shape)}")
        raise BiovaeError(f"the weights in {where} do not fit its config ({what})",
                          "the folder mixes files of different models; fit or save it again")
    module.load_state_dict(weights)
