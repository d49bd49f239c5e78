"""Model files: a folder with weights in safetensors and everything else in JSON. No pickle.

    MODEL/model.safetensors   network weights ("module.*") and numeric preprocessing state ("state.*")
    MODEL/config.json         format version, biovae version, model config, training config,
                              workflow metadata, the SHA-256 of model.safetensors and of
                              history.json, and config_sha256: the SHA-256 of config.json itself
                              (canonical JSON, without the *_sha256 fields)
    MODEL/history.json        per-epoch training history

Loading refuses, with a message saying what to do: a missing folder or file, a newer format, a
config.json that is not JSON, was edited after saving (its own checksum differs) or holds settings
that cannot describe a model, a weights or history file that is truncated, damaged or differs from
its recorded checksum (edited or swapped), and tensors whose names or shapes do not fit the
recorded architecture. Folders written before config_sha256 / history_sha256 existed still load;
only the checks whose checksums are recorded are made.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from biovae.version import __version__
from biovae.engine.config import ModelConfig, TrainConfig
from biovae.errors import BiovaeError
from biovae.io.atomic import atomic_dir

FORMAT = "biovae-model"
FORMAT_VERSION = 1
WEIGHTS, CONFIG, HISTORY = "model.safetensors", "config.json", "history.json"


_SUMS = ("weights_sha256", "history_sha256", "config_sha256")


def config_checksum(doc: dict) -> str:
    """SHA-256 of a config document in canonical JSON, leaving out the checksum fields."""
    body = {k: v for k, v in doc.items() if k not in _SUMS}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write(folder, *, weights: dict[str, torch.Tensor], state: dict[str, np.ndarray], config: dict,
          history: list[dict], summary: dict | None = None, extras: dict[str, str] | None = None,
          force: bool = False) -> Path:
    """Write a model folder atomically (the old folder stays until the new one is complete);
    `summary`, when given, goes to summary.json inside it; `extras` maps more file names (e.g.
    report.html) to their text, written in the same atomic step. An existing folder that biovae
    did not write is refused unless `force` (see biovae.io.atomic.atomic_dir)."""
    tensors = {f"module.{k}": v.detach().cpu().contiguous() for k, v in weights.items()}
    tensors.update({f"state.{k}": torch.as_tensor(np.ascontiguousarray(v)) for k, v in state.items()})
    folder = Path(folder)
    with atomic_dir(folder, force=force) as tmp:
        # one metadata key: safetensors writes a map of several in a random order, and the same
        # fit must give the same bytes (config.json holds the format version that readers check)
        save_file(tensors, str(tmp / WEIGHTS), metadata={"format": f"{FORMAT} {FORMAT_VERSION}"})
        (tmp / HISTORY).write_text(json.dumps(history, indent=1) + "\n")
        doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "biovae_version": __version__, **config}
        doc = json.loads(json.dumps(doc))  # the checksum is of what a reader will see
        doc.update(weights_sha256=sha256(tmp / WEIGHTS), history_sha256=sha256(tmp / HISTORY),
                   config_sha256=config_checksum(doc))
        (tmp / CONFIG).write_text(json.dumps(doc, indent=2) + "\n")
        if summary is not None:
            (tmp / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        for name, text in (extras or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
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
    doc = _read_json(cpath, "model file")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BiovaeError(f"{cpath} is not a biovae model file", "give a folder written by biovae fit/save")
    version = doc.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise BiovaeError(
            f"model {folder} uses file format {version!r}, made by biovae {doc.get('biovae_version')}; "
            f"this biovae {__version__} reads format <= {FORMAT_VERSION}",
            "upgrade biovae to load it",
        )
    if "config_sha256" in doc and doc["config_sha256"] != config_checksum(doc):
        raise BiovaeError(f"{cpath} was edited after the model was saved (its checksum differs)",
                          "restore the original file, or change settings through biovae and save again")
    _check_settings(doc, cpath)
    if sha256(wpath) != doc.get("weights_sha256"):
        raise BiovaeError(f"{wpath} does not match the checksum recorded in {cpath}{_damage(wpath)}: "
                          "it was truncated, damaged, changed or swapped",
                          "restore the original model folder or fit again")
    try:
        tensors = load_file(str(wpath))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise BiovaeError(f"{wpath} is damaged ({exc})", "restore it or fit the model again") from None
    weights = {k[7:]: v for k, v in tensors.items() if k.startswith("module.")}
    state = {k[6:]: v.numpy() for k, v in tensors.items() if k.startswith("state.")}
    hpath = folder / HISTORY
    history: list = []
    if hpath.is_file():
        if "history_sha256" in doc and sha256(hpath) != doc["history_sha256"]:
            raise BiovaeError(f"{hpath} does not match the checksum recorded in {cpath}: it was truncated, "
                              "edited or swapped", "restore the original model folder or fit again")
        history = _read_json(hpath, "training history")
        if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
            raise BiovaeError(f"{hpath} is not a list of per-epoch records", "restore it or fit the model again")
    elif "history_sha256" in doc:
        raise BiovaeError(f"model file {hpath} is missing", "the model folder is incomplete; fit or save it again")
    return doc, weights, state, history


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise BiovaeError(f"{what} {path} is not valid JSON ({exc})", "restore it or fit the model again") from None


def _check_settings(doc: dict, cpath: Path) -> None:
    """Refuse model / training settings that cannot describe a model (a damaged or hand-written
    config.json without a checksum), naming the problem, before anything is built from them."""
    try:
        model = doc["model"]
        if not isinstance(model, dict) or not isinstance(model.get("blocks"), list):
            raise ValueError("'model' must hold the architecture with its list of input blocks")
        if not all(isinstance(b, dict) for b in model["blocks"]):
            raise ValueError("each input block must be a JSON object")
        ModelConfig.from_dict(model)
        train = doc.get("train")
        if train is not None:
            if not isinstance(train, dict):
                raise ValueError("'train' must be a JSON object")
            TrainConfig(**train).validate()
        if not isinstance(doc.get("metadata") or {}, dict):
            raise ValueError("'metadata' must be a JSON object")
    except BiovaeError as exc:
        raise BiovaeError(f"{cpath} holds settings that cannot describe a model: {exc.message}",
                          "restore the original file or fit the model again") from None
    except Exception as exc:  # noqa: BLE001 - any malformed value (wrong type, key, shape)
        raise BiovaeError(f"{cpath} holds settings that cannot describe a model ({type(exc).__name__}: {exc})",
                          "restore the original file or fit the model again") from None


def _damage(path: Path) -> str:
    """A few words on what is wrong with a safetensors file whose checksum differs: whether its
    header still parses and its length is the one the header implies (a truncated file)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            if size < 8 or n > size - 8:
                return " (it is shorter than its own header says)"
            header = json.loads(fh.read(n))
        ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
        expected = 8 + n + max(ends, default=0)
        if size != expected:
            return f" (it has {size} bytes where its header implies {expected})"
        return ""
    except (OSError, ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError):
        return " (its header is unreadable)"


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
