"""Every binning hyperparameter, with its default and why. The CLI shows each of them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from biovae.errors import require


@dataclass
class BinSettings:
    # features
    k: int = 4  # composition k-mer size (3..6); 4 gives 136 canonical tetramers
    cov_k: int = 15  # reads mode: k-mer size of the alignment-free coverage (LRBinner's 15)
    cov_bins: int = 16  # coverage histogram bins ...
    cov_width: int = 16  # ... of this many counts each (the last bin takes the rest), with cov_scale linear
    # log: bins widen geometrically from count 1 to 128 (features/coverage.py: bin_edges); chosen on
    # the development sets, where linear bins of width 16 put almost every read's k-mers in bin 0
    cov_scale: str = "log"
    min_length: int = 1000  # shorter sequences are reported unbinned, not dropped
    # model
    latent_dim: int = 8
    hidden: list[int] = field(default_factory=lambda: [256, 128])
    beta: float = 0.5  # KL weight: below 1 keeps genome clusters tight in the latent
    composition_weight: float = 1.0
    # reads: the coverage block's weight (None: 1.0). contigs: the abundance block's (None: VAMB's share,
    # see abundance_weight; chosen on the development contig set, docs/binning.md "Contigs")
    coverage_weight: float | None = None
    # training
    epochs: int = 60
    batch_size: int = 256
    lr: float = 1e-3
    patience: int = 8
    validation_split: float = 0.1
    train_sample: int = 100_000  # train on a seeded sample of at most this many sequences (caps cost)
    # clustering (None: chosen from the data size, see bin/cluster.py)
    min_cluster_size: int | None = None
    min_samples: int | None = None
    fit_sample: int = 50_000
    # leftovers join a bin within its radius: None derives it from the fitted sample (bin/cluster.py);
    # a number is the earlier rule, this many times the bin's 99% kNN radius (5.0 before)
    assign_radius: float | None = None
    # latent_umap.png: pca by default (umap-learn compiles with numba on every run: tens of seconds of
    # the write stage, docs/binning.md), umap on request, or none
    plot: str = "pca"
    cluster_selection: str = "leaf"  # HDBSCAN selection: leaf keeps touching genomes apart, eom merges
    # reads: join bins whose reads share a genome's k-mers (one small genome cut by technology or
    # region; bin/overlap.py, chosen on the development sets)
    join_shared: bool = True
    # runtime
    seed: int = 1
    threads: int = 0
    # torch threads while training: the binning network is small, and one thread beat two on
    # 2 cores (9,000 x 152 features: 0.39 vs 0.62 s per epoch; 3x slower with two under load)
    train_threads: int = 1
    device: str = "cpu"
    progress: bool = True
    # per-bin completeness / contamination from single-copy marker genes (bin/quality.py):
    # auto = contigs only, on = also reads, off; markers = the HMM file (None: looked up)
    quality: str = "auto"
    markers: str | None = None
    marker_refine: bool = True  # split / merge bins where the markers say so (bin/marker_refine.py)

    def validate(self) -> "BinSettings":
        require(3 <= self.k <= 6, f"--k must be from 3 to 6, got {self.k}")
        require(self.min_length >= 0, f"--min-length must be >= 0, got {self.min_length}")
        require(self.latent_dim >= 1, f"--latent-dim must be >= 1, got {self.latent_dim}")
        require(self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}")
        require(self.batch_size >= 2, f"--batch-size must be >= 2, got {self.batch_size}")
        require(self.composition_weight >= 0 and (self.coverage_weight is None or self.coverage_weight >= 0),
                "loss weights must be >= 0")
        require(self.train_sample >= 100, f"--train-sample must be >= 100, got {self.train_sample}")
        require(self.train_threads >= 0, f"--train-threads must be >= 0, got {self.train_threads}")
        require(self.assign_radius is None or self.assign_radius > 0,
                f"--assign-radius must be > 0, got {self.assign_radius}")
        require(self.cov_scale in ("linear", "log"), f"--cov-scale must be linear or log, got {self.cov_scale!r}")
        require(self.plot in ("umap", "pca", "none"), f"--plot must be umap, pca or none, got {self.plot!r}")
        require(self.cluster_selection in ("leaf", "eom"),
                f"--cluster-selection must be leaf or eom, got {self.cluster_selection!r}")
        require(self.quality in ("auto", "on", "off"), f"--quality must be auto, on or off, got {self.quality!r}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def feature_key(self) -> dict:
        """The settings that decide the features (a cached feature file is reused only when equal)."""
        return {k: getattr(self, k) for k in ("k", "cov_k", "cov_bins", "cov_width", "cov_scale")}


VAMB_ALPHA = 0.15  # VAMB's share of the loss for composition (TNF); abundance gets the rest


def abundance_weight(n_composition: int, n_abundance: int) -> float:
    """Default per-column weight of the contig abundance block. The Gaussian losses sum over columns,
    so with equal weights 136 tetramer columns outweigh 3-4 abundance columns 30 to 1. As in VAMB,
    the abundance block as a whole gets (1 - alpha) / alpha = 5.7 times the composition block's
    weight: per column 5.7 x n_composition / n_abundance. On the development contig set (3 samples)
    weight 1 gave count F1 0.932 / ARI 0.824, this rule (193) 0.995 / 0.986 (docs/binning.md)."""
    return (1 - VAMB_ALPHA) / VAMB_ALPHA * n_composition / max(1, n_abundance)

