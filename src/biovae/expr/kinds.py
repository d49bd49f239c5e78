"""What kind of expression values a matrix holds, and what that asks of the model.

  counts          whole numbers >= 0 (UMI or read counts, usually sparse)
  full_length     non-integer values >= 0 on a linear scale (maximum above 30: TPM, FPKM,
                  RSEM expected counts of full-length protocols)
  log_normalised  non-integer values >= 0 with maximum <= 30 (log1p of normalised counts)
  scaled          any negative value (centred / z-scored data): refused, since the cells'
                  zeros, library sizes and count scale are gone; `.raw` or a counts layer of the
                  same file usually holds the values to use instead

Each kind maps to a transform of the input (see biovae.expr.preprocess): counts are
library-normalised and log1p-transformed, and generated cells come back as whole counts drawn
from the likelihood at a library size of the training cells; full-length values are
log1p-transformed; log-normalised values are used as given. The thresholds are those the
preprocessor's "auto" transform has always used, so models fitted before the kinds existed
read the same way.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from biovae.errors import BiovaeError

KINDS = ("counts", "full_length", "log_normalised", "scaled")
TRANSFORM = {"counts": "normalize_log1p", "full_length": "log1p", "log_normalised": "none"}
LINEAR_MAX = 30.0  # above this a non-negative, non-integer matrix is on a linear scale


def detect(blocks) -> str:
    """The kind of the values in `blocks` (an iterable of cells x genes matrices, dense or
    sparse, read once)."""
    integer, top, negative = True, 0.0, False
    for x in blocks:
        values = x.data if sp.issparse(x) else np.asarray(x)
        if values.size == 0:
            continue
        negative = negative or bool(values.min() < 0)
        integer = integer and bool(np.all(np.abs(values - np.round(values)) < 1e-6))
        top = max(top, float(values.max()))
    if negative:
        return "scaled"
    if integer:
        return "counts"
    return "full_length" if top > LINEAR_MAX else "log_normalised"


def resolve(given: str | None, detected: str, source: str, alternatives: list[str]) -> str:
    """The kind to model: `given` (--input-kind; None or "auto" = detected). Raises BiovaeError
    for an unknown name, and for scaled data (detected or given), naming `alternatives` (the
    `--layer` values of the same file that may hold unscaled values, e.g. ["raw", "counts"])."""
    kind = detected if given in (None, "auto") else given
    if kind not in KINDS:
        raise BiovaeError(f"unknown input kind {given!r}", f"choose auto or one of {', '.join(KINDS[:3])}")
    if kind == "scaled":
        names = [".raw" if a == "raw" else f"layer {a!r}" for a in alternatives]
        where = f"; the data also hold {' and '.join(names)}" if names else ""
        hint = (f"give unscaled values with --layer {alternatives[0]} (layer={alternatives[0]!r})"
                if alternatives else "give counts, TPM/FPKM or log-normalised values, not centred or scaled data")
        raise BiovaeError(f"{source} holds negative values: scaled (centred) data cannot be generated on "
                          f"the cells' own scale{where}", hint)
    return kind


def unscaled_layers(data) -> list[str]:
    """`--layer` values of an AnnData that may hold unscaled expression: "raw" when it has
    .raw, then layers whose name says counts (in the order stored)."""
    out = []
    if getattr(data, "raw", None) is not None:
        out.append("raw")
    for name in getattr(data, "layers", {}).keys():
        if "count" in name.lower() or name.lower() in ("raw", "umi", "tpm", "fpkm", "data"):
            out.append(name)
    return out
