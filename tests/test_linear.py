"""The engine's dense layer: oneDNN products agree with F.linear in values and gradients, the
backend choice is explicit and validated, and a model trains the same way on either backend."""

import numpy as np
import pytest
import torch

from biovae import VAE, BiovaeError
from biovae.engine import linear as lin

pytestmark = pytest.mark.skipif(lin._onednn_op() is None, reason="this PyTorch has no oneDNN")


@pytest.fixture
def backend():
    yield lin.set_backend
    lin.set_backend(None)


@pytest.mark.parametrize("shape", [(256, 1000, 256), (1, 7, 3), (33, 128, 1000), (5, 1, 2)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_values_and_gradients_match_f_linear(backend, shape, with_bias):
    n, d_in, d_out = shape
    g = torch.Generator().manual_seed(n + d_in)
    x = torch.randn(n, d_in, generator=g, requires_grad=True)
    w = torch.randn(d_out, d_in, generator=g, requires_grad=True)
    b = torch.randn(d_out, generator=g, requires_grad=True) if with_bias else None
    up = torch.randn(n, d_out, generator=g)
    backend("onednn")
    y = lin.linear(x, w, b)
    grads = torch.autograd.grad((y * up).sum(), [x, w] + ([b] if with_bias else []))
    ref = torch.nn.functional.linear(x, w, b)
    ref_grads = torch.autograd.grad((ref * up).sum(), [x, w] + ([b] if with_bias else []))
    scale = float(np.sqrt(d_in))  # float32 rounding grows with the length of each dot product
    assert torch.allclose(y, ref, atol=2e-5 * scale, rtol=1e-4)
    for got, want in zip(grads, ref_grads):
        tol = 2e-5 * float(np.sqrt(max(n, d_in, d_out))) * float(want.abs().max() + 1)
        assert torch.allclose(got, want, atol=tol, rtol=1e-4)


def test_non_contiguous_input_and_frozen_weights(backend):
    backend("onednn")
    g = torch.Generator().manual_seed(3)
    x = torch.randn(40, 600, generator=g)[:, ::2]  # a strided view
    layer = lin.Linear(300, 128)  # large enough for oneDNN (ONEDNN_MIN_WEIGHTS)
    with torch.no_grad():
        assert torch.allclose(layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias), atol=1e-4)
    layer.requires_grad_(False)
    xg = x.clone().requires_grad_(True)
    layer(xg).sum().backward()  # input gradient only
    assert torch.allclose(xg.grad, layer.weight.sum(0).expand_as(xg), atol=1e-4)


def test_small_layers_take_f_linear_and_large_ones_onednn(backend, monkeypatch):
    backend("onednn")
    calls = []
    real = lin._product
    monkeypatch.setattr(lin, "_product", lambda *a: calls.append(1) or real(*a))
    lin.Linear(128, 10)(torch.randn(64, 128)).sum().backward()  # 1,280 weights: F.linear
    assert calls == []
    lin.Linear(765, 128)(torch.randn(64, 765)).sum().backward()  # 97,920 weights: oneDNN, both passes
    assert len(calls) == 2  # forward and weight gradient (the input needs none)


def test_backend_choice_is_explicit_and_validated(backend, monkeypatch):
    backend("blas")
    assert lin.backend() == "blas"
    backend("onednn")
    assert lin.backend() == "onednn"
    with pytest.raises(BiovaeError, match="unknown CPU matmul backend"):
        backend("fast")
    backend(None)
    monkeypatch.setenv("BIOVAE_CPU_MATMUL", "gpu-please")
    with pytest.raises(BiovaeError, match="BIOVAE_CPU_MATMUL"):
        lin.backend()
    monkeypatch.setenv("BIOVAE_CPU_MATMUL", "blas")
    lin.set_backend(None)
    assert lin.backend() == "blas"


def test_bf16_autocast_and_empty_batches_take_the_plain_path(backend):
    backend("onednn")
    layer = lin.Linear(16, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(torch.randn(8, 16)).dtype == torch.bfloat16
    assert layer(torch.zeros(0, 16)).shape == (0, 4)


def test_training_on_either_backend_learns_the_same_structure(backend):
    """Two clusters in 50-D: the latent separates them on both backends, the final losses agree
    to float32 rounding amplified by training, and each backend repeats itself exactly."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 1, (300, 50)), rng.normal(2, 1, (300, 50))]).astype(np.float32)
    losses, weights = {}, {}
    for name in ("blas", "onednn", "onednn"):
        backend(name)
        vae = VAE(50, latent_dim=2, hidden=[64], seed=1)
        hist = vae.fit(x, epochs=15, batch_size=64, validation_split=0.0, seed=1, progress=False).history
        mean, _ = vae.encode(x)
        side = mean[:, np.argmax(np.abs(mean[:300].mean(0) - mean[300:].mean(0)))]
        cut = (side[:300].mean() + side[300:].mean()) / 2
        acc = max(np.mean((side > cut) == (np.arange(600) >= 300)), np.mean((side < cut) == (np.arange(600) >= 300)))
        assert acc > 0.98, name
        losses.setdefault(name, []).append(hist[-1]["train_loss"])
        weights.setdefault(name, []).append(torch.cat([p.flatten() for p in vae.module.parameters()]))
    assert abs(losses["blas"][0] - losses["onednn"][0]) / losses["blas"][0] < 0.02
    assert torch.equal(weights["onednn"][0], weights["onednn"][1])
