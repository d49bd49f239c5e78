"""Matrix Market coordinate files (10x Genomics matrix.mtx[.gz]), read with checks."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from biovae.errors import BiovaeError, require

_MTX_FIELDS = ("real", "integer", "double", "pattern")
_MTX_CHUNK = 1 << 22  # entries parsed per step: bounds the parser's memory near 130 MB


def read_mtx(path: Path) -> sp.csr_matrix:
    """Read a Matrix Market coordinate file ('general', or 'symmetric' as scipy writes a symmetric
    matrix; plain or .gz) into float32 CSR, shape as in the file (10x: genes x cells).

    Own reader (pandas' C tokenizer plus checks) rather than scipy.io.mmread: scipy's
    fast_matrix_market segfaults on some damaged files (e.g. a number cut to "7.1E"), and a
    crash cannot be turned into an error message. Checks: the header, the size line, exactly 2
    (pattern) or 3 fields per entry, whole 1-based indices within the size, and the entry count.
    """
    gz = path.name.endswith(".gz")
    with gzip.open(path, "rb") if gz else open(path, "rb") as fh:
        header = fh.readline(1000)
        words = header.decode("latin-1").lower().split()
        require(len(words) == 5 and words[:3] == ["%%matrixmarket", "matrix", "coordinate"]
                and words[3] in _MTX_FIELDS and words[4] in ("general", "symmetric"),
                f"{path} is not a Matrix Market 'coordinate' matrix (first line "
                f"{header[:60].decode('latin-1').strip()!r})", "give the matrix.mtx written by Cell Ranger, unchanged")
        skip, size = 1, None
        for line in fh:
            skip += 1
            if line.strip() and not line.lstrip().startswith(b"%"):
                size = line.split()
                break
    try:
        n_rows, n_cols, nnz = (int(w) for w in size or ())
    except (TypeError, ValueError):
        raise BiovaeError(f"{path}: the size line (rows, columns, entries) is missing or not 3 whole numbers",
                          "the file is truncated or damaged") from None
    require(min(n_rows, n_cols, nnz) >= 0 and nnz <= n_rows * n_cols,
            f"{path}: impossible size line {n_rows} x {n_cols} with {nnz} entries", "the file is damaged")
    fields = ["i", "j"] + ([] if words[3] == "pattern" else ["v"])
    index_type = np.int32 if max(n_rows, n_cols) < 2**31 - 1 else np.int64
    rows, cols, vals, seen = [], [], [], 0
    try:
        for chunk in pd.read_csv(path, sep=r"\s+", header=None, names=fields + ["extra"], index_col=False,
                                 skiprows=skip, dtype=np.float64, compression="gzip" if gz else None,
                                 encoding="latin-1", chunksize=_MTX_CHUNK, engine="c"):
            a = chunk.to_numpy()
            where = f"{path}: entry {seen + 1}-{seen + len(a)}"
            require(np.isnan(a[:, -1]).all(), f"{where}: a line has more than {len(fields)} fields",
                    "the file is damaged")
            a = a[:, :-1]
            require(not np.isnan(a).any(), f"{where}: a line has a missing field or a NaN value", "the file is damaged")
            i, j = a[:, 0], a[:, 1]
            ok = (i == np.floor(i)) & (j == np.floor(j)) & (i >= 1) & (i <= n_rows) & (j >= 1) & (j <= n_cols)
            require(ok.all(), f"{where}: a row or column index is not a whole number within "
                    f"{n_rows} x {n_cols}", "the file is damaged")
            rows.append((i - 1).astype(index_type))
            cols.append((j - 1).astype(index_type))
            vals.append(a[:, 2].astype(np.float32) if a.shape[1] > 2 else np.ones(len(a), np.float32))
            seen += len(a)
    except pd.errors.EmptyDataError:
        pass  # no entry lines at all
    require(seen == nnz, f"{path} declares {nnz} entries but holds {seen}", "the file is truncated or damaged")
    cat = (lambda xs, t: np.concatenate(xs) if xs else np.zeros(0, t))
    i, j, v = cat(rows, index_type), cat(cols, index_type), cat(vals, np.float32)
    if words[4] == "symmetric":  # only one triangle is stored
        off = i != j
        i, j, v = np.concatenate([i, j[off]]), np.concatenate([j, i[off]]), np.concatenate([v, v[off]])
    try:
        return sp.csr_matrix((v, (i, j)), shape=(n_rows, n_cols), dtype=np.float32)
    except MemoryError:
        raise BiovaeError(f"{path}: a {n_rows} x {n_cols} matrix does not fit in memory",
                          "check the size line of the file; it may be damaged") from None
