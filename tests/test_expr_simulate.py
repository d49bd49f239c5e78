"""The VAExprs vignette simulation: the properties its description states."""

import numpy as np
import pytest
from scipy.stats import norm

from biovae.errors import BiovaeError
from biovae.expr.simulate import simulate_vaexprs


@pytest.fixture(scope="module")
def sim():
    return simulate_vaexprs(seed=1)


def test_layout(sim):
    assert sim.shape == (300, 1000) and sim.X.dtype == np.float32
    assert sim.obs["group"].value_counts().to_dict() == {"group1": 100, "group2": 100, "group3": 100}
    assert list(sim.obs["group"][:2]) == ["group1"] * 2 and sim.obs_names[0] == "cell1"
    up = sim.var["up_in"]
    assert up.value_counts().to_dict() == {"": 700, "group1": 100, "group2": 100, "group3": 100}
    # disjoint blocks, in order: genes 1-100 up in group 1, 101-200 in group 2, 201-300 in group 3
    assert (up.iloc[:100] == "group1").all() and (up.iloc[200:300] == "group3").all()
    assert sim.var_names[100] == "gene101" and up["gene101"] == "group2"


def test_background_is_normal_mean_5_sd_5_clipped_at_0(sim):
    background = sim.X[:, 300:].ravel()  # 700 genes up in no group: 210,000 values
    assert background.min() == 0.0
    # sd 5, not variance 5: P(X < 0) = Phi(-1) = 0.159 (it would be 0.013 with variance 5)
    assert (background == 0).mean() == pytest.approx(norm.cdf(-1), abs=0.004)
    clipped_mean = 5 * norm.cdf(1) + 5 * norm.pdf(1)  # E[max(0, X)] for X ~ N(5, 5^2)
    assert background.mean() == pytest.approx(clipped_mean, abs=0.03)
    positive = background[background > 0]
    assert np.median(positive) == pytest.approx(5 + 5 * norm.ppf(0.5 + 0.5 * norm.cdf(-1)), abs=0.1)


def test_each_group_has_its_own_genes_up(sim):
    X, groups, var = sim.X, sim.obs["group"].to_numpy(), sim.var
    shifts = var["shift"].to_numpy()
    assert (shifts[300:] == 0).all()
    assert shifts[:300].mean() == pytest.approx(6, abs=2.0)  # 300 draws of N(6, 10)
    assert shifts[:300].std() == pytest.approx(10, abs=1.5)
    for g in ("group1", "group2", "group3"):
        genes = (var["up_in"] == g).to_numpy() & (shifts > 5)  # clearly up, little clipping
        inside = X[groups == g][:, genes].mean(0)
        outside = X[groups != g][:, genes].mean(0)
        np.testing.assert_allclose(inside - outside, shifts[genes], atol=2.5)
        # the other groups see these genes at background level
        assert outside.mean() == pytest.approx(5.42, abs=0.3)


def test_seeded(sim):
    assert np.array_equal(simulate_vaexprs(seed=1).X, sim.X)
    assert not np.array_equal(simulate_vaexprs(seed=2).X, sim.X)


def test_bad_sizes():
    with pytest.raises(BiovaeError, match="4 groups x 300 up-regulated genes do not fit in 1000"):
        simulate_vaexprs(n_groups=4, n_up=300)
