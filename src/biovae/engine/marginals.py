"""Per-feature marginal statistics of training data, for starting a decoder at the marginals
(Likelihood.start, VAE.start_at_marginals)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from biovae.engine import data


@dataclass(frozen=True)
class Marginals:
    """Per feature (each (n_features,) float64): mean and standard deviation of the non-zero
    values, and the fraction of zeros. A feature with no non-zero value has mean 0 and sd 1; one
    with a single non-zero value sd 1."""

    nonzero_mean: np.ndarray
    nonzero_sd: np.ndarray
    zero_fraction: np.ndarray

    def columns(self, a: int, b: int) -> "Marginals":
        return Marginals(self.nonzero_mean[a:b], self.nonzero_sd[a:b], self.zero_fraction[a:b])


def marginals(x) -> Marginals:
    """Marginals of x (n, n_features): dense, CSR or data.ChunkedRows, read in row blocks (so a
    backed file is never held whole)."""
    n, count, total, squares = 0, 0.0, 0.0, 0.0
    for _, rows in data.row_blocks(x, data.eval_rows(x.shape[1])):
        rows = (rows.toarray() if sp.issparse(rows) else np.asarray(rows)).astype(np.float64)
        n += len(rows)
        count = count + (rows != 0).sum(0)
        total = total + rows.sum(0)
        squares = squares + (rows * rows).sum(0)
    count = np.asarray(count, dtype=np.float64)
    mean = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    var = np.where(count > 1, (squares - count * mean * mean) / np.maximum(count - 1, 1), 1.0)
    return Marginals(mean, np.sqrt(np.maximum(var, 1e-6)), 1.0 - count / max(n, 1))
