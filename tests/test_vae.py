"""The VAE learns known structure, conditions its decoder, and registers likelihoods as plug-ins."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch.distributions import Laplace

from biovae import VAE, BiovaeError
from biovae.engine import likelihoods
from biovae.engine.config import Block
from biovae.engine.train import beta_at
from biovae.engine.config import TrainConfig

FAST = dict(progress=False, validation_split=0.1, seed=1)


def two_clusters(n=1200, d=50, gap=3.0, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    direction = rng.normal(size=d)
    direction /= np.linalg.norm(direction)
    x = rng.normal(size=(n, d)) + np.outer(y * 2 - 1, direction) * gap
    return x.astype(np.float32), y


def test_separates_two_clusters_in_a_2d_latent_and_reconstruction_improves():
    x, y = two_clusters()
    vae = VAE(50, latent_dim=2, hidden=[64, 32], seed=1).fit(x, epochs=25, batch_size=64, **FAST)
    mean, logvar = vae.encode(x)
    acc = LogisticRegression().fit(mean[:800], y[:800]).score(mean[800:], y[800:])
    assert acc >= 0.97, acc
    recon = [h["train_recon"] for h in vae.history]
    # floor: unit-variance Gaussian on 50 dims with one direction explained leaves 49 of noise
    floor = 50 * 0.5 * np.log(2 * np.pi) + 0.5 * 49
    assert recon[-1] < recon[0] - 3 and recon[-1] < floor + 2, (recon[0], recon[-1], floor)
    # posterior sigma may be < 1 (no softplus floor)
    assert np.exp(0.5 * logvar).min() < 0.5


@pytest.mark.parametrize("every_layer", [False, True])
def test_conditional_decoder_reproduces_the_condition_mean_difference(every_layer, tmp_path):
    rng = np.random.default_rng(3)
    n, d = 1000, 20
    group = np.where(rng.random(n) < 0.5, "A", "B")
    shift = np.zeros(d)
    shift[:5] = 3.0
    x = (rng.normal(size=(n, d)) + (group == "B")[:, None] * shift).astype(np.float32)
    vae = VAE(d, latent_dim=4, hidden=[64], conditions={"group": group}, condition_every_layer=every_layer, seed=0)
    vae.fit(x, {"group": group}, epochs=30, batch_size=64, **FAST)
    vae.save(tmp_path / "m")  # the layout is part of the saved config
    back = VAE.load(tmp_path / "m")
    assert back.config.condition_every_layer is every_layer
    z = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    assert np.array_equal(back.decode(z, {"group": ["A"] * 5}), vae.decode(z, {"group": ["A"] * 5}))
    a = vae.sample(2000, {"group": "A"}, seed=1, draw=False).mean(0)
    b = vae.sample(2000, {"group": "B"}, seed=1, draw=False).mean(0)
    assert np.allclose(b - a, shift, atol=0.6), b - a
    # the same latent point decodes differently under each condition, by the shift
    z = np.zeros((1, 4), dtype=np.float32)
    diff = vae.decode(z, {"group": "B"}) - vae.decode(z, {"group": "A"})
    assert np.corrcoef(diff[0], shift)[0, 1] > 0.9


def test_multi_block_with_count_block_and_weights():
    rng = np.random.default_rng(1)
    n = 600
    y = rng.integers(0, 2, n)
    comp = rng.normal(size=(n, 8)) + y[:, None] * 2.0
    counts = rng.poisson(np.where(y[:, None] == 1, 20.0, 5.0), size=(n, 6))
    x = np.hstack([comp, counts]).astype(np.float32)
    blocks = [Block("comp", 8, "gaussian", 1.0), Block("counts", 6, "nb", 0.5)]
    vae = VAE(blocks=blocks, latent_dim=2, hidden=[32], seed=0).fit(x, epochs=15, batch_size=64, **FAST)
    mean, _ = vae.encode(x)
    assert LogisticRegression().fit(mean, y).score(mean, y) > 0.95
    rec = vae.reconstruct(x)
    # each block is decoded on its own scale: counts near their group means
    assert abs(rec[y == 1, 8:].mean() - 20) < 3 and abs(rec[y == 0, 8:].mean() - 5) < 2


def test_a_new_likelihood_plugs_in_without_touching_the_model():
    @likelihoods.register("laplace_test")
    class LaplaceLik(likelihoods.Likelihood):
        def distribution(self, raw, library=None):
            return Laplace(raw, torch.ones_like(raw))

    x, _ = two_clusters(n=300, d=10)
    vae = VAE(10, likelihood="laplace_test", latent_dim=2, hidden=[16], seed=0)
    vae.fit(x, epochs=5, batch_size=64, **FAST)
    assert vae.history[-1]["train_recon"] < vae.history[0]["train_recon"]


def test_trains_on_a_few_hundred_samples_and_batch_larger_than_data():
    x, y = two_clusters(n=300, d=20)
    vae = VAE(20, latent_dim=2, hidden=[32], seed=0)
    before = {k: v.clone() for k, v in vae.module.state_dict().items()}
    vae.fit(x, epochs=10, batch_size=1024, **FAST)
    after = vae.module.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert vae.history[-1]["train_loss"] < vae.history[0]["train_loss"]
    # a remainder batch of one sample under batch norm is skipped, not an error
    VAE(20, latent_dim=2, hidden=[8], seed=0).fit(x[:129], epochs=1, batch_size=128, validation_split=0, progress=False)


def test_same_seed_same_weights_other_seed_differs():
    x, _ = two_clusters(n=400, d=10)
    runs = [VAE(10, latent_dim=2, hidden=[16], dropout=0.1, seed=s).fit(x, epochs=4, batch_size=32, progress=False, seed=s)
            for s in (5, 5, 6)]
    w = [r.module.state_dict() for r in runs]
    assert all(torch.equal(w[0][k], w[1][k]) for k in w[0])
    assert not all(torch.equal(w[0][k], w[2][k]) for k in w[0])


def test_streaming_batches_match_in_memory():
    x, _ = two_clusters(n=500, d=10)
    a = VAE(10, latent_dim=2, hidden=[16], seed=0).fit(x, epochs=3, batch_size=50, in_memory=True, **FAST)
    b = VAE(10, latent_dim=2, hidden=[16], seed=0).fit(x, epochs=3, batch_size=50, in_memory=False, **FAST)
    for k, v in a.module.state_dict().items():
        assert torch.allclose(v.float(), b.module.state_dict()[k].float(), atol=1e-4), k


def test_beta_warmup_scales_with_the_number_of_epochs():
    cfg = TrainConfig(epochs=20, warmup_fraction=0.5)
    assert [round(beta_at(e, 2.0, cfg), 3) for e in (0, 4, 9, 15)] == [0.2, 1.0, 2.0, 2.0]
    assert beta_at(0, 2.0, TrainConfig(epochs=20)) == 2.0


def test_early_stopping_restores_the_best_epoch():
    x, _ = two_clusters(n=400, d=10)
    vae = VAE(10, latent_dim=2, hidden=[16], seed=0)
    vae.fit(x, epochs=200, batch_size=32, lr=0.02, patience=3, **FAST)
    val = [h["val_loss"] for h in vae.history]
    assert len(val) < 200
    best = int(np.argmin(val))
    assert len(val) - 1 - best == 3  # stopped `patience` epochs after the best
    assert vae.train_config.patience == 3


def test_per_sample_elbo_flags_outliers():
    x, _ = two_clusters(n=600, d=20)
    vae = VAE(20, latent_dim=2, hidden=[32], seed=0).fit(x, epochs=15, batch_size=64, **FAST)
    odd = x[:20] + 8.0
    normal_scores = vae.elbo(x[:200])
    odd_scores = vae.elbo(odd)
    assert np.median(odd_scores["elbo"]) < np.percentile(normal_scores["elbo"], 5)
    assert np.allclose(normal_scores["elbo"], -(normal_scores["recon"] + normal_scores["kl"]))
    assert "scaled_mse" not in normal_scores
    scale = np.full(20, 2.0, dtype=np.float32)  # residuals in units of a per-feature scale
    scaled = vae.elbo(x[:200], scale=scale)
    assert np.allclose(scaled["scaled_mse"], normal_scores["mse"] / 4.0, rtol=1e-5)


def test_network_registered_outside_the_package_trains_saves_and_loads(tmp_path):
    """engine.registry.register_network from user code: config validation accepts the new name,
    the VAE trains it, saves it and loads it back (in a process where it is registered)."""
    from torch import nn

    from biovae.engine import likelihoods
    from biovae.engine.registry import network_names, register_network

    class Enc(nn.Module):
        def __init__(self, cfg, cond_width):
            super().__init__()
            self.out = nn.Linear(cfg.n_features + cond_width, 2 * cfg.latent_dim)

        def forward(self, x, cond):
            return self.out(torch.cat([x, cond], 1)).chunk(2, dim=1)

    class Dec(nn.Module):
        def __init__(self, cfg, cond_width):
            super().__init__()
            self.heads = nn.ModuleDict({b.name: nn.Linear(cfg.latent_dim + cond_width,
                                                          likelihoods.get(b.likelihood).n_params * b.size)
                                        for b in cfg.blocks})

        def forward(self, z, cond):
            h = torch.cat([z, cond], 1)
            return {name: head(h) for name, head in self.heads.items()}

    @register_network("test-linear")
    def build(cfg, cond_width):
        return Enc(cfg, cond_width), Dec(cfg, cond_width)

    assert "test-linear" in network_names()
    x = np.random.default_rng(0).normal(size=(200, 12)).astype(np.float32)
    vae = VAE(12, network="test-linear", latent_dim=2, seed=0)
    vae.fit(x, epochs=5, batch_size=50, seed=0, progress=False)
    assert vae.history[-1]["train_loss"] < vae.history[0]["train_loss"]
    vae.save(tmp_path / "m")
    again = VAE.load(tmp_path / "m")
    assert type(again.module.encoder) is Enc
    assert np.array_equal(again.encode(x)[0], vae.encode(x)[0])
    with pytest.raises(BiovaeError, match="unknown network 'nope'.*test-linear"):
        VAE(12, network="nope")
