"""Expression matrices read from an .h5ad file in row chunks, never whole (for data larger than memory).

    src = open_backed("atlas.h5ad", layer=None)     # or an AnnData opened with backed="r"
    for start, rows in src.chunks():                  # rows: float32 CSR (or dense) of cells
        ...

The matrix is read with h5py straight from the file: X, a layer ("layers/NAME") or `.raw`
(layer="raw"), stored as CSR (anndata's default for sparse data; one contiguous read per chunk)
or dense. Cell and gene names and the cell annotations (obs) are read into memory, the matrix
never is: a chunk holds about CHUNK_BYTES of stored values. A CSC matrix cannot be read by rows
without reading all of it, so it is refused with the line that converts it.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from biovae.errors import BiovaeError, require

CHUNK_BYTES = 16 << 20  # stored bytes (values + column indices) per chunk, ~16 MiB


class BackedExpression:
    """Cells x genes of one .h5ad file, read by rows. Attributes: path, layer, genes and cells
    (object arrays of str), obs (DataFrame of cell annotations), shape, sparse, chunk_rows."""

    def __init__(self, path, layer: str | None = None):
        self.path, self.layer = Path(path), layer
        require(self.path.exists(), f"expression input {self.path} does not exist", "check the path")
        require(self.path.name.lower().endswith(".h5ad"), f"{self.path}: backed reading needs an .h5ad file",
                "convert the data to .h5ad, or fit without --backed")
        try:
            self.file = h5py.File(self.path, "r")
            self.obs = ad.io.read_elem(self.file["obs"])
            var = ad.io.read_elem(self.file["raw/var" if layer == "raw" else "var"]) if (
                layer != "raw" or "raw" in self.file) else None
        except (OSError, KeyError, ValueError) as exc:
            raise BiovaeError(f"cannot read {self.path} as .h5ad: {exc}", "check that the file is complete") from None
        self._matrix = self._find_matrix(var)
        self.genes = np.asarray(pd.Index(var.index).astype(str), dtype=object)
        self.cells = np.asarray(pd.Index(self.obs.index).astype(str), dtype=object)
        if len(set(self.genes)) < len(self.genes):
            self.genes = np.asarray(ad.utils.make_index_unique(pd.Index(self.genes)), dtype=object)
        require(len(self.cells) == self.shape[0] and len(self.genes) == self.shape[1],
                f"{self.path}: the matrix is {self.shape[0]} x {self.shape[1]} but the file names "
                f"{len(self.cells)} cells and {len(self.genes)} genes", "write the file again with anndata")
        require(self.shape[0] > 0 and self.shape[1] > 0, f"{self.path} has an empty matrix {self.shape}",
                "give at least one cell and one gene")
        per_row = self._stored_bytes() / self.shape[0]
        self.chunk_rows = int(max(64, min(self.shape[0], CHUNK_BYTES // max(per_row, 1.0))))

    def _find_matrix(self, var):
        where = "X" if self.layer is None else "raw/X" if self.layer == "raw" else f"layers/{self.layer}"
        if where not in self.file:
            if self.layer == "raw":
                raise BiovaeError(f"{self.path} has no .raw", "choose another layer")
            if self.layer is not None:
                names = ", ".join(self.file["layers"].keys()) if "layers" in self.file else ""
                raise BiovaeError(f"{self.path} has no layer {self.layer!r}",
                                  f"choose one of: {names or 'none (use X)'} or 'raw'")
            raise BiovaeError(f"{self.path} has no matrix in X", "name one of its layers")
        m = self.file[where]
        if isinstance(m, h5py.Dataset):
            require(m.ndim == 2, f"{self.path}: {where} is not a 2-D matrix", "write it as cells x genes")
            self.sparse, self.shape = False, (int(m.shape[0]), int(m.shape[1]))
            return m
        kind = m.attrs.get("encoding-type", "")
        if kind == "csc_matrix":
            raise BiovaeError(f"{self.path}: {where} is stored by columns (CSC), which cannot be read by cells",
                              "rewrite it by rows: adata.X = adata.X.tocsr(); adata.write_h5ad(...)")
        require(kind == "csr_matrix", f"{self.path}: {where} is a {kind or 'group'!r}, not a matrix",
                "store the expression as a dense or CSR matrix")
        self.sparse, self.shape = True, tuple(int(s) for s in m.attrs["shape"])
        self.indptr = np.asarray(m["indptr"][:], dtype=np.int64)
        return m

    def _stored_bytes(self) -> float:
        m = self._matrix
        if not self.sparse:
            return float(m.shape[0]) * m.shape[1] * m.dtype.itemsize
        return float(self.indptr[-1]) * (m["data"].dtype.itemsize + m["indices"].dtype.itemsize)

    @property
    def n_obs(self) -> int:
        return self.shape[0]

    @property
    def n_vars(self) -> int:
        return self.shape[1]

    def rows(self, start: int, stop: int):
        """Rows [start, stop) as float32: scipy CSR when stored sparse, else a dense array."""
        m = self._matrix
        if not self.sparse:
            return np.asarray(m[start:stop], dtype=np.float32)
        a, b = self.indptr[start], self.indptr[stop]
        data = np.asarray(m["data"][a:b], dtype=np.float32)
        indices = np.asarray(m["indices"][a:b], dtype=np.int32)
        return sp.csr_matrix((data, indices, self.indptr[start:stop + 1] - a), shape=(stop - start, self.shape[1]))

    def chunks(self, rows: int | None = None):
        """Yield (start, rows [start, start + chunk)) over the whole matrix, in file order."""
        step = rows or self.chunk_rows
        for a in range(0, self.shape[0], step):
            yield a, self.rows(a, min(a + step, self.shape[0]))

    def close(self) -> None:
        self.file.close()


def open_backed(data, layer: str | None = None) -> BackedExpression:
    """A BackedExpression for an .h5ad path, an AnnData opened with backed="r", or one already
    opened (returned as it is when no other layer is asked for)."""
    if isinstance(data, BackedExpression):
        require(layer is None or layer == data.layer, f"{data.path} was opened with layer {data.layer!r}",
                f"open it with layer {layer!r}")
        return data
    if isinstance(data, ad.AnnData):
        require(data.isbacked, "backed reading needs an AnnData opened with backed='r', or an .h5ad path",
                "pass the .h5ad path, or fit without backed")
        return BackedExpression(data.filename, layer)
    if isinstance(data, (str, Path)):
        return BackedExpression(data, layer)
    raise BiovaeError(f"backed reading needs an .h5ad path, got {type(data).__name__}",
                      "pass the .h5ad path, or fit without backed")


def write_backed(path, blocks, var: pd.DataFrame) -> None:
    """Write an .h5ad atomically, its X (CSR, float32) appended block by block, so that a matrix
    larger than memory can be written. blocks: an iterable of (obs DataFrame of the block's
    cells, CSR rows with len(var) columns); the cell annotations are kept in memory."""
    from biovae.io.atomic import atomic_file

    n_genes, parts = len(var), []
    with atomic_file(Path(path)) as tmp:
        with h5py.File(tmp, "w") as f:
            g = f.create_group("X")
            data = g.create_dataset("data", shape=(0,), maxshape=(None,), dtype=np.float32, chunks=(1 << 18,))
            indices = g.create_dataset("indices", shape=(0,), maxshape=(None,), dtype=np.int32, chunks=(1 << 18,))
            indptr = [np.zeros(1, dtype=np.int64)]
            for obs, x in blocks:
                x = sp.csr_matrix(x, dtype=np.float32)
                require(x.shape[1] == n_genes and x.shape[0] == len(obs),
                        f"a block of {x.shape[0]} x {x.shape[1]} does not match {len(obs)} cells x {n_genes} genes")
                a = data.shape[0]
                data.resize((a + x.nnz,))
                indices.resize((a + x.nnz,))
                data[a:], indices[a:] = x.data, x.indices
                indptr.append(x.indptr[1:].astype(np.int64) + a)
                parts.append(obs)
            g.create_dataset("indptr", data=np.concatenate(indptr))
            obs = pd.concat(parts) if parts else pd.DataFrame()
            g.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0",
                            "shape": np.array([len(obs), n_genes])})
        # everything but X from a small AnnData written beside it
        skeleton = Path(str(tmp) + ".skeleton.h5ad")
        try:
            ad.AnnData(obs=obs, var=var).write_h5ad(skeleton)
            with h5py.File(skeleton, "r") as src, h5py.File(tmp, "a") as f:
                for key in src:
                    if key != "X":
                        src.copy(src[key], f, key)
                f.attrs.update(dict(src.attrs))
        finally:
            skeleton.unlink(missing_ok=True)
