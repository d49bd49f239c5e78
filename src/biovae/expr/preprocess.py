"""Expression preprocessing that matches the likelihood, fitted on training cells and inverted on output.

Count likelihoods (nb, zinb, poisson) see raw counts; the library size enters the likelihood.
Gaussian-type likelihoods see   scale(log1p(normalise(x)))   where each step is chosen by
`transform` and fitted on the training cells only:

  transform="auto"  by the input's kind (biovae.expr.kinds, detected or given): counts ->
                    "normalize_log1p"; full-length TPM/FPKM -> "log1p"; log-normalised -> "none"
  "normalize_log1p" each cell to `target_sum` counts, then log1p
  "log1p"           log1p only
  "none"            as given
then every gene is centred and divided by its standard deviation (floored, so constant genes
stay finite). Bernoulli data are instead min-max scaled to [0, 1] per gene, and hurdle data are
only divided by the standard deviation, so that zeros stay exact zeros.

The inverse brings decoded values back to the input's scale (negative values clipped to 0, as
expression is non-negative); after "normalize_log1p" it multiplies by a library size per cell.
Counts come back as whole counts (`integer`; a hurdle's detected values keep at least one): for
"normalize_log1p" the model sees log1p(k * s_c) with s_c = target / library, the lattice below,
so they are generated the same way (a size factor drawn at the cell's detected genes, then
k = round(expm1(v) / s)), which keeps depth and detection consistent within a cell, and
every gene is capped at its largest training value (`gene_max`): without the cap, full-length
FPKM cells drawn from a per-cell-scale hurdle reached 10x the real maximum (issue 20).

Log-normalised counts ("lattice"). Data made by normalise-to-total + log1p (scanpy's usual
.raw, pbmc68k_reduced among them) hold only the values log1p(k * s_c): whole counts k scaled by
one size factor s_c = target / total counts per cell, so a cell's smallest non-zero value is
log1p(s_c) (k = 1; more than half the non-zero values of pbmc68k_reduced are exactly that). When
transform "auto" resolves to "none" and the training cells pass `lattice_size_factors`, the
preprocessor remembers it (`lattice`), and generated values are put back on such a lattice: a
size factor is drawn per generated cell (see samplers.draw_size), each decoded value becomes
the nearest whole count k (at least 1 where the hurdle says "detected"), and the output is
log1p(k * s). Without this, decoded values are continuous and fall anywhere in (0, log1p(s_c)),
where real data never are - the largest single tell of generated cells on pbmc68k_reduced
(held-out RF-AUC of one "hurdle" model, two generation seeds: 0.74 and 0.79 before, 0.68 and
0.69 after).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse as sp

from biovae.engine import likelihoods
from biovae.errors import BiovaeError
from biovae.expr import kinds

TRANSFORMS = ("auto", "normalize_log1p", "log1p", "none")
HURDLES = ("hurdle", "hurdle_cell")  # zeros are exact zeros: scaled, not centred
LATTICE_TOLERANCE = 0.05  # |k - round(k)|, plus 0.2% of k for values stored with ~3 decimals
LATTICE_SHARE = 0.99  # share of non-zero values that must sit on their cell's lattice


def lattice_size_factors(x) -> np.ndarray | None:
    """Per-cell size factors s (n,) if x (cells x genes, non-negative) is log1p(k * s_c) with
    whole k, else None.

    s_c = expm1(smallest non-zero value of cell c), taken as one count. The data pass when every
    cell has a non-zero value, the maximum is below 30 (log scale), at least LATTICE_SHARE of all
    non-zero values give k = expm1(x) / s_c within LATTICE_TOLERANCE (+ 0.2% of k) of a whole
    number, and at least 5% of them have k >= 2 (so that a binary or one-value matrix does not
    count as a lattice).
    """
    return lattice_size_factors_chunks([x])


def lattice_size_factors_chunks(blocks) -> np.ndarray | None:
    """lattice_size_factors over the cells of several row blocks (an iterable of matrices), as
    if they were one matrix: (total cells,) or None."""
    sizes, whole, two, positive = [], 0, 0, 0
    for x in blocks:
        y = _dense(x).astype(np.float64)
        if y.size == 0:
            continue
        if y.max() >= 30 or y.min() < 0:
            return None
        pos = y > 0
        if not pos.any(axis=1).all():
            return None
        s = np.expm1(np.where(pos, y, np.inf).min(axis=1))
        k = np.expm1(y[pos]) / np.broadcast_to(s[:, None], y.shape)[pos]
        whole += int((np.abs(k - np.round(k)) <= LATTICE_TOLERANCE + 0.002 * k).sum())
        two += int((np.round(k) >= 2).sum())
        positive += k.size
        sizes.append(s)
    if not sizes or whole / positive < LATTICE_SHARE or two / positive < 0.05:
        return None
    return np.concatenate(sizes)


def _column_max(blocks) -> np.ndarray | None:
    """Per-gene maximum (genes,) float64 over row blocks; None without cells."""
    top = None
    for x in blocks:
        if x.shape[0]:
            m = np.asarray(x.max(axis=0).toarray()).ravel() if sp.issparse(x) else np.asarray(x).max(axis=0)
            top = m.astype(np.float64) if top is None else np.maximum(top, m)
    return top


def _dense(x) -> np.ndarray:
    return x.toarray() if sp.issparse(x) else np.asarray(x)


@dataclass
class Preprocessor:
    """Fitted state. Arrays (per gene) are kept in `center`/`scale`; everything else is JSON.
    After fit, `fitted_sizes` holds the training cells' lattice size factors when `lattice`
    (else None); it is not saved with the model."""

    likelihood: str
    transform: str = "auto"
    target_sum: float = 1e4
    lattice: bool = False
    kind: str = ""  # biovae.expr.kinds; "" = detected when fitted ("" in models older than kinds)
    integer: bool = False  # counts modelled on a continuous scale: generated values are whole counts
    center: np.ndarray = field(default=None, repr=False)
    scale: np.ndarray = field(default=None, repr=False)
    gene_max: np.ndarray = field(default=None, repr=False)  # per-gene maximum of the training cells

    @property
    def counts(self) -> bool:
        return likelihoods.get(self.likelihood).counts

    # -- fitting -------------------------------------------------------------------------------
    def fit(self, x) -> "Preprocessor":
        """Choose the transform (if auto) and fit per-gene scaling on training cells x (n, genes)."""
        return self.fit_chunks(lambda: [x])

    fitted_sizes = None  # class default: not a dataclass field, so never written to JSON

    def fit_chunks(self, blocks) -> "Preprocessor":
        """fit() on cells given in row blocks: blocks() returns a fresh iterable of (n_i, genes)
        matrices each time it is called (up to three passes: transform, lattice, gene scaling)."""
        if self.transform not in TRANSFORMS:
            raise BiovaeError(f"unknown transform {self.transform!r}", f"choose one of {', '.join(TRANSFORMS)}")
        self.fitted_sizes = None
        if self.counts:
            self.transform, self.kind = "none", self.kind or "counts"
            self.gene_max = _column_max(blocks())
            return self
        if not self.kind:
            self.kind = kinds.detect(blocks())
        if self.transform == "auto":
            self.transform = kinds.TRANSFORM.get(self.kind, "none")
            if self.transform == "none" and self.likelihood != "bernoulli":
                self.fitted_sizes = lattice_size_factors_chunks(blocks())
            self.lattice = self.fitted_sizes is not None
        self.integer = self.kind == "counts" and self.likelihood != "bernoulli"
        if self.integer and self.transform == "normalize_log1p":  # log1p(k * target / library): a lattice too
            self.fitted_sizes = self.target_sum / np.maximum(np.concatenate(
                [np.asarray(x.sum(axis=1)).ravel() for x in blocks()]), 1.0)
        n, mean, m2, low, high = 0, 0.0, 0.0, np.inf, -np.inf
        for x in blocks():  # per-gene moments, merged over blocks (Chan et al.'s pairwise update)
            y = self._forward(x)
            if len(y) == 0:
                continue
            low, high = np.minimum(low, y.min(0)), np.maximum(high, y.max(0))
            mb = y.mean(0)
            m2b = ((y - mb) ** 2).sum(0)
            if n == 0:
                n, mean, m2 = len(y), mb, m2b
            else:
                delta, total = mb - mean, n + len(y)
                mean = mean + delta * len(y) / total
                m2 = m2 + m2b + delta ** 2 * n * len(y) / total
                n = total
        std = np.sqrt(m2 / n)
        self.gene_max = _column_max(blocks())
        if self.likelihood == "bernoulli":
            self.center, self.scale = low, np.maximum(high - low, 1e-6)
        elif self.likelihood in HURDLES:  # scale only, so that zeros stay exact zeros
            self.center, self.scale = np.zeros(len(std)), np.maximum(std, 1e-3)
        else:
            self.center, self.scale = mean, np.maximum(std, 1e-3)
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

    def inverse(self, y: np.ndarray, library: np.ndarray | None = None,
                size: np.ndarray | None = None) -> np.ndarray:
        """Model scale -> input scale. library: per-cell totals (n,) used after normalize_log1p.
        size: per-cell size factors (n,) of a `lattice` model; when given, the values are put on
        the lattice log1p(k * size) (see the module's docstring)."""
        if self.counts:
            return (y if self.gene_max is None else np.minimum(y, self.gene_max)).astype(np.float32)
        v = y.astype(np.float64) * self.scale + self.center
        if self.lattice and size is not None:
            return self._on_lattice(y, v, np.asarray(size, dtype=np.float64).reshape(-1, 1))
        if self.integer and size is not None and self.transform == "normalize_log1p":
            k = self.lattice_counts(y, v, np.asarray(size, dtype=np.float64).reshape(-1, 1))
            return (k if self.gene_max is None else np.minimum(k, self.gene_max)).astype(np.float32)
        if self.transform in ("normalize_log1p", "log1p"):
            v = np.expm1(np.maximum(v, 0.0))
        if self.transform == "normalize_log1p" and library is not None:
            v = v / self.target_sum * np.asarray(library, dtype=np.float64).reshape(-1, 1)
        v = np.maximum(v, 0.0)
        if self.integer:  # whole counts; a hurdle's detected values keep at least one
            v = np.round(v)
            if self.likelihood in HURDLES:
                v = np.where(y != 0, np.maximum(v, 1.0), 0.0)
        if self.gene_max is not None:  # never beyond what the training cells show
            v = np.minimum(v, self.gene_max)
        return v.astype(np.float32)

    def lattice_counts(self, y: np.ndarray, v: np.ndarray, size: np.ndarray) -> np.ndarray:
        """Whole counts k (n, genes) for model-scale y / input-scale v at size factors (n, 1).
        A hurdle model's non-zero draws are detected, so they keep at least one count."""
        k = np.round(np.expm1(np.maximum(v, 0.0)) / size)
        if self.likelihood in HURDLES:
            k = np.where(y != 0, np.maximum(k, 1.0), 0.0)
        return k

    def _on_lattice(self, y, v, size) -> np.ndarray:
        k = self.lattice_counts(y, v, size)
        if self.gene_max is not None:  # the largest whole count under the gene's maximum (a detected value keeps 1)
            top = np.floor(np.expm1(self.gene_max) / size * 1.002 + LATTICE_TOLERANCE)  # stored values are rounded
            k = np.where(k > 0, np.maximum(np.minimum(k, top), 1.0), 0.0)
        return np.log1p(k * size).astype(np.float32)

    # -- storage with the model ----------------------------------------------------------------
    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("center"), d.pop("scale"), d.pop("gene_max")
        return d

    def arrays(self) -> dict[str, np.ndarray]:
        out = {} if self.center is None else {"pre.center": self.center, "pre.scale": self.scale}
        if self.gene_max is not None:
            out["pre.gene_max"] = self.gene_max
        return out

    @classmethod
    def restore(cls, doc: dict, state: dict[str, np.ndarray]) -> "Preprocessor":
        return cls(**doc, center=state.get("pre.center"), scale=state.get("pre.scale"),
                   gene_max=state.get("pre.gene_max"))
