"""Calibration of generated non-zero values (biovae.expr.calibrate): each gene's non-zero values
are mapped onto the training cells' quantiles, per label; zeros, ranks and the file round trip
stay as they were."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import biovae.expr as ex
from biovae.engine import state
from biovae.expr import calibrate
from biovae.expr.calibrate import MarginalMaps, quantile_table


def _skewed_cells(seed=0, n=240, genes=12):
    """Full-length-like values: log-normal with a long right tail, ~40 % zeros, two labels."""
    rng = np.random.default_rng(seed)
    labels = np.array(["a", "b"] * (n // 2))
    x = np.exp(rng.gamma(1.5, 1.2, size=(n, genes)) + 1.0)
    x[labels == "b", :4] *= 8.0
    x[rng.random((n, genes)) < 0.4] = 0.0
    return ad.AnnData(X=x, obs=pd.DataFrame({"type": labels}, index=[f"c{i}" for i in range(n)]))


@pytest.fixture(scope="module")
def fitted():
    data = _skewed_cells()
    model = ex.fit(data, labels="type", likelihood="hurdle", epochs=15, hidden=[16], latent_dim=2,
                   progress=False, seed=3)
    return data, model


def _generate(model, calibrated: bool):
    kept = dict(model.vae.state)
    if not calibrated:
        for key in [k for k in model.vae.state if k.startswith(MarginalMaps.namespace + ".")]:
            del model.vae.state[key]
    try:
        return np.asarray(model.generate(labels={"a": 300, "b": 300}, seed=7).X, dtype=np.float64)
    finally:
        model.vae.state = kept


def test_quantile_table_skips_genes_with_few_non_zero_values():
    y = np.zeros((30, 2))
    y[:, 0] = np.arange(1, 31)
    y[:5, 1] = 1.0
    table = quantile_table(y)
    assert table[0, 0] == 1 and table[0, -1] == 30 and np.isnan(table[1]).all()


def test_calibrated_values_keep_detection_and_stay_within_each_labels_training_range(fitted):
    data, model = fitted
    assert state.get(model.vae.state, MarginalMaps) is not None
    raw, cal = _generate(model, False), _generate(model, True)
    # which genes a cell detects is the hurdle's: uncalibrated, a detected gene whose Normal draw
    # fell below 0 came out as 0 on the input scale; calibrated, it keeps a training value
    assert ((cal == 0) <= (raw == 0)).all() and (cal == 0).sum() > 0.9 * (raw == 0).sum()
    assert (cal.max(0) <= np.asarray(data.X).max(0) * (1 + 1e-4)).all()
    # on the model's scale each label's non-zero values stay within that label's training range
    y, labels = model.model_input(data), data.obs["type"].to_numpy()
    rng = np.random.default_rng(0)
    for lab in ["a", "b"]:
        mapped = calibrate.apply(model, lab, model.decode_draws(lab, 300, rng))
        real = np.where(y[labels == lab] != 0, y[labels == lab], np.nan)
        gen = np.where(mapped != 0, mapped, np.nan)
        assert (np.nanmax(gen, 0) <= np.nanmax(real, 0) + 1e-5).all()
        assert (np.nanmin(gen, 0) >= np.nanmin(real, 0) - 1e-5).all()


def test_calibration_brings_each_genes_non_zero_quantiles_to_the_training_cells(fitted):
    data, model = fitted
    x, labels = np.asarray(data.X), data.obs["type"].to_numpy()
    levels = [0.1, 0.5, 0.9]

    def error(gen):
        out = []
        for i, lab in enumerate(["a", "b"]):
            real, g = np.log1p(x[labels == lab]), np.log1p(gen[300 * i:300 * (i + 1)])
            for j in range(x.shape[1]):
                r, v = real[:, j][real[:, j] > 0], g[:, j][g[:, j] > 0]
                out.append(np.abs(np.quantile(r, levels) - np.quantile(v, levels)).mean())
        return float(np.mean(out))

    assert error(_generate(model, True)) < 0.5 * error(_generate(model, False))


def test_maps_are_saved_with_the_model_and_not_made_when_switched_off(fitted, tmp_path):
    data, model = fitted
    model.save(tmp_path / "m")
    back = ex.load(tmp_path / "m")
    assert np.array_equal(np.asarray(back.generate(labels={"a": 40}, seed=2).X),
                          np.asarray(model.generate(labels={"a": 40}, seed=2).X))
    plain = ex.fit(data, labels="type", likelihood="hurdle", calibrate=False, epochs=2, hidden=[8], latent_dim=2,
                   progress=False, seed=3)
    assert state.get(plain.vae.state, MarginalMaps) is None


def test_full_length_cells_are_scaled_to_the_training_cells_totals():
    data = _skewed_cells(seed=1)
    x = np.asarray(data.X)
    data.X = x / x.sum(1, keepdims=True) * 1e6  # TPM-like: every cell sums to a million
    model = ex.fit(data, labels="type", likelihood="hurdle", epochs=5, hidden=[16], latent_dim=2, progress=False,
                   seed=2)
    assert model.pre.transform == "log1p"
    totals = np.asarray(model.generate(labels={"a": 100, "b": 100}, seed=4).X, dtype=np.float64).sum(1)
    assert np.median(np.abs(totals / 1e6 - 1)) < 0.01 and totals.max() <= 1e6 * (1 + 1e-4)
