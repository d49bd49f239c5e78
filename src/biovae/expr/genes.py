"""Which genes a model is fitted on: a boolean var column, a list of names, or a file of names.

    cells = select_genes(adata, "highly_variable")     # the genes flagged True in adata.var
    cells = select_genes(adata, ["CD3D", "MS4A1"])     # the named genes, in the data's order
    cells = select_genes(adata, "genes.txt")           # one gene name per line (CLI: biovae fit --genes)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from biovae.errors import require


def _flags(column: pd.Series, name: str) -> np.ndarray:
    """A var column as booleans; missing values (genes the column does not cover) are False."""
    values = column.to_numpy(dtype=object)
    missing = pd.isna(values)
    ok = all(v in (True, False, 0, 1) for v in values[~missing])
    require(ok, f"var column {name!r} is not a yes/no flag (it holds e.g. {values[~missing][:3].tolist()})",
            "name a boolean column such as 'highly_variable', or give a file with one gene per line")
    return np.array([bool(v) and not m for v, m in zip(values, missing)], dtype=bool)


def select_genes(data, genes="highly_variable"):
    """The columns of AnnData `data` to fit on (a copy), or `data` itself when genes is None.

    genes: the name of a boolean var column (missing values count as False); a path to a text
    file with one gene name per line; or a list of names. Named genes absent from the data are an
    error, so a typo does not silently shrink the model.
    """
    if genes is None:
        return data
    if isinstance(genes, (str, Path)) and str(genes) in data.var.columns:
        keep = _flags(data.var[str(genes)], str(genes))
        what = f"var column {str(genes)!r}"
    elif isinstance(genes, (str, Path)):
        path = Path(genes)
        require(path.is_file(), f"the data have no var column {str(genes)!r} and no file {path} exists",
                "flag genes first (scanpy.pp.highly_variable_genes), name a file with one gene per line, "
                "or leave the gene selection out to fit on all genes")
        names = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
        require(names, f"gene list {path} names no genes", "write one gene name per line")
        return select_genes(data, names)
    else:
        names = [str(g) for g in genes]
        absent = sorted(set(names) - set(map(str, data.var_names)))
        require(not absent, f"{len(absent)} of the {len(names)} selected genes are not in the data "
                f"(e.g. {', '.join(absent[:5])})", "check the gene names (and the layer: .raw has its own genes)")
        keep = data.var_names.isin(names)
        what = "the gene list"
    require(keep.sum() >= 2, f"{what} keeps {int(keep.sum())} genes", "select at least 2 genes")
    return data[:, keep].copy()
