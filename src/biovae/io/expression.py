"""Gene-expression matrices: read, write and validate them (always cells x genes).

Readers accept .h5ad, CSV/TSV (optionally gzipped) and 10x Genomics mtx folders and return an
AnnData with cells in rows. The validators raise one BiovaeError per problem, naming the file,
column, cell or gene so the user knows what to fix.
"""

from __future__ import annotations

import csv
import zlib
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from biovae.errors import BiovaeError, require
from biovae.io.atomic import atomic_file
from biovae.io.matrix_files import read_10x_h5, read_loom
from biovae.io.mtx import read_mtx

# Likelihoods whose data must be non-negative integers (see biovae.engine.likelihoods).
COUNT_LIKELIHOODS = frozenset({"poisson", "nb", "zinb"})
_FORMATS = ".h5ad, .loom, a 10x .h5, .csv, .tsv, .txt (optionally .gz) or a 10x folder with matrix.mtx[.gz]"


def read_expression(path, genes_in_rows: bool = False, layer: str | None = None) -> ad.AnnData:
    """Read an expression matrix into an AnnData of shape (cells, genes).

    path: .h5ad file; a 10x Genomics .h5 (Cell Ranger) or .loom file (scverse readers, see
        biovae.io.matrix_files); .csv / .tsv / .txt table (optionally .gz) with a header row and an index
        column, cells in rows unless `genes_in_rows`; or a 10x folder (or its matrix.mtx[.gz])
        holding matrix.mtx, barcodes.tsv and features.tsv or genes.tsv (each optionally .gz).
    layer: for .h5ad only, a layer to put in X instead of X; "raw" takes `.raw.X` and its genes.
    Duplicate gene or cell names are made unique ("name-1", ...). Values must be finite.
    """
    path = Path(path)
    require(path.exists(), f"expression input {path} does not exist", "check the path")
    name = path.name.lower()
    if path.is_dir() or name.startswith("matrix.mtx"):
        require(layer is None, f"{path}: layers exist only in .h5ad files", "drop the layer option")
        adata = _read_10x(path if path.is_dir() else path.parent)
    elif name.endswith(".h5ad"):
        adata = _read_h5ad(path, layer)
    elif name.endswith((".h5", ".loom")):
        adata = read_10x_h5(path) if name.endswith(".h5") else read_loom(path)
        if layer is not None:
            X, genes, _ = as_matrix(adata, layer)
            adata = ad.AnnData(X=X, obs=adata.obs.copy(), var=pd.DataFrame(index=pd.Index(genes)))
    elif name.removesuffix(".gz").endswith((".csv", ".tsv", ".txt")):
        require(layer is None, f"{path}: layers exist only in .h5ad files", "drop the layer option")
        adata = _read_table(path, genes_in_rows)
    else:
        raise BiovaeError(f"cannot tell the format of {path} from its name", f"give {_FORMATS}")
    adata.var_names_make_unique()
    adata.obs_names_make_unique()
    check_shape(adata.X, str(path))
    _check_finite(adata.X, str(path), np.asarray(adata.var_names), np.asarray(adata.obs_names))
    return adata


def write_expression(adata: ad.AnnData, path) -> None:
    """Write `adata` atomically: .h5ad keeps everything; .csv / .tsv writes X as cells x genes
    with cell names in the first column and gene names in the header row."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".h5ad"):
        with atomic_file(path) as tmp:
            adata.write_h5ad(tmp)
    elif name.endswith((".csv", ".tsv")):
        X, genes, cells = as_matrix(adata)
        X = X.toarray() if sp.issparse(X) else X
        frame = pd.DataFrame(X, index=cells, columns=genes)
        with atomic_file(path) as tmp:
            frame.to_csv(tmp, sep="," if name.endswith(".csv") else "\t", index_label="cell")
    else:
        raise BiovaeError(f"cannot write expression to {path}", "name the output .h5ad or .csv")


def as_matrix(data, layer: str | None = None):
    """Turn expression data into (X, gene names, cell names).

    data: AnnData (X, a layer named by `layer`, or `.raw` when layer == "raw"), a pandas
        DataFrame (cells x genes, numeric columns), a numpy array or scipy sparse matrix
        (cells x genes; names become "cell_0".., "gene_0"..).
    Returns X as float32, dense C-ordered numpy or scipy CSR, shape (cells, genes), and two 1-D
    object arrays of str: genes (n_genes,) and cells (n_cells,).
    """
    if isinstance(data, ad.AnnData):
        genes, cells = data.var_names, data.obs_names
        if layer is None:
            X = data.X
        elif layer == "raw":
            require(data.raw is not None, "the AnnData has no .raw", "choose another layer")
            X, genes = data.raw.X, data.raw.var_names
        else:
            require(
                layer in data.layers,
                f"the AnnData has no layer {layer!r}",
                f"choose one of: {', '.join(data.layers.keys()) or 'none (use X)'} or 'raw'",
            )
            X = data.layers[layer]
        require(X is not None, "the AnnData has no expression matrix in X", "fill X or name a layer")
    elif isinstance(data, pd.DataFrame):
        require(layer is None, "a layer can only be chosen for AnnData input")
        _check_numeric_columns(data, "the DataFrame")
        X, genes, cells = data.to_numpy(dtype=np.float32), data.columns, data.index
    else:
        require(layer is None, "a layer can only be chosen for AnnData input")
        X = data if sp.issparse(data) else np.asarray(data)
        require(
            X.ndim == 2 and (sp.issparse(X) or np.issubdtype(X.dtype, np.number)),
            f"expression data must be a numeric 2-D matrix (cells x genes), got {type(data).__name__}"
            f" of shape {getattr(X, 'shape', '?')}",
            "pass an AnnData, a DataFrame, or a 2-D numpy/scipy matrix",
        )
        cells = [f"cell_{i}" for i in range(X.shape[0])]
        genes = [f"gene_{j}" for j in range(X.shape[1])]
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float32)
    else:
        X = np.ascontiguousarray(np.asarray(X), dtype=np.float32)
    check_shape(X, "the expression data")
    return X, np.asarray(genes, dtype=str).astype(object), np.asarray(cells, dtype=str).astype(object)


def check_shape(X, source: str) -> None:
    """Raise BiovaeError if X (cells x genes) has no cells or no genes. `source` names the data."""
    n_cells, n_genes = X.shape
    require(n_cells > 0, f"{source} has no cells (0 rows)", "give at least one cell")
    require(n_genes > 0, f"{source} has no genes (0 columns)", "give at least one gene")


def check_values(
    X, likelihood_name: str | None = None, source: str = "the expression data", *,
    genes=None, cells=None, allow_negative: bool = False,
) -> None:
    """Raise one BiovaeError for the first kind of bad value in X (cells x genes).

    Checked in order: NaN / infinite values, negative values (unless `allow_negative`), and for a
    count likelihood (poisson, nb, zinb) non-integer values. The message gives how many values
    are bad and where the first is (cell and gene names; row-major order). X may be anything
    `as_matrix` accepts; names then come from it unless `genes` / `cells` are given.
    """
    if isinstance(X, (ad.AnnData, pd.DataFrame)):
        X, g, c = as_matrix(X)
        genes, cells = (g if genes is None else genes), (c if cells is None else cells)
    _check_finite(X, source, genes, cells)
    if not allow_negative:
        _first_bad(X, lambda v: v < 0, source, genes, cells, "negative value(s)",
                   "expression must be non-negative: give counts or log-normalised values, "
                   "not scaled/centred data")
    if likelihood_name in COUNT_LIKELIHOODS:
        _first_bad(X, lambda v: np.abs(v - np.round(v)) > 1e-6, source, genes, cells,
                   f"non-integer value(s), but the {likelihood_name!r} likelihood models counts",
                   "give raw integer counts, or choose the 'gaussian' likelihood for normalised data")


def get_labels(adata: ad.AnnData, key) -> np.ndarray:
    """Cell labels as a 1-D object array of str, shape (n_cells,).

    key: the name of an `adata.obs` column, or an array-like with one label per cell.
    Raises BiovaeError if the column is missing, the length is wrong, or any label is empty/NaN.
    """
    if isinstance(key, str):
        require(
            key in adata.obs.columns,
            f"labels column {key!r} is not in the data's cell annotations",
            f"choose one of: {', '.join(map(str, adata.obs.columns)) or 'none available'}",
        )
        values, what = adata.obs[key], f"labels column {key!r}"
    else:
        values, what = pd.Series(np.asarray(key, dtype=object)), "the labels given"
        require(
            len(values) == adata.n_obs,
            f"{what} has {len(values)} entries but the data has {adata.n_obs} cells",
            "give one label per cell",
        )
    raw = np.asarray(values, dtype=object)
    missing = pd.isna(values).to_numpy()
    labels = np.array(["" if m else str(v).strip() for v, m in zip(raw, missing)], dtype=object)
    empty = np.flatnonzero(labels == "")
    if empty.size:
        raise BiovaeError(
            f"{what} is empty or NaN for {empty.size} cell(s), the first is "
            f"{adata.obs_names[empty[0]]!r}",
            "fill in a label for every cell, or remove the unlabelled cells",
        )
    return np.array([str(v) for v in raw], dtype=object)


def get_batches(data, batch_key: str | None) -> np.ndarray | None:
    """Batches (n,) str from the obs column `batch_key`; None without one. The column must
    exist and name a batch for every cell."""
    if batch_key is None:
        return None
    obs = getattr(data, "obs", None)  # AnnData or a backed reader
    obs = obs if isinstance(obs, pd.DataFrame) else pd.DataFrame()
    require(batch_key in obs.columns, f"batch column {batch_key!r} is not in the data's cell annotations",
            f"choose one of: {', '.join(map(str, obs.columns)) or 'none available'}")
    values = obs[batch_key]
    empty = np.flatnonzero(pd.isna(values).to_numpy() | (values.astype(str).str.strip() == "").to_numpy())
    require(empty.size == 0, f"batch column {batch_key!r} is empty or NaN for {empty.size} cell(s), the first is "
            f"{str(obs.index[empty[0]]) if empty.size else ''!r}", "give every cell a batch, or drop the unbatched cells")
    return values.astype(str).to_numpy().astype(object)


def align_genes(adata: ad.AnnData, genes, source: str = "the new data") -> ad.AnnData:
    """Return `adata` with its genes (columns) reordered to `genes`; extra genes are dropped.

    genes: the model's gene names, in model order. Raises BiovaeError naming the first missing
    genes if `adata` lacks any, or a duplicated gene name. The result is `adata` itself when the
    genes already match in order, otherwise a copy.
    """
    genes = [str(g) for g in genes]
    if list(adata.var_names) == genes:
        return adata
    return adata[:, gene_order(adata.var_names, genes, source)].copy()


def gene_order(have, want, source: str = "the new data") -> np.ndarray:
    """Column indices into `have` (gene names of some data) that give the genes `want`, in order.

    Returns an int array of shape (len(want),). Raises BiovaeError naming the first missing
    genes, or a gene name that occurs twice in `have`.
    """
    want = [str(g) for g in want]
    wanted, position = set(want), {}
    for j, g in enumerate(str(g) for g in have):
        require(g not in position or g not in wanted,
                f"{source} has gene {g!r} more than once", "make gene names unique")
        position.setdefault(g, j)
    index = np.array([position.get(g, -1) for g in want], dtype=np.int64)
    missing = [g for g, i in zip(want, index) if i < 0]
    if missing:
        raise BiovaeError(
            f"{source} lacks {len(missing)} of the {len(want)} genes expected, first missing: "
            + ", ".join(missing[:5]),
            "give data measured on the model's genes (order and extra genes do not matter)",
        )
    return index


# --------------------------------------------------------------------------------------------
def _read_h5ad(path: Path, layer: str | None) -> ad.AnnData:
    try:
        adata = ad.read_h5ad(path)
    except Exception as exc:  # h5py/anndata raise many types for a damaged file
        raise BiovaeError(f"cannot read {path} as .h5ad: {exc}", "check that the file is complete") from None
    if layer is None:
        require(adata.X is not None, f"{path} has no matrix in X", "name one of its layers")
        return adata
    X, genes, _ = as_matrix(adata, layer)
    var = adata.raw.var.copy() if layer == "raw" else adata.var.copy()
    if layer == "raw":  # flags such as highly_variable live in .var: carry them to the genes they cover
        extra = [c for c in adata.var.columns if c not in var.columns]
        var = var.join(adata.var[extra].reindex(var.index)) if extra else var
    var.index = pd.Index(genes)
    return ad.AnnData(X=X, obs=adata.obs.copy(), var=var, uns=dict(adata.uns),
                      obsm=dict(adata.obsm))


def _read_table(path: Path, genes_in_rows: bool) -> ad.AnnData:
    name = path.name.lower().removesuffix(".gz")
    sep = "," if name.endswith(".csv") else "\t"
    try:
        # Names stay text as written: "001" keeps its zeros, and a cell called "NA" or "null"
        # is not a missing value (only the values keep pandas' missing-value markers).
        frame = pd.read_csv(path, sep=sep, index_col=0, dtype={0: str})
        if frame.index.isna().any():  # rare: read the name column again, without NA guessing
            names = pd.read_csv(path, sep=sep, usecols=[0], dtype=str, keep_default_na=False).iloc[:, 0]
            if len(names) == len(frame):
                frame.index = pd.Index(names.to_numpy(), name=frame.index.name)
    except _TEXT_ERRORS as exc:
        raise BiovaeError(f"cannot read {path} as a table: {exc}", "give a delimited text table") from None
    require(frame.shape[1] > 0, f"{path} has no data columns",
            f"separate columns with {'commas' if sep == ',' else 'tabs'} and keep an index column")
    numeric_header = pd.to_numeric(pd.Series(frame.columns), errors="coerce").notna().all()
    require(not numeric_header, f"{path}: the header row is all numbers, not names",
            "the first row must hold gene (or cell, with genes in rows) names")
    _check_numeric_columns(frame, str(path))
    if genes_in_rows:
        frame = frame.T
    return ad.AnnData(
        X=frame.to_numpy(dtype=np.float32),
        obs=pd.DataFrame(index=frame.index.astype(str)),
        var=pd.DataFrame(index=frame.columns.astype(str)),
    )


def _read_10x(folder: Path) -> ad.AnnData:
    def find(*stems: str) -> Path:
        for stem in stems:
            for candidate in (folder / stem, folder / f"{stem}.gz"):
                if candidate.exists():
                    return candidate
        raise BiovaeError(f"10x folder {folder} has no {' or '.join(stems)}[.gz]",
                          "a 10x folder holds matrix.mtx, barcodes.tsv and features.tsv")

    matrix_path = find("matrix.mtx")
    barcodes_path, features_path = find("barcodes.tsv"), find("features.tsv", "genes.tsv")
    try:
        genes_by_cells = read_mtx(matrix_path)
        # names are text: no NA guessing ("NA", "null" are names here), no quoting
        names = dict(sep="\t", header=None, dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE)
        barcodes = pd.read_csv(barcodes_path, **names)
        features = pd.read_csv(features_path, **names)
    except _TEXT_ERRORS as exc:
        raise BiovaeError(f"cannot read 10x folder {folder}: {exc}", "check its three files") from None
    n_genes, n_cells = genes_by_cells.shape
    require(len(barcodes) == n_cells, f"{barcodes_path} lists {len(barcodes)} barcodes but "
            f"{matrix_path} has {n_cells} columns", "use the files of one 10x run together")
    require(len(features) == n_genes, f"{features_path} lists {len(features)} genes but "
            f"{matrix_path} has {n_genes} rows", "use the files of one 10x run together")
    var = pd.DataFrame({"gene_ids": features[0].to_numpy()})
    var.index = features[1 if features.shape[1] > 1 else 0].astype(str).to_numpy()
    if features.shape[1] > 2:
        var["feature_types"] = features[2].to_numpy()
    obs = pd.DataFrame(index=barcodes[0].astype(str).to_numpy())
    return ad.AnnData(X=genes_by_cells.T.tocsr(), obs=obs, var=var)


# What pandas and the decompressors raise on damaged text (UnicodeDecodeError is a ValueError;
# BadGzipFile an OSError).
_TEXT_ERRORS = (ValueError, OverflowError, OSError, EOFError, zlib.error, pd.errors.ParserError,
                pd.errors.EmptyDataError)
def _check_numeric_columns(frame: pd.DataFrame, source: str) -> None:
    bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        col = frame[bad[0]]
        text = col[pd.to_numeric(col, errors="coerce").isna() & col.notna()]
        example = f" (e.g. {text.iloc[0]!r} for {text.index[0]!r})" if len(text) else ""
        raise BiovaeError(
            f"{source}: column {bad[0]!r} is not numeric{example}; {len(bad)} such column(s)",
            "keep only numbers in the matrix, with names in the header row and index column",
        )


def _check_finite(X, source, genes, cells) -> None:
    _first_bad(X, lambda v: ~np.isfinite(v), source, genes, cells, "NaN or infinite value(s)",
               "remove or impute them before fitting")


def _first_bad(X, is_bad, source, genes, cells, what: str, hint: str) -> None:
    """Raise if any stored value of X satisfies is_bad; name the first (cell, gene)."""
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        bad = np.flatnonzero(is_bad(X.data))
        if bad.size == 0:
            return
        count, k = bad.size, bad[0]
        row = int(np.searchsorted(X.indptr, k, side="right") - 1)
        col = int(X.indices[k])
    else:
        mask = is_bad(np.asarray(X))
        count = int(mask.sum())
        if count == 0:
            return
        row, col = (int(i) for i in np.unravel_index(np.argmax(mask), mask.shape))
    cell = f"cell {cells[row]!r}" if cells is not None else f"row {row}"
    gene = f"gene {genes[col]!r}" if genes is not None else f"column {col}"
    raise BiovaeError(f"{source} has {count} {what}; the first is at {cell}, {gene}", hint)
