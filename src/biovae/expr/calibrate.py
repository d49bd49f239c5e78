"""Per-gene calibration of generated non-zero values (hurdle likelihoods), fitted on the training
cells.

A hurdle model decides per cell and gene whether the gene is detected and, if so, draws its value
from a Normal on the model's scale (scaled log1p values). The Normal is symmetric, while a
gene's real non-zero values are not: they are skewed and, for counts, sit on a lattice. After
exp-type back-transforms the symmetric tail shows up as too large values (on pbmc68k_counts the
generated cells' largest count was larger than the held-out cells' in most cells, median 55.5
against 51, forest AUC 0.62 on that one number; docs/generation.md).

The calibration maps each generated non-zero value of a gene through a quantile map: its rank
among the model's own non-zero draws of that gene (a reference sample of REFERENCE_CELLS cells
per label, drawn with the "mixture" sampler when the model is fitted) is sent to the value of
the same rank among the training cells' non-zero values of that gene and label. The zeros (which
genes a cell detects), the cell's latent point and so the correlation between genes (the ranks)
are the model's; only each gene's non-zero marginal is put onto the training cells' one, and
values never leave the training cells' range for that label. Genes with fewer than MIN_NONZERO
non-zero training values in a label are left as drawn. Each map is QUANTILES quantiles of both
sides (linear in between), stored with the model as a typed state record (engine.state).

Full-length values (transform "log1p": TPM, FPKM) have no library size in the model: a cell's
total is whatever its genes add up to, and TPM-like cells all sum to about the same. So for them
each generated cell is also scaled, as a whole, to the total of the same rank among the training
cells' totals (the reference sample's totals give the rank). The cell's composition, which is
what the realism forest reads (library-normalised values), is unchanged; the per-gene cap of the
preprocessing applies after it.

How much it helps was measured on the development sets (docs/generation.md, "calibrate").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from biovae.engine import state

QUANTILES = 51  # quantile levels per gene and label (0, 2 %, .., 100 %)
REFERENCE_CELLS = 2000  # the model's own draws per label that the map starts from
MIN_NONZERO = 10  # fewer non-zero training values of a gene in a label: no map for it


@dataclass
class MarginalMaps(state.Record):
    """Per label index: quantiles (genes, QUANTILES) of the model's non-zero draws ("generated")
    and of the training cells' non-zero values ("training"), float32; NaN rows: no map."""

    namespace: ClassVar[str] = "calibration"
    generated: list[np.ndarray] = field(default_factory=list)
    training: list[np.ndarray] = field(default_factory=list)
    totals: list[np.ndarray] = field(default_factory=list)  # full-length: (2, QUANTILES) generated / training totals

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for i, (g, t) in enumerate(zip(self.generated, self.training)):
            out.update({f"{i}.generated": g, f"{i}.training": t})
        out.update({f"{i}.totals": t for i, t in enumerate(self.totals)})
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "MarginalMaps":
        count = 1 + max(int(k.split(".")[0]) for k in arrays)
        totals = [arrays[f"{i}.totals"] for i in range(count)] if "0.totals" in arrays else []
        return cls([arrays[f"{i}.generated"] for i in range(count)], [arrays[f"{i}.training"] for i in range(count)],
                   totals)


def quantile_table(y: np.ndarray) -> np.ndarray:
    """(genes, QUANTILES) float32 quantiles of each gene's non-zero values in y (cells, genes);
    NaN where a gene has fewer than MIN_NONZERO of them."""
    levels = np.linspace(0.0, 1.0, QUANTILES)
    out = np.full((y.shape[1], QUANTILES), np.nan, dtype=np.float32)
    for g in range(y.shape[1]):
        v = y[:, g]
        v = v[v != 0]
        if len(v) >= MIN_NONZERO:
            out[g] = np.quantile(v.astype(np.float64), levels)
    return out


def present(model) -> bool:
    """Whether `model` holds calibration maps (its generated cells are calibrated)."""
    return state.get(model.vae.state, MarginalMaps) is not None


def rescales_totals(model) -> bool:
    """Whether generated cells of `model` are scaled to training totals (full-length values)."""
    return model.pre.transform == "log1p"


def fit(model, y: np.ndarray, labels: np.ndarray | None, library: np.ndarray, seed: int) -> None:
    """Store the maps of `model` (an ExpressionModel with its samplers fitted) in its state:
    y are the model-scale training cells (n, genes), labels (n,) str or None, library their
    input-scale totals (n,)."""
    rng = np.random.default_rng([seed, 20])
    record = MarginalMaps()
    levels = np.linspace(0.0, 1.0, QUANTILES)
    groups = [None] if labels is None else list(model.labels)
    for lab in groups:
        rows = np.arange(len(y)) if lab is None else np.flatnonzero(labels == lab)
        reference = model.decode_draws(lab, REFERENCE_CELLS, rng)
        generated, training = quantile_table(reference), quantile_table(np.asarray(y[rows]))
        training[np.isnan(generated[:, 0])] = np.nan
        record.generated.append(generated)
        record.training.append(training)
        if rescales_totals(model):
            totals = model.pre.inverse(_mapped(reference, generated, training)).sum(axis=1, dtype=np.float64)
            record.totals.append(np.stack([np.quantile(totals, levels), np.quantile(library[rows], levels)]))
    state.put(model.vae.state, record)


def _mapped(y: np.ndarray, generated: np.ndarray, training: np.ndarray) -> np.ndarray:
    out = np.array(y, dtype=np.float32, copy=True)
    for g in np.flatnonzero(~np.isnan(training[:, 0])):
        detected = out[:, g] != 0
        out[detected, g] = np.interp(out[detected, g], generated[g], training[g])
    return out


def _index(model, label: str | None) -> int:
    return 0 if label is None else model.labels.index(label)


def apply(model, label: str | None, y: np.ndarray) -> np.ndarray:
    """Decoded model-scale cells y (n, genes) of `label` with each gene's non-zero values mapped
    onto the training cells' (a copy); y itself when the model holds no maps."""
    record = state.get(model.vae.state, MarginalMaps)
    if record is None:
        return y
    i = _index(model, label)
    return _mapped(y, record.generated[i], record.training[i])


def scale_totals(model, label: str | None, x: np.ndarray) -> np.ndarray:
    """Generated input-scale cells x (n, genes) of `label`, each scaled to the training total of
    its rank (full-length models holding maps; others: x unchanged), then capped per gene."""
    record = state.get(model.vae.state, MarginalMaps)
    if record is None or not record.totals or not rescales_totals(model):
        return x
    generated, training = record.totals[_index(model, label)]
    total = x.sum(axis=1, dtype=np.float64)
    factor = np.where(total > 0, np.interp(total, generated, training) / np.maximum(total, 1e-300), 1.0)
    out = x * factor[:, None]
    if model.pre.gene_max is not None:
        out = np.minimum(out, model.pre.gene_max)
    return out.astype(np.float32)
