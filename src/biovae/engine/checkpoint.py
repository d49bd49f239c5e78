"""Training checkpoints: one safetensors file holding weights, optimizer moments, the best weights
so far and the random-number state, with the loop's bookkeeping as JSON in its metadata.

One file, renamed into place, so a process killed at any instant leaves either the previous
checkpoint or the new one - never a mix. No pickle: tensors go through safetensors, the rest JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from biovae.errors import BiovaeError
from biovae.io.atomic import atomic_file

FILE = "checkpoint.safetensors"


def _flat(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in state.items()}


def _unflat(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def save(folder: str | Path, *, model: dict, optimizer: dict, best: dict | None, loop: dict) -> None:
    """Write a checkpoint. model/best: state dicts; optimizer: torch optimizer state dict; loop:
    JSON-able bookkeeping (epoch, history, early-stopping state, fingerprints)."""
    tensors = _flat("model", model)
    if best is not None:
        tensors.update(_flat("best", best))
    moments = {}
    for pid, st in optimizer["state"].items():
        for key, val in st.items():
            moments[f"{pid}.{key}"] = val if torch.is_tensor(val) else torch.tensor(val)
    tensors.update(_flat("optim", moments))
    tensors["rng.cpu"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    meta = {"loop": json.dumps(loop), "param_groups": json.dumps(optimizer["param_groups"])}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_file(folder / FILE) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load(folder: str | Path) -> dict | None:
    """Read a checkpoint written by `save`; None when there is none. Returns model, best,
    optimizer (a state dict), loop, and restores nothing by itself (see restore_rng)."""
    path = Path(folder) / FILE
    if not path.exists():
        return None
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        loop = json.loads(meta["loop"])
        groups = json.loads(meta["param_groups"])
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise BiovaeError(f"checkpoint {path} is damaged ({exc})", "delete it to start training afresh") from None
    state: dict[int, dict] = {}
    for key, val in _unflat("optim", tensors).items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = val
    best = _unflat("best", tensors)
    return {
        "model": _unflat("model", tensors),
        "best": best or None,
        "optimizer": {"state": state, "param_groups": groups},
        "loop": loop,
        "rng": {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")},
    }


def restore_rng(rng: dict[str, torch.Tensor]) -> None:
    """Put back the random-number state saved with a checkpoint."""
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])
