"""Reading, writing and validating expression matrices, on real data."""

import gzip
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from biovae.errors import BiovaeError
from biovae.io.expression import (
    align_genes, as_matrix, check_shape, check_values, get_labels, read_expression,
    write_expression,
)

LUNG = Path(__file__).resolve().parent / "data" / "expression" / "lung_development.h5ad"


@pytest.fixture(scope="module")
def lung():
    return ad.read_h5ad(LUNG)


@pytest.fixture(scope="module")
def pbmc():
    sc = pytest.importorskip("scanpy")
    return sc.datasets.pbmc68k_reduced()


def test_csv_round_trip_keeps_values_and_names(lung, tmp_path):
    path = tmp_path / "lung.csv"
    write_expression(lung, path)
    back = read_expression(path)
    assert back.shape == lung.shape
    assert list(back.var_names) == list(lung.var_names)
    assert list(back.obs_names) == list(lung.obs_names)
    np.testing.assert_allclose(back.X, lung.X, rtol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["lung.csv"]  # no temporary file left


def test_tsv_gz_with_genes_in_rows(lung, tmp_path):
    path = tmp_path / "lung_genes_by_cells.tsv.gz"
    pd.DataFrame(lung.X.T, index=lung.var_names, columns=lung.obs_names).to_csv(path, sep="\t")
    back = read_expression(path, genes_in_rows=True)
    assert back.shape == (185, 218)
    assert back.var_names[0] == lung.var_names[0] and back.obs_names[-1] == lung.obs_names[-1]
    np.testing.assert_allclose(back.X, lung.X, rtol=1e-6)


@pytest.mark.parametrize("features_name", ["features.tsv.gz", "genes.tsv"])
def test_10x_folder(pbmc, tmp_path, features_name):
    X = pbmc.raw.X.tocsr()[:50]
    folder = tmp_path / "filtered_feature_bc_matrix"
    folder.mkdir()
    with gzip.open(folder / "matrix.mtx.gz", "wb") as fh:
        scipy.io.mmwrite(fh, sp.coo_matrix(X.T))
    pd.Series(pbmc.obs_names[:50]).to_csv(folder / "barcodes.tsv", sep="\t", header=False, index=False)
    ids = [f"ENSG{i:05d}" for i in range(X.shape[1])]
    features = pd.DataFrame({"id": ids, "symbol": pbmc.raw.var_names})
    if features_name.startswith("features"):
        features["type"] = "Gene Expression"
    features.to_csv(folder / features_name, sep="\t", header=False, index=False)
    back = read_expression(folder)
    assert back.shape == (50, 765)
    assert list(back.var_names) == list(pbmc.raw.var_names)
    assert back.var["gene_ids"].iloc[3] == "ENSG00003"
    np.testing.assert_allclose(back.X.toarray(), X.toarray(), rtol=1e-3)
    # the matrix file itself works too
    assert read_expression(folder / "matrix.mtx.gz").shape == (50, 765)


def test_10x_folder_errors_name_the_file(pbmc, tmp_path):
    folder = tmp_path / "tenx"
    folder.mkdir()
    scipy.io.mmwrite(folder / "matrix.mtx", sp.coo_matrix(np.ones((4, 3))))  # 4 genes, 3 cells
    pd.Series(["a", "b", "c"]).to_csv(folder / "features.tsv", sep="\t", header=False, index=False)
    with pytest.raises(BiovaeError, match="barcodes.tsv"):
        read_expression(folder)
    pd.Series(["AAA", "CCC", "GGG"]).to_csv(folder / "barcodes.tsv", sep="\t", header=False, index=False)
    with pytest.raises(BiovaeError, match=r"features.tsv lists 3 genes .* 4 rows"):
        read_expression(folder)


def test_h5ad_layer_and_raw(pbmc, tmp_path):
    path = tmp_path / "pbmc.h5ad"
    write_expression(pbmc, path)
    raw = read_expression(path, layer="raw")
    np.testing.assert_allclose(raw.X.toarray(), pbmc.raw.X.toarray())
    assert "bulk_labels" in raw.obs
    with pytest.raises(BiovaeError, match="no layer 'counts'"):
        read_expression(path, layer="counts")


@pytest.mark.parametrize("name, match", [
    ("missing.h5ad", "does not exist"),
    ("data.xlsx", "cannot tell the format"),
])
def test_bad_paths(tmp_path, name, match):
    if name.endswith(".xlsx"):
        (tmp_path / name).write_text("x")
    with pytest.raises(BiovaeError, match=match):
        read_expression(tmp_path / name)


def test_table_problems_are_named(lung, tmp_path):
    frame = pd.DataFrame(lung.X[:5, :4].copy(), index=lung.obs_names[:5], columns=lung.var_names[:4])
    frame.iloc[2, 1] = np.nan
    frame.to_csv(tmp_path / "nan.csv")
    with pytest.raises(BiovaeError, match=f"cell '{lung.obs_names[2]}', gene '{lung.var_names[1]}'"):
        read_expression(tmp_path / "nan.csv")
    frame = frame.fillna(0).astype(object)
    frame.iloc[3, 2] = "high"
    frame.to_csv(tmp_path / "text.csv")
    with pytest.raises(BiovaeError, match=f"column '{lung.var_names[2]}' is not numeric.*'high'"):
        read_expression(tmp_path / "text.csv")
    np.savetxt(tmp_path / "noheader.csv", lung.X[:3, :4], delimiter=",")
    with pytest.raises(BiovaeError, match="header row is all numbers"):
        read_expression(tmp_path / "noheader.csv")


def test_as_matrix_accepts_every_input_kind(pbmc):
    X, genes, cells = as_matrix(pbmc, layer="raw")
    assert sp.isspmatrix_csr(X) and X.dtype == np.float32 and X.shape == (700, 765)
    assert genes[0] == pbmc.raw.var_names[0] and cells[-1] == pbmc.obs_names[-1]
    frame = pd.DataFrame(X[:10].toarray(), index=cells[:10], columns=genes)
    D, g2, c2 = as_matrix(frame)
    assert isinstance(D, np.ndarray) and D.dtype == np.float32 and list(c2) == list(cells[:10])
    N, g3, _ = as_matrix(np.arange(6).reshape(2, 3))
    assert N.dtype == np.float32 and list(g3) == ["gene_0", "gene_1", "gene_2"]
    with pytest.raises(BiovaeError, match="2-D"):
        as_matrix(np.arange(5))
    with pytest.raises(BiovaeError, match="no layer"):
        as_matrix(pbmc, layer="spliced")


def test_check_values(lung):
    X = lung.X.copy()
    check_values(X, "gaussian")  # FPKM: finite, non-negative
    with pytest.raises(BiovaeError, match="non-integer.*'nb' likelihood"):
        check_values(lung, "nb", "lung_development.h5ad")
    check_values(np.round(X), "zinb")
    X[7, 11] = -1.0
    X[9, 3] = -2.0
    with pytest.raises(BiovaeError, match=f"2 negative.*cell '{lung.obs_names[7]}', gene '{lung.var_names[11]}'"):
        check_values(ad.AnnData(X, obs=lung.obs[[]], var=lung.var[[]]))
    X[4, 5] = np.inf
    with pytest.raises(BiovaeError, match="1 NaN or infinite.*row 4.*column 5"):
        check_values(sp.csr_matrix(X), "gaussian")


def test_get_labels(lung):
    labels = get_labels(lung, "age")
    assert labels.shape == (185,) and "Embryonic day 14.5" in set(labels)
    with pytest.raises(BiovaeError, match="'cell_type' is not in.*age"):
        get_labels(lung, "cell_type")
    broken = lung.copy()
    broken.obs["age"] = broken.obs["age"].astype(object)
    broken.obs.iloc[12, broken.obs.columns.get_loc("age")] = np.nan
    broken.obs.iloc[40, broken.obs.columns.get_loc("age")] = "  "
    with pytest.raises(BiovaeError, match=f"empty or NaN for 2 cell.*{lung.obs_names[12]}"):
        get_labels(broken, "age")
    with pytest.raises(BiovaeError, match="3 entries but the data has 185"):
        get_labels(lung, ["a", "b", "c"])


def test_zero_cells_or_genes(lung):
    with pytest.raises(BiovaeError, match="no cells"):
        check_shape(lung[:0].X, "lung")
    with pytest.raises(BiovaeError, match="no genes"):
        as_matrix(lung[:, []])


def test_align_genes(lung):
    genes = list(lung.var_names[::-1][:50])
    aligned = align_genes(lung, genes)
    assert list(aligned.var_names) == genes
    np.testing.assert_array_equal(aligned.X[:, 0], lung.X[:, -1])
    assert align_genes(lung, lung.var_names) is lung
    with pytest.raises(BiovaeError, match="lacks 2 of the 3 genes.*Xist, Sftpc"):
        align_genes(lung, [lung.var_names[0], "Xist", "Sftpc"])
