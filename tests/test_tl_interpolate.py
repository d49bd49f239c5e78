"""Latent interpolation (pbmc68k_reduced) and time-course prediction (mouse lung development)."""

from pathlib import Path

import anndata as ad
import numpy as np
import pytest

import biovae.expr as ex
from biovae.errors import BiovaeError
from biovae.evaluate.generation import pearson
from biovae.tl import interpolate, predict_intermediate, time_value

MONO, B = "CD14+ Monocyte", "CD19+ B"
LUNG = Path(__file__).resolve().parent / "data" / "expression" / "lung_development.h5ad"


@pytest.fixture(scope="module")
def cells(pbmc):
    raw = pbmc.raw.to_adata()
    raw.obs = pbmc.obs[["bulk_labels"]].copy()
    return raw


@pytest.fixture(scope="module")
def model(cells):
    return ex.fit(cells, likelihood="normal", latent_dim=8, epochs=60, patience=15, progress=False, seed=0)


def _mean(cells, label):
    return np.asarray(cells[cells.obs["bulk_labels"] == label].X.mean(0)).ravel()


def test_path_starts_and_ends_at_the_endpoints_profiles_and_moves_monotonically(model, cells):
    path = interpolate(model, MONO, B, steps=9, data=cells, label_key="bulk_labels")
    assert path.shape == (9, cells.n_vars) and list(path.var_names) == list(cells.var_names)
    assert np.allclose(path.obs["position"], np.linspace(0, 1, 9)) and path.obsm["X_biovae"].shape == (9, 8)
    mono, b = _mean(cells, MONO), _mean(cells, B)
    assert pearson(path.X[0], mono) > 0.95 and pearson(path.X[0], mono) > pearson(path.X[0], b) + 0.2
    assert pearson(path.X[-1], b) > 0.95 and pearson(path.X[-1], b) > pearson(path.X[-1], mono) + 0.2
    towards_end = [pearson(row, b) for row in path.X]
    away_from_start = [np.linalg.norm(row - path.X[0]) for row in path.X]
    assert np.all(np.diff(towards_end) > -1e-3) and np.all(np.diff(away_from_start) > 0)


def test_slerp_and_data_space_share_the_endpoints(model, cells):
    kw = dict(steps=5, data=cells, label_key="bulk_labels")
    lin = interpolate(model, MONO, B, **kw)
    sph = interpolate(model, MONO, B, path="slerp", **kw)
    assert np.allclose(lin.obsm["X_biovae"][[0, -1]], sph.obsm["X_biovae"][[0, -1]], atol=1e-5)
    assert not np.allclose(lin.obsm["X_biovae"][2], sph.obsm["X_biovae"][2])
    flat = interpolate(model, MONO, B, space="data", **kw)
    m = flat.layers["model"]
    assert np.allclose(m[2], (m[0] + m[-1]) / 2, atol=1e-5)  # a straight line in the model's scale


def test_cells_and_cell_sets_as_endpoints(model, cells):
    b_cells = list(cells.obs_names[cells.obs["bulk_labels"] == B])
    one = interpolate(model, cells.obs_names[0], b_cells, steps=3, data=cells)
    assert one.uns["biovae_interpolation"]["start"] == f"cell {cells.obs_names[0]!r}"
    by_label = interpolate(model, cells.obs_names[0], B, steps=3, data=cells, label_key="bulk_labels")
    assert np.allclose(one.X, by_label.X, atol=1e-5)  # the label's centroid = its cells' centroid


def test_bad_endpoints_say_what_is_wrong(model, cells):
    with pytest.raises(BiovaeError, match="start and end are the same"):
        interpolate(model, B, B, data=cells, label_key="bulk_labels")
    with pytest.raises(BiovaeError, match="unknown end 'Alien cell'.*CD19\\+ B"):
        interpolate(model, B, "Alien cell", data=cells, label_key="bulk_labels")
    with pytest.raises(BiovaeError, match="steps must be at least 2"):
        interpolate(model, MONO, B, steps=1, data=cells, label_key="bulk_labels")
    with pytest.raises(BiovaeError, match="needs the data"):
        interpolate(model, ["x"], B)


def test_time_values():
    assert time_value("E14.5") == 14.5 and time_value("Embryonic day 16.5") == 16.5
    assert time_value("post natal day 107") == 19.5 + 107 and time_value("P0") == 19.5
    assert time_value("Adult", times={"Adult": 80}) == 80
    with pytest.raises(BiovaeError, match="'Adult' has no numeric value"):
        time_value("Adult")


def test_lung_e16_5_from_its_neighbours_beats_linear_interpolation():
    lung = ad.read_h5ad(LUNG)
    res = predict_intermediate(None, lung, "age", hold_out="Embryonic day 16.5", seed=0)
    assert (res.before, res.after, res.fraction) == ("Embryonic day 14.5", "Embryonic day 18.5", 0.5)
    m = res.metrics
    assert m.loc["before", "nearer"] and m.loc["after", "nearer"]  # a tie: both reported
    assert m.loc["vae", "pearson_r"] > m.loc["linear", "pearson_r"] and m.loc["vae", "rmse"] < m.loc["linear", "rmse"]
    assert m.loc["vae", "pearson_r"] > m.loc["after", "pearson_r"]
    assert res.summary()["vae_beats"]["linear"] and "log1p" in res.space
    with pytest.raises(BiovaeError, match="unknown time point 'E15'"):
        predict_intermediate(None, lung, "age", hold_out="E15")
    with pytest.raises(BiovaeError, match="earliest"):
        predict_intermediate(None, lung, "age", hold_out="Embryonic day 14.5")
    with pytest.raises(BiovaeError, match="'Adult' has no numeric value"):
        predict_intermediate(None, lung, "Time", hold_out="E16.5")
