"""Anomaly scores: a cell type the model never saw scores higher than the types it was fitted on."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import biovae.expr as ex
from biovae.engine.vae import VAE
from biovae.errors import BiovaeError
from biovae.evaluate.generation import split_cells
from biovae.tl import SCORES, anomaly_scores, fit_reference

HELD_OUT = "CD19+ B"


@pytest.fixture(scope="module")
def split(pbmc):
    raw = pbmc.raw.to_adata()
    raw.obs = pbmc.obs[["bulk_labels"]].copy()
    train, test = split_cells(raw, 0.2, label_key="bulk_labels", seed=0)
    train = train[train.obs["bulk_labels"] != HELD_OUT].copy()
    model = ex.fit(train, likelihood="normal", epochs=60, patience=15, progress=False, seed=0)
    return model, train, test


def test_held_out_type_scores_higher_than_trained_types(split):
    model, _, test = split
    scores = anomaly_scores(model, test)
    assert list(scores.columns) == list(SCORES) and list(scores.index) == list(test.obs_names)
    scaled = ["std_resid", "knn_resid"]  # need the training cells' scales (fit_score_scales): NaN without
    assert scores[scaled].isna().all().all()
    assert np.isfinite(scores.drop(columns=scaled).to_numpy()).all() and (scores["encoder_var"] > 0).all()
    novel = (test.obs["bulk_labels"] == HELD_OUT).to_numpy()
    auc = {k: roc_auc_score(novel, scores[k]) for k in SCORES if k not in scaled}
    for k in ("neg_elbo", "recon_nll", "recon_mse", "mahalanobis", "latent_knn"):
        assert auc[k] > 0.85, auc
    assert np.allclose(scores["neg_elbo"], scores["recon_nll"] + scores["kl"], rtol=1e-4, atol=1e-3)


def test_reference_stored_with_the_model(split, tmp_path):
    model, train, test = split
    fitted = fit_reference(model, train)
    assert fitted.shape == (train.n_obs, model.vae.latent_dim)
    model.save(tmp_path / "m")
    back = ex.load(tmp_path / "m")
    a, b = anomaly_scores(model, test[:20]), anomaly_scores(back, test[:20])
    assert np.allclose(a.to_numpy(), b.to_numpy(), rtol=1e-4, atol=1e-5, equal_nan=True)
    given = anomaly_scores(model, test[:20], reference=train)
    assert np.allclose(given["mahalanobis"], a["mahalanobis"], rtol=1e-4)


def test_score_scales_give_the_default_score(split, tmp_path):
    """fit_score_scales keeps the training cells' residual spread and score scales in the model
    (saved with it): knn_resid is then finite, centred near 0 on the training cells, and ranks
    the unseen type high."""
    from biovae.tl.anomaly import fit_score_scales

    model, train, test = split
    model = ex.load(_saved(model, tmp_path / "copy"))  # a copy: the other tests score without scales
    scales = fit_score_scales(model, train)
    assert scales.feature_sd.shape == (model.vae.n_features,) and (scales.feature_sd > 0).all()
    on_train = anomaly_scores(model, train)
    assert abs(float(on_train["knn_resid"].median())) < 0.5
    scores = anomaly_scores(model, test)
    assert np.isfinite(scores.to_numpy()).all()
    novel = (test.obs["bulk_labels"] == HELD_OUT).to_numpy()
    assert roc_auc_score(novel, scores["knn_resid"]) > 0.85
    assert roc_auc_score(novel, scores["std_resid"]) > 0.85
    back = ex.load(_saved(model, tmp_path / "m"))
    assert np.allclose(anomaly_scores(back, test[:20])["knn_resid"], scores["knn_resid"][:20], rtol=1e-4, atol=1e-5)


def _saved(model, folder):
    model.save(folder)
    return folder


def test_bad_inputs(split):
    model, _, test = split
    with pytest.raises(BiovaeError, match="lacks 5 of the"):
        anomaly_scores(model, test[:, 5:])
    vae = VAE(6, latent_dim=2, hidden=(8,), seed=0)
    x = np.random.default_rng(0).normal(size=(30, 6)).astype(np.float32)
    with pytest.raises(BiovaeError, match="no training latents"):
        anomaly_scores(vae, x)
    with pytest.raises(BiovaeError, match="takes 6 values per sample"):
        anomaly_scores(vae, x[:, :4], reference=x)
    assert anomaly_scores(vae, x, reference=x).shape == (30, len(SCORES))


def test_backed_cells_score_as_in_memory(split, tmp_path, monkeypatch):
    """An .h5ad opened with backed="r" is scored by row chunks (here 64-row chunks read in
    50-row blocks that straddle them) to the same numbers as the whole matrix in memory."""
    import anndata as ad

    import biovae.engine.data as engine_data
    import biovae.io.backed as backed_io

    model, _, test = split
    monkeypatch.setattr(backed_io, "CHUNK_BYTES", 1)
    monkeypatch.setattr(engine_data, "eval_rows", lambda n_features, values=0: 50)
    path = tmp_path / "cells.h5ad"
    test.write_h5ad(path)
    whole = anomaly_scores(model, test)
    cells = ad.read_h5ad(path, backed="r")
    try:
        chunked = anomaly_scores(model, cells)
    finally:
        cells.file.close()
    assert list(chunked.index) == list(whole.index)
    assert np.allclose(chunked.to_numpy(), whole.to_numpy(), rtol=1e-5, atol=1e-5, equal_nan=True)


def test_anomaly_models_find_an_unseen_t_cell_subset(pbmc):
    """The recommended recipe (fit_anomaly_models: highly variable genes, latent 32, dropout 0,
    an ensemble) finds regulatory T cells it never saw among other T cells better than PCA
    reconstruction error on the same genes (benchmark split 0: 0.78 against 0.66-0.68)."""
    from sklearn.decomposition import PCA

    from biovae.expr.preprocess import Preprocessor
    from biovae.tl import ANOMALY_SETTINGS, fit_anomaly_models
    from biovae.expr.genes import select_genes

    held = "CD4+/CD25 T Reg"
    raw = pbmc.raw.to_adata()
    raw.obs = pbmc.obs[["bulk_labels"]].copy()
    raw.var["highly_variable"] = pbmc.var["highly_variable"].reindex(raw.var_names).to_numpy(bool)
    train, test = split_cells(raw, 0.2, label_key="bulk_labels", seed=0)
    train = train[train.obs["bulk_labels"] != held].copy()
    scored = raw[(raw.obs["bulk_labels"] == held).to_numpy() | raw.obs_names.isin(test.obs_names)].copy()
    novel = (scored.obs["bulk_labels"] == held).to_numpy()
    models = fit_anomaly_models(train, n_models=2, seed=0, progress=False)
    assert all(len(m.genes) == int(raw.var["highly_variable"].sum()) for m in models)
    assert models[0].vae.latent_dim == ANOMALY_SETTINGS["latent_dim"]
    scores = anomaly_scores(models, scored)  # all 765 genes given; each model takes its own
    single = [anomaly_scores(m, scored) for m in models]
    assert np.allclose(scores.to_numpy(), (single[0].to_numpy() + single[1].to_numpy()) / 2, rtol=1e-5, equal_nan=True)
    pre = Preprocessor("normal").fit(select_genes(train).X)
    x_train, x = pre.transform_data(select_genes(train).X), pre.transform_data(select_genes(scored).X)
    pca = PCA(10, random_state=0).fit(x_train)
    pca_auc = roc_auc_score(novel, ((pca.inverse_transform(pca.transform(x)) - x) ** 2).mean(1))
    knn_auc = roc_auc_score(novel, scores["latent_knn"])
    assert knn_auc > 0.72 and knn_auc > pca_auc + 0.04, (knn_auc, pca_auc)


def test_gene_selection_errors(pbmc):
    from biovae.expr.genes import select_genes

    raw = pbmc.raw.to_adata()
    with pytest.raises(BiovaeError, match="no var column 'highly_variable'"):
        select_genes(raw)
    assert select_genes(raw, list(raw.var_names[:3])).n_vars == 3 and select_genes(raw, None) is raw
    with pytest.raises(BiovaeError, match="empty list"):
        anomaly_scores([], raw)
    raw.var["means"] = np.arange(raw.n_vars, dtype=float)
    with pytest.raises(BiovaeError, match="'means' is not a yes/no flag"):
        select_genes(raw, "means")
    with pytest.raises(BiovaeError, match="1 of the 2 selected genes are not in the data .e.g. NOTAGENE"):
        select_genes(raw, [raw.var_names[0], "NOTAGENE"])


def test_raw_layer_keeps_the_gene_flags_of_var(pbmc, tmp_path):
    """read_expression(layer="raw") carries .var's highly_variable flags to .raw's genes, so
    `biovae fit --layer raw --genes highly_variable` fits on the flagged genes."""
    from biovae.expr.genes import select_genes
    from biovae.io.expression import read_expression

    path = tmp_path / "pbmc.h5ad"
    pbmc.write_h5ad(path)
    raw = read_expression(path, layer="raw")
    flagged = set(pbmc.var_names[pbmc.var["highly_variable"].to_numpy(bool)])
    assert set(select_genes(raw, "highly_variable").var_names) == flagged & set(raw.var_names)
    listed = tmp_path / "genes.txt"
    listed.write_text("# my genes\n" + "\n".join(sorted(flagged)[:5]) + "\n")
    assert list(select_genes(raw, str(listed)).var_names) == [g for g in raw.var_names if g in sorted(flagged)[:5]]
