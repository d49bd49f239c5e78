"""Expression preprocessing that matches the likelihood, fitted on training cells and inverted on output.

Count likelihoods (nb, zinb, poisson) see raw counts; the library size enters the likelihood.
Gaussian-type likelihoods see   scale(log1p(normalise(x)))   where each step is chosen by
`transform` and fitted on the training cells only:

  transform="auto"  raw integer counts -> "normalize_log1p"; non-negative values on a linear
                    scale (max > 30, e.g. FPKM/TPM) -> "log1p"; anything else (already log) -> "none"
  "normalize_log1p" each cell to `target_sum` counts, then log1p
  "log1p"           log1p only
  "none"            as given
then every gene is centred and divided by its standard deviation (floored, so constant genes
stay finite). Bernoulli data are instead min-max scaled to [0, 1] per gene, and hurdle data are
only divided by the standard deviation, so that zeros stay exact zeros.

The inverse brings decoded values back to the input's scale (negative values clipped to 0, as
expression is non-negative); after "normalize_log1p" it multiplies by a library size per cell.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse as sp

from biovae.engine import likelihoods
from biovae.errors import BiovaeError

TRANSFORMS = ("auto", "normalize_log1p", "log1p", "none")


def _dense(x) -> np.ndarray:
    return x.toarray() if sp.issparse(x) else np.asarray(x)


@dataclass
class Preprocessor:
    """Fitted state. Arrays (per gene) are kept in `center`/`scale`; everything else is JSON."""

    likelihood: str
    transform: str = "auto"
    target_sum: float = 1e4
    center: np.ndarray = field(default=None, repr=False)
    scale: np.ndarray = field(default=None, repr=False)

    @property
    def counts(self) -> bool:
        return likelihoods.get(self.likelihood).counts

    # -- fitting -------------------------------------------------------------------------------
    def fit(self, x) -> "Preprocessor":
        """Choose the transform (if auto) and fit per-gene scaling on training cells x (n, genes)."""
        if self.transform not in TRANSFORMS:
            raise BiovaeError(f"unknown transform {self.transform!r}", f"choose one of {', '.join(TRANSFORMS)}")
        if self.counts:
            self.transform = "none"
            return self
        if self.transform == "auto":
            values = x.data if sp.issparse(x) else np.asarray(x)
            integer = bool(np.all(np.abs(values - np.round(values)) < 1e-6))
            self.transform = "normalize_log1p" if integer else "log1p" if values.max() > 30 else "none"
        y = self._forward(x)
        if self.likelihood == "bernoulli":
            self.center, self.scale = y.min(0), np.maximum(y.max(0) - y.min(0), 1e-6)
        elif self.likelihood == "hurdle":  # scale only, so that zeros stay exact zeros
            self.center, self.scale = np.zeros(y.shape[1]), np.maximum(y.std(0), 1e-3)
        else:
            self.center, self.scale = y.mean(0), np.maximum(y.std(0), 1e-3)
        return self

    def _forward(self, x) -> np.ndarray:
        y = _dense(x).astype(np.float64)
        if self.transform == "normalize_log1p":
            y = y / np.maximum(y.sum(1, keepdims=True), 1.0) * self.target_sum
        if self.transform in ("normalize_log1p", "log1p"):
            y = np.log1p(y)
        return y

    # -- both directions -----------------------------------------------------------------------
    def transform_data(self, x) -> np.ndarray:
        """Input scale -> model scale, (n, genes) float32 (counts pass through unchanged)."""
        if self.counts:
            return _dense(x).astype(np.float32)
        y = (self._forward(x) - self.center) / self.scale
        if self.likelihood == "bernoulli":
            y = np.clip(y, 0.0, 1.0)
        return y.astype(np.float32)

    def inverse(self, y: np.ndarray, library: np.ndarray | None = None) -> np.ndarray:
        """Model scale -> input scale. library: per-cell totals (n,) used after normalize_log1p."""
        if self.counts:
            return y.astype(np.float32)
        v = y.astype(np.float64) * self.scale + self.center
        if self.transform in ("normalize_log1p", "log1p"):
            v = np.expm1(np.maximum(v, 0.0))
        if self.transform == "normalize_log1p" and library is not None:
            v = v / self.target_sum * np.asarray(library, dtype=np.float64).reshape(-1, 1)
        return np.maximum(v, 0.0).astype(np.float32)

    # -- storage with the model ----------------------------------------------------------------
    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("center"), d.pop("scale")
        return d

    def arrays(self) -> dict[str, np.ndarray]:
        return {} if self.center is None else {"pre.center": self.center, "pre.scale": self.scale}

    @classmethod
    def restore(cls, doc: dict, state: dict[str, np.ndarray]) -> "Preprocessor":
        return cls(**doc, center=state.get("pre.center"), scale=state.get("pre.scale"))
