"""MIG on known factors: exact on the factors themselves, low for mixtures, and raised by beta."""

import numpy as np
import pytest

from biovae.engine.vae import VAE
from biovae.errors import BiovaeError
from biovae.tl import mig, simulate_factors


def test_simulated_factors_are_independent_and_drive_their_own_genes():
    sim = simulate_factors(n_cells=2000, n_factors=3, genes_per_factor=10, levels=5, seed=3)
    assert sim.shape == (2000, 30) and list(sim.obs.columns) == ["factor_0", "factor_1", "factor_2"]
    assert (sim.X >= 0).all() and set(np.unique(sim.obs["factor_1"])) == set(range(5))
    f = sim.obs.to_numpy().astype(float)
    assert np.abs(np.corrcoef(f.T)[np.triu_indices(3, 1)]).max() < 0.06
    own = sim.var["factor"].to_numpy()
    for k in range(3):  # a gene moves with its own factor, not with another one
        mine = [abs(np.corrcoef(sim.X[:, j], f[:, k])[0, 1]) for j in np.flatnonzero(own == k)]
        other = [abs(np.corrcoef(sim.X[:, j], f[:, k])[0, 1]) for j in np.flatnonzero(own != k)]
        assert np.median(mine) > 0.5 > 0.1 > np.max(other)
    assert np.array_equal(simulate_factors(n_cells=50, seed=1).X, simulate_factors(n_cells=50, seed=1).X)


def test_mig_is_one_for_the_factors_and_low_for_a_rotation():
    rng = np.random.default_rng(0)
    f = rng.integers(0, 10, size=(3000, 2)).astype(float)
    noise = rng.normal(size=(3000, 1))
    assert mig(np.hstack([f, noise]), f)["mig"] > 0.95
    c, s = np.cos(np.pi / 4), np.sin(np.pi / 4)
    rotated = f @ np.array([[c, -s], [s, c]])
    assert mig(np.hstack([rotated, noise]), f)["mig"] < 0.15
    res = mig(np.hstack([f, noise]), f, logvar=np.full((3000, 3), -20.0))
    assert res["mi"].shape == (2, 3) and res["mig"] > 0.95
    with pytest.raises(BiovaeError, match="latents \\(n, d >= 2\\)"):
        mig(f[:, :1], f)
    with pytest.raises(BiovaeError, match="factor rows"):
        mig(f[:10], f)


def test_larger_beta_raises_mig_on_the_factor_simulation():
    sim = simulate_factors(n_cells=1000, genes_per_factor=50, seed=0)
    x = ((sim.X - sim.X.mean(0)) / sim.X.std(0)).astype(np.float32)
    scores = {}
    for beta in (1.0, 4.0):
        vae = VAE(x.shape[1], likelihood="gaussian", latent_dim=6, hidden=(64, 32), beta=beta, seed=0)
        vae.fit(x, epochs=150, batch_size=64, lr=2e-3, validation_split=0.0, warmup_fraction=0.1, seed=0,
                progress=False)
        scores[beta] = mig(vae.encode(x)[0], sim.obs)["mig"]
    assert scores[4.0] > scores[1.0] + 0.1, scores
