"""Every setting of an expression fit (`biovae fit`, biovae.expr.fit, biovae.expr.run), with its
default: written once here; the CLI shows each of them. Why each default was chosen is in
biovae.expr.fit's docstring."""

from __future__ import annotations

from dataclasses import dataclass, field

from biovae.settings import Settings


@dataclass
class FitSettings(Settings):
    # data
    labels: str | None = None  # obs column with one label per cell: a conditional VAE
    batch_key: str | None = None  # obs column naming each cell's batch: a batch covariate
    layer: str | None = None  # AnnData layer ('raw' for .raw); None: X
    genes: str | None = None  # fit on these genes: a boolean var column or a file of gene names
    genes_in_rows: bool = False  # CSV/TSV with genes in rows
    input_kind: str = "auto"  # auto (detected), counts, full_length, log_normalised
    backed: bool = False  # read the .h5ad in row chunks, never the whole matrix
    # model
    likelihood: str = "auto"  # chosen on a validation part of the training cells (expr.choose)
    transform: str = "auto"
    latent_dim: int = 10
    hidden: list[int] = field(default_factory=lambda: [256, 128])
    beta: float = 1.0
    dropout: float = 0.1
    norm: str = "batch"
    condition_every_layer: bool = True
    marginal_start: bool = True
    calibrate: bool = True  # hurdle likelihoods: map generated non-zero values onto the training cells' (expr.calibrate)
    # training
    epochs: int = 300  # a maximum: early stopping on the validation loss ends sooner
    batch_size: int = 128
    lr: float = 1e-3
    validation_split: float = 0.1
    patience: int = 30
    warmup_fraction: float = 0.1
    # runtime
    seed: int = 0
    device: str = "cpu"
    progress: bool = True
    devices: int | str = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
