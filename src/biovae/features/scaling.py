"""Feature scaling: safe per-column standardisation and VAMB's abundance normalisation.

Standardisation never divides by zero: a column with zero variance (for example a coverage
histogram bin that no read reaches, which made LRBinner divide by zero and lose reads) becomes
all zeros instead of NaN.

VAMB's normalisation (vamb 5, `vamb.encode.make_dataloader`; read from its source):
  1. per sample: scale each abundance column to sum to 1,000,000 (a sample whose column is all
     zero cannot be scaled and is an error);
  2. total abundance of a contig = the sum of its row after step 1;
  3. per contig: divide the row by that total, so the sample abundances are relative and sum
     to 1 (a contig with total 0 gets 1 / n_samples in every sample);
  4. the total becomes an extra feature: log(max(total, 0.001)), then z-scored over contigs;
  5. the composition (TNF) is z-scored per column, zero-variance columns left at 0.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from biovae.errors import BiovaeError


class Standardized(NamedTuple):
    """values: float32 (n, d) standardised; mean, scale: float32 (d,) used (scale 1 where a
    column had zero variance), so new rows can be mapped with apply_standardize."""

    values: np.ndarray
    mean: np.ndarray
    scale: np.ndarray


class VambAbundance(NamedTuple):
    """relative: float32 (n_contigs, n_samples), rows sum to 1.
    log_total: float32 (n_contigs, 1), z-scored log total abundance (0 if all totals equal)."""

    relative: np.ndarray
    log_total: np.ndarray


def standardize(x: np.ndarray, min_scale: float = 1e-8, chunk: int = 65_536) -> Standardized:
    """Z-score each column of x (n, d): (x - mean) / std over rows, std as in numpy (ddof=0).

    Columns whose std is below `min_scale` (constant, e.g. an all-zero histogram bin) are
    centred but not divided, so they come out as exact zeros. Statistics are summed in float64
    over row chunks (two passes: mean, then squared deviations) and the float32 result is filled
    chunk by chunk, so memory stays at the output plus one chunk: a whole float64 copy of
    10^6 x 152 features and its temporaries cost about 5 GiB.
    """
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0:
        raise BiovaeError(f"standardize needs a non-empty 2-D matrix, got shape {x.shape}")
    n, d = x.shape
    total = np.zeros(d)
    for i in range(0, n, chunk):
        part = x[i:i + chunk].astype(np.float64)
        if not np.isfinite(part).all():
            raise BiovaeError("feature matrix holds NaN or infinite values", "check the input features")
        total += part.sum(axis=0)
    mean = total / n
    squares = np.zeros(d)
    for i in range(0, n, chunk):
        squares += ((x[i:i + chunk].astype(np.float64) - mean) ** 2).sum(axis=0)
    scale = np.sqrt(squares / n)
    scale[scale < min_scale] = 1.0
    values = np.empty((n, d), dtype=np.float32)
    for i in range(0, n, chunk):
        values[i:i + chunk] = (x[i:i + chunk].astype(np.float64) - mean) / scale
    return Standardized(values, mean.astype(np.float32), scale.astype(np.float32))


def apply_standardize(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Map new rows x (m, d) with a mean and scale from standardize(); returns float32 (m, d)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(mean):
        raise BiovaeError(f"expected a matrix with {len(mean)} columns, got shape {x.shape}")
    return ((x - mean) / scale).astype(np.float32)


def vamb_abundance(abundance: np.ndarray, samples: Sequence[str] | None = None) -> VambAbundance:
    """VAMB's normalisation of a raw abundance matrix (steps 1-4 of the module docstring).

    abundance: (n_contigs, n_samples) non-negative depths (e.g. mean read depth per contig).
    samples: sample names, used to name a sample with zero total abundance in the error.
    """
    a = np.array(abundance, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise BiovaeError(f"abundance matrix must be 2-D with at least one contig and one sample, got shape {a.shape}")
    if not np.isfinite(a).all() or (a < 0).any():
        raise BiovaeError("abundance matrix holds negative, NaN or infinite values", "abundances are non-negative depths")
    per_sample = a.sum(axis=0)
    empty = np.flatnonzero(per_sample == 0)
    if len(empty):
        name = samples[empty[0]] if samples is not None else f"column {empty[0] + 1}"
        raise BiovaeError(f"sample {name!r} has zero abundance in every contig, so it cannot be normalised", "drop that sample's column from the abundance TSV")
    a *= 1_000_000 / per_sample
    total = a.sum(axis=1)
    zero = total == 0
    a[zero] = 1.0 / a.shape[1]
    a[~zero] /= total[~zero, None]
    log_total = np.log(np.maximum(total, 0.001))[:, None]
    return VambAbundance(a.astype(np.float32), standardize(log_total).values)
