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
    assert np.isfinite(scores.to_numpy()).all() and (scores["encoder_var"] > 0).all()
    novel = (test.obs["bulk_labels"] == HELD_OUT).to_numpy()
    auc = {k: roc_auc_score(novel, scores[k]) for k in SCORES}
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
    assert np.allclose(a.to_numpy(), b.to_numpy(), rtol=1e-4, atol=1e-5)
    given = anomaly_scores(model, test[:20], reference=train)
    assert np.allclose(given["mahalanobis"], a["mahalanobis"], rtol=1e-4)


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
    assert np.allclose(chunked.to_numpy(), whole.to_numpy(), rtol=1e-5, atol=1e-5)
