"""engine.fused_step: the hand-written training step gives autograd's gradients, losses and batch
norm statistics on real counts (scanpy's PBMCs), for count likelihoods (the C kernel's direct
form), other likelihoods (autograd on the likelihoods alone), conditions, several layers and
blocks; it runs only where it applies, and a fit through it learns as one through autograd."""

import numpy as np
import pytest
import torch

from biovae import VAE
from biovae.engine import fused_step
from biovae.engine.config import Block
from biovae.engine.count_density import kernel_built

pytestmark = pytest.mark.skipif(not kernel_built(), reason="no C compiler: the fused step does not run")


@pytest.fixture(scope="module")
def counts(pbmc):
    from biovae.expr.preprocess import lattice_size_factors

    x = pbmc.raw.X.toarray() if hasattr(pbmc.raw.X, "toarray") else np.asarray(pbmc.raw.X)
    s = lattice_size_factors(x.astype(np.float64))
    counts = np.round(np.expm1(x.astype(np.float64)) / s[:, None]).astype(np.float32)
    labels = pbmc.obs["bulk_labels"].astype(str).to_numpy()
    return counts, labels


def _pair(**kw):
    a, b = VAE(**kw, seed=3), VAE(**kw, seed=3)
    for v in (a, b):
        v.module.train()
    return a.module, b.module


def _codes(vae_module, labels):
    cats = next(iter(vae_module.cfg.conditions.values()))
    index = {c: i for i, c in enumerate(cats)}
    return torch.tensor([[index[v]] for v in labels])


def _compare(auto, fused, x, codes, beta=0.7):
    torch.manual_seed(11)
    out = auto(x, codes, beta)
    out["loss"].mean().backward()
    step = fused_step.for_module(fused)
    assert step is not None and step.applies(x)
    torch.manual_seed(11)
    got = step(x, codes, beta)
    assert torch.allclose(got["loss"], out["loss"].detach(), rtol=1e-4, atol=1e-3)
    assert torch.allclose(got["kl"], out["kl"].detach(), rtol=1e-4, atol=1e-4)
    scale = max(float(p.grad.abs().max()) for p in auto.parameters())
    for (name, p), q in zip(auto.named_parameters(), fused.parameters()):
        assert q.grad is not None, name
        assert torch.allclose(q.grad, p.grad, rtol=1e-3, atol=1e-5 * scale), name
    for (name, a), b in zip(auto.named_buffers(), fused.buffers()):
        assert torch.allclose(a.float(), b.float(), rtol=1e-5, atol=1e-6), name  # batch norm statistics


def test_count_likelihood_gradients_match_autograd(counts):
    x = torch.as_tensor(counts[0][:128])
    for likelihood in ("zinb", "nb"):
        auto, fused = _pair(n_features=x.shape[1], likelihood=likelihood, latent_dim=10, hidden=[128],
                            dropout=0.1, norm="batch")
        _compare(auto, fused, x, None)


@pytest.mark.parametrize("every", [False, True])
def test_conditions_layers_and_autograd_likelihoods_match(counts, every):
    x = torch.log1p(torch.as_tensor(counts[0][:96]))
    labels = counts[1][:96]
    auto, fused = _pair(n_features=x.shape[1], likelihood="hurdle_cell", latent_dim=6, hidden=[64, 32],
                        dropout=0.1 if every else 0.0, norm="batch", conditions={"type": labels},
                        condition_every_layer=every)
    assert auto.decoder.every == every
    _compare(auto, fused, x, _codes(auto, labels))
    if every:
        return
    # two blocks, one weighted, one a count block through the direct form, one through autograd
    blocks = [Block("genes", 700, "nb"), Block("rest", x.shape[1] - 700, "gaussian", 0.5)]
    mixed = torch.cat([torch.as_tensor(counts[0][:96, :700]), x[:, 700:]], dim=1)
    auto, fused = _pair(blocks=blocks, latent_dim=8, hidden=[48], dropout=0.2, norm="batch")
    _compare(auto, fused, mixed, None)


def test_runs_only_where_it_applies(counts, monkeypatch):
    x = torch.as_tensor(counts[0][:64])
    assert fused_step.for_module(VAE(x.shape[1], norm="layer").module) is None
    assert fused_step.for_module(VAE(x.shape[1], activation="gelu").module) is None
    assert fused_step.for_module(VAE(x.shape[1], conditions={"c": ["a", "b"]}, condition_embedding=4).module) is None
    vae = VAE(x.shape[1], likelihood="nb", hidden=[32])
    vae.module.train()
    step = fused_step.for_module(vae.module)
    assert step.applies(x) and not step.applies(x[:1]) and not step.applies(x.double())
    vae.module.eval()
    assert not step.applies(x)
    monkeypatch.setenv("BIOVAE_FUSED_STEP", "off")
    assert fused_step.for_module(vae.module) is None


def test_fit_through_the_fused_step_learns_as_autograd_does(counts, monkeypatch):
    x = counts[0]
    losses, calls = {}, []
    real_call = fused_step.FusedStep.__call__
    monkeypatch.setattr(fused_step.FusedStep, "__call__", lambda self, *a: calls.append(1) or real_call(self, *a))
    for mode in ("auto", "off"):
        monkeypatch.setenv("BIOVAE_FUSED_STEP", mode)
        runs = []
        for _ in range(2):
            vae = VAE(x.shape[1], likelihood="zinb", latent_dim=10, hidden=[64], dropout=0.1, norm="batch", seed=0)
            vae.fit(x, epochs=6, batch_size=128, validation_split=0.2, seed=5, progress=False, device="cpu")
            runs.append(vae.history)
        assert runs[0] == [dict(r, seconds=runs[0][i]["seconds"]) for i, r in enumerate(runs[1])]  # same seed, same run
        losses[mode] = [r["val_loss"] for r in runs[0]]
        assert len(calls) == 2 * 6 * 5  # 560 training cells: 5 batches an epoch, all fused (none with "off")

    fused, auto = np.array(losses["auto"]), np.array(losses["off"])
    assert fused[-1] < fused[0] - 20  # it learns...
    assert np.all(np.abs(fused - auto) < 0.01 * np.abs(auto))  # ...as autograd does, to rounding
