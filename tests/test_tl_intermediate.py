"""Generated cells of a held-out time point (biovae.tl.intermediate_cells) on a small made-up
time course: 4 time points on a curved path, two sub-populations per point, FPKM-like values."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import biovae.expr as ex
from biovae.errors import BiovaeError
from biovae.tl import intermediate_cells, predict_intermediate
from biovae.tl.intermediate import transport_pairs

TIMES = ["day 0", "day 1", "day 2", "day 3"]
FAST = dict(likelihood="normal", latent_dim=4, hidden=(32,), epochs=40, patience=10, progress=False)


def time_course(seed=0, per_point=40, genes=30) -> ad.AnnData:
    """Cells along t in {0, 1, 2, 3}: log expression = a smooth function of t (each gene its own
    curve) plus a branch offset (half the cells) plus noise; values on an FPKM-like scale."""
    rng = np.random.default_rng(seed)
    phase, slope = rng.uniform(0, np.pi, genes), rng.normal(0, 1, genes)
    branch = rng.normal(0, 0.8, genes)
    rows, labels = [], []
    for t, name in enumerate(TIMES):
        side = rng.random(per_point) < 0.5
        log = (2 + np.sin(t + phase) + 0.5 * slope * t)[None, :] + side[:, None] * branch
        rows.append(np.expm1(np.maximum(log + rng.normal(0, 0.3, (per_point, genes)), 0)) * 10)
        labels += [name] * per_point
    obs = pd.DataFrame({"time": labels}, index=[f"c{i}" for i in range(len(labels))])
    return ad.AnnData(np.vstack(rows).astype(np.float32), obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(genes)]))


@pytest.fixture(scope="module")
def course():
    return time_course()


@pytest.fixture(scope="module")
def model(course):
    return ex.fit(course[course.obs["time"] != "day 2"].copy(), seed=0, **FAST)


def _log_mean(x):
    return np.log1p(np.asarray(x, dtype=float)).mean(0)


def test_cells_of_the_held_out_point_lie_between_its_neighbours(course, model):
    cells = intermediate_cells(model, course, "time", "day 2", seed=0)
    assert cells.shape == (40, 30) and list(cells.var_names) == list(course.var_names)
    assert set(cells.obs["time"]) == {"day 2"} and np.all(cells.obs["fraction"] == 0.5)
    assert np.all(cells.X >= 0) and cells.X.max() > 10  # the data's own (FPKM-like) scale
    assert set(cells.obs["before_cell"]) <= set(course.obs_names[course.obs["time"] == "day 1"])
    assert set(cells.obs["after_cell"]) <= set(course.obs_names[course.obs["time"] == "day 3"])
    means = {t: _log_mean(course[course.obs["time"] == t].X) for t in TIMES}
    generated = _log_mean(cells.X)
    linear = (means["day 1"] + means["day 3"]) / 2
    assert np.sqrt(np.mean((generated - linear) ** 2)) < np.sqrt(np.mean((means["day 1"] - linear) ** 2))
    assert cells.X.std(0).mean() > 0  # a population, not one profile repeated
    again = intermediate_cells(model, course, "time", "day 2", n=7, seed=0)
    assert again.n_obs == 7 and np.array_equal(again.X, intermediate_cells(model, course, "time", "day 2", n=7).X)


def test_settings_fit_a_model_without_the_held_out_cells(course):
    cells = intermediate_cells({**FAST, "epochs": 10}, course, "time", "day 1", n=12, seed=1)
    assert cells.n_obs == 12 and set(cells.obs["time"]) == {"day 1"}
    assert not set(cells.obs["before_cell"]) & set(course.obs_names[course.obs["time"] == "day 1"])
    assert cells.uns["biovae_intermediate"]["likelihood"] == "normal"
    default = intermediate_cells({"epochs": 3, "progress": False}, course, "time", "day 1", n=5, seed=1)
    assert default.uns["biovae_intermediate"]["likelihood"] == "hurdle_cell" and np.all(default.X >= 0)


def test_transport_pairs_match_nearby_cells():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 2))
    b = a[::-1] + 0.01  # each point of a has a near twin in b
    i, j = transport_pairs(a, b, 200, rng)
    assert np.all(j == len(a) - 1 - i)


def test_predict_intermediate_reports_the_generated_cells_mean(course):
    res = predict_intermediate({**FAST, "epochs": 10}, course, "time", "day 2", n_genes=20, seed=0)
    assert "cells" in res.metrics.index and "cells" in res.profiles.obs_names
    assert np.isfinite(res.metrics.loc["cells", "pearson_r"]) and res.metrics.loc["cells", "pearson_r"] > 0.5


@pytest.mark.parametrize("hold_out, n, message", [
    ("day 0", None, "no neighbour on both sides"),
    ("day 3", None, "no neighbour on both sides"),
    ("day 9", None, "unknown time point"),
    ("day 2", 0, "n must be"),
    ("day 2", -3, "n must be"),
])
def test_bad_requests_say_what_is_wrong(course, model, hold_out, n, message):
    with pytest.raises(BiovaeError, match=message):
        intermediate_cells(model, course, "time", hold_out, n=n)


def test_a_model_fitted_on_other_genes_is_refused(course, model):
    other = course.copy()
    other.var_names = [f"x{j}" for j in range(other.n_vars)]
    with pytest.raises(BiovaeError, match="different genes"):
        intermediate_cells(model, other, "time", "day 2")
    with pytest.raises(BiovaeError, match="fitted with cells of the held-out"):
        labelled = ex.fit(course, "time", seed=0, **{**FAST, "epochs": 2})
        intermediate_cells(labelled, course, "time", "day 2")


def test_the_sampling_method_and_the_shift_keep_to_their_rules(course, model):
    shifted = intermediate_cells(model, course, "time", "day 2", n=30, seed=2)
    starts = np.where(shifted.obs["start"] == "before", shifted.obs["before_cell"], shifted.obs["after_cell"])
    assert np.all(shifted.X[np.asarray(course[starts].X) == 0] == 0)  # undetected genes stay undetected
    sampled = intermediate_cells(model, course, "time", "day 2", n=30, seed=2, method="sample")
    assert sampled.uns["biovae_intermediate"]["method"] == "sample" and np.all(sampled.X >= 0)
    assert not np.allclose(sampled.X, shifted.X)
    with pytest.raises(BiovaeError, match="unknown method"):
        intermediate_cells(model, course, "time", "day 2", method="midpoint")


def test_nearest_method_copies_distinct_real_neighbour_cells(course, model):
    cells = intermediate_cells(model, course, "time", "day 2", n=30, seed=0, method="nearest")
    neighbours = course[course.obs["time"].isin(["day 1", "day 3"])]
    assert cells.obs["source_cell"].is_unique and set(cells.obs["source_cell"]) <= set(neighbours.obs_names)
    assert np.array_equal(cells.X, np.asarray(course[cells.obs["source_cell"].to_numpy()].X))
    assert set(cells.obs["start"]) <= {"before", "after"}
    many = intermediate_cells(model, course, "time", "day 2", n=100, seed=0, method="nearest")
    assert many.obs["source_cell"].nunique() == 80  # all 80 neighbour cells taken before any is reused


def test_nearest_unused_takes_the_nearest_free_cell():
    from biovae.tl.intermediate import nearest_unused

    cells = np.array([[0.0], [1.0], [2.0], [10.0]])
    assert nearest_unused(np.array([[0.1], [0.2], [2.9]]), cells, chunk=2).tolist() == [0, 1, 2]
    assert nearest_unused(np.array([[9.0]] * 5), cells).tolist() == [3, 2, 1, 0, 3]  # reused once all are taken
