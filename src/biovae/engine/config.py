"""Model and training settings: plain dataclasses, validated once, saved as JSON with the model.

Every hyperparameter lives here with its default; nothing is hidden in the code that uses them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from biovae.engine import conv, likelihoods, networks  # noqa: F401  (conv and networks register themselves)
from biovae.engine.layers import ACTIVATIONS, NORMS
from biovae.engine.registry import network_names
from biovae.errors import BiovaeError, require


@dataclass
class Block:
    """A named run of input columns with its own likelihood and loss weight.

    E.g. binning uses Block("composition", 136, "gaussian", 1.0) + Block("coverage", 16, ...).
    """

    name: str
    size: int
    likelihood: str = "gaussian"
    weight: float = 1.0

    def validate(self) -> None:
        require(self.size >= 1, f"block {self.name!r} has size {self.size}", "a block needs >= 1 column")
        require(self.weight >= 0, f"block {self.name!r} has a negative loss weight {self.weight}")
        likelihoods.get(self.likelihood)


@dataclass
class ModelConfig:
    """The architecture. Shapes: input (n, sum of block sizes); latent (n, latent_dim).

    hidden: encoder layer widths; the decoder mirrors them unless `decoder_hidden` is given.
    conditions: covariate name -> its category names; each is one-hot encoded (or embedded in
      `condition_embedding` dims when > 0) and fed to both encoder and decoder.
    condition_every_layer: feed the condition to every decoder layer and to the output heads,
      not only to the decoder's input (mlp networks). On pbmc68k_reduced (CVAE, 3 splits) this
      raised the share of generated cells that a classifier of the real cells calls the requested
      type from 0.67 to 0.74 (prior samples: 0.23 to 0.35), at the same RF-AUC. Off by default
      here (the engine's layout of earlier model files); biovae.expr.fit turns it on.
    network: "mlp" (dense layers) or "conv" (engine/conv.py: strided convolutions in front of
      the `hidden` dense layers, transposed convolutions after the decoder's). Inputs stay flat
      (n, H * W * C) in both; "conv" reads them as images of `image_shape` (H, W) or (H, W, C),
      row-major, and halves H and W once per entry of `conv_channels` (the encoder's channels).
    """

    blocks: list[Block]
    latent_dim: int = 10
    hidden: list[int] = field(default_factory=lambda: [256, 128])
    decoder_hidden: list[int] | None = None
    activation: str = "relu"
    dropout: float = 0.0
    norm: str = "batch"
    conditions: dict[str, list[str]] = field(default_factory=dict)
    condition_embedding: int = 0
    condition_encoder: bool = True
    condition_every_layer: bool = False
    beta: float = 1.0
    network: str = "mlp"
    image_shape: list[int] | None = None
    conv_channels: list[int] = field(default_factory=lambda: [32, 64, 128])

    @property
    def n_features(self) -> int:
        return sum(b.size for b in self.blocks)

    @property
    def decoder_layers(self) -> list[int]:
        return list(self.decoder_hidden) if self.decoder_hidden is not None else list(reversed(self.hidden))

    def validate(self) -> "ModelConfig":
        require(len(self.blocks) >= 1, "the model needs at least one input block")
        names = [b.name for b in self.blocks]
        require(len(set(names)) == len(names), f"block names repeat: {names}")
        for b in self.blocks:
            b.validate()
        require(
            isinstance(self.latent_dim, int) and self.latent_dim >= 1,
            f"latent_dim must be a whole number >= 1, got {self.latent_dim!r}",
        )
        for h in list(self.hidden) + self.decoder_layers:
            require(isinstance(h, int) and h >= 1, f"hidden layer sizes must be >= 1, got {h!r}")
        require(self.activation in ACTIVATIONS, f"unknown activation {self.activation!r}",
                f"choose one of {', '.join(ACTIVATIONS)}")
        require(self.norm in NORMS, f"unknown norm {self.norm!r}", f"choose one of {', '.join(NORMS)}")
        require(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")
        require(self.beta >= 0, f"beta must be >= 0, got {self.beta}")
        require(self.condition_embedding >= 0, "condition_embedding must be >= 0")
        for name, cats in self.conditions.items():
            require(len(cats) >= 1, f"condition {name!r} has no categories")
            require(len(set(cats)) == len(cats), f"condition {name!r} has repeated categories")
        require(self.network in network_names(), f"unknown network {self.network!r}",
                f"choose one of {', '.join(network_names())}")
        require(not (self.condition_every_layer and self.network != "mlp"),
                "condition_every_layer is for the mlp network", "leave it off for network='conv'")
        for c in self.conv_channels:
            require(isinstance(c, int) and c >= 1, f"conv channel counts must be >= 1, got {c!r}")
        if self.image_shape is not None:
            shape = list(self.image_shape)
            require(len(shape) in (2, 3) and all(isinstance(s, int) and s >= 1 for s in shape),
                    f"image_shape must be (height, width) or (height, width, channels), got {shape}")
            require(int(np.prod(shape)) == self.n_features,
                    f"image_shape {shape} holds {int(np.prod(shape))} values but the input has {self.n_features}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        d["blocks"] = [Block(**b) for b in d["blocks"]]
        try:
            return cls(**d).validate()
        except TypeError as exc:
            raise BiovaeError(f"model config has unexpected fields: {exc}") from None


@dataclass
class TrainConfig:
    """How to fit. Units: epochs are full passes over the training split; lr per Adam step.

    warmup_fraction: beta rises linearly from 0 to its value over this fraction of `epochs`
      (so a short run still reaches full beta); early stopping only counts epochs after it.
    in_memory: 'auto' keeps the data as tensors on the device and slices batches from them when
      they fit (see engine/data.py for the measured speed-up); True/False forces the choice.
    stop_after: end this call after this many epochs in all (a pause: the state is checkpointed
      to checkpoint_dir; fitting again with resume=True goes on to the same weights as one
      uninterrupted run). The beta warm-up and early stopping still count `epochs`.
    """

    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    validation_split: float = 0.1
    patience: int = 10
    min_delta: float = 0.0
    restore_best: bool = True
    warmup_fraction: float = 0.0
    seed: int = 0
    device: str = "cpu"
    devices: int | str = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    in_memory: bool | str = "auto"
    num_workers: int = 0
    checkpoint_dir: str | None = None
    checkpoint_every: int = 1
    stop_after: int | None = None  # end this call after this many epochs in all: a pause, checkpointed
    progress: bool = True
    grad_clip: float | None = None

    def validate(self) -> "TrainConfig":
        require(isinstance(self.epochs, int) and self.epochs >= 1, f"epochs must be >= 1, got {self.epochs!r}")
        require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        require(0 <= self.validation_split < 1, f"validation_split must be in [0, 1), got {self.validation_split}")
        require(self.patience >= 1, f"patience must be >= 1, got {self.patience}")
        require(0 <= self.warmup_fraction <= 1, f"warmup_fraction must be in [0, 1], got {self.warmup_fraction}")
        require(self.device in ("auto", "cpu", "cuda", "gpu", "mps"), f"unknown device {self.device!r}",
                "use auto, cpu or cuda")
        require(self.checkpoint_every >= 1, "checkpoint_every must be >= 1")
        require(self.stop_after is None or (self.stop_after >= 1 and self.checkpoint_dir is not None),
                "stop_after must be >= 1 and needs a checkpoint_dir (fit again with resume=True to go on)")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
