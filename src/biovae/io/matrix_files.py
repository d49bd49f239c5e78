"""10x Genomics .h5 and .loom expression files, read by the scverse readers.

`read_10x_h5` is scanpy's reader (Cell Ranger v2 and v3 layouts; gene expression features only)
and `read_loom` is anndata's (through loompy). Each returns an AnnData of cells x genes, and
turns whatever the library raises for a file that is not such a matrix (another HDF5 file, a
truncated download, a text file with the wrong name) into one BiovaeError naming the file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad

from biovae.errors import BiovaeError


def read_10x_h5(path: Path) -> ad.AnnData:
    import scanpy as sc

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adata = sc.read_10x_h5(path)
    except Exception as exc:  # h5py / scanpy raise OSError, KeyError, ValueError, ... for non-10x files
        raise BiovaeError(f"{path} is not a 10x Genomics matrix file (.h5): {_reason(exc)}",
                          "give the filtered_feature_bc_matrix.h5 that Cell Ranger wrote, or an .h5ad") from None
    return adata


def read_loom(path: Path) -> ad.AnnData:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adata = ad.io.read_loom(path, sparse=True)
    except Exception as exc:  # loompy / h5py raise many types for a file that is no loom matrix
        raise BiovaeError(f"{path} is not a loom matrix file: {_reason(exc)}",
                          "give a .loom with a /matrix (genes x cells), or an .h5ad") from None
    return adata


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
