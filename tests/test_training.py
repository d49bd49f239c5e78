"""Training optimises the model as written (no second copy of any forward pass), trains with the
C kernels off, and restore_best gives back the best epoch's weights."""

import numpy as np
import pytest
import torch
from torch import nn

from biovae import VAE
from biovae.engine import backends, train


def _counts(n=240, f=40, seed=0):
    rng = np.random.default_rng(seed)
    rates = rng.gamma(2.0, 1.0, size=(4, f))
    return rng.poisson(rates[rng.integers(0, 4, n)]).astype(np.float32)


class Scaled(nn.Module):
    """The encoder's output layer, its output multiplied by a learnable scale."""

    def __init__(self, inner: nn.Module, scale: float):
        super().__init__()
        self.inner = inner
        self.scale = nn.Parameter(torch.tensor(scale))

    def forward(self, h):
        return self.inner(h) * self.scale


def _fit(vae, x, **kw):
    return vae.fit(x, epochs=4, batch_size=64, validation_split=0.0, seed=1, progress=False, device="cpu", **kw)


def test_cpu_training_optimises_a_changed_forward_pass():
    """Wrapping the encoder's mean layer changes what CPU training (kernels on, zinb, batch norm,
    dropout) optimises: the wrapper's parameter gets a gradient and moves, and a wrapper that
    zeroes the posterior mean gives a model whose encode() is zero and whose losses differ."""
    x = _counts()
    kw = dict(likelihood="zinb", latent_dim=4, hidden=[32], dropout=0.1, norm="batch", seed=0)
    plain = _fit(VAE(x.shape[1], **kw), x)

    learned = VAE(x.shape[1], **kw)
    learned.module.encoder.mean = Scaled(learned.module.encoder.mean, 1.0)
    learned.module.train()
    out = learned.module(torch.as_tensor(x[:64]), None, 1.0)
    out["loss"].mean().backward()
    assert learned.module.encoder.mean.scale.grad is not None and learned.module.encoder.mean.scale.grad.abs() > 0
    learned.module.zero_grad()
    _fit(learned, x)
    assert learned.module.encoder.mean.scale.item() != 1.0

    zeroed = VAE(x.shape[1], **kw)
    zeroed.module.encoder.mean = Scaled(zeroed.module.encoder.mean, 0.0)
    zeroed.module.encoder.mean.scale.requires_grad_(False)
    _fit(zeroed, x)
    mean, _ = zeroed.encode(x)
    assert np.all(mean == 0)
    assert [h["train_loss"] for h in zeroed.history] != [h["train_loss"] for h in plain.history]
    assert np.abs(plain.encode(x)[0]).max() > 0


def test_training_with_the_kernels_off(monkeypatch):
    """BIOVAE_CPU_KERNELS=off: a zinb model with batch norm and dropout trains end to end on the
    PyTorch references (no kernel is asked for) and learns about as much as with the kernels."""
    x = _counts(seed=2)
    kw = dict(likelihood="zinb", latent_dim=4, hidden=[32], dropout=0.1, norm="batch", seed=0)
    on = _fit(VAE(x.shape[1], **kw), x).history
    monkeypatch.setenv("BIOVAE_CPU_KERNELS", "off")
    asked = []
    real = backends.library
    monkeypatch.setattr(backends, "library", lambda *a: asked.append(a) or real(*a))
    off = _fit(VAE(x.shape[1], **kw), x).history
    assert asked == []
    assert off[-1]["train_loss"] < off[0]["train_loss"]
    assert abs(off[-1]["train_loss"] - on[-1]["train_loss"]) < 0.05 * abs(on[-1]["train_loss"])


def test_restore_best_gives_back_the_best_epochs_weights(monkeypatch):
    """With scripted validation losses (best at epoch 2 of 6), the fitted weights are those the
    model had after epoch 2, not the last epoch's; restore_best=False keeps the last."""
    x = _counts(seed=3)
    script = [9.0, 8.0, 5.0, 6.0, 7.0, 6.5]
    real = train._Loop._validate
    for restore in (True, False):
        seen = []

        def scripted(self, beta, _real=real, _seen=seen):
            row = _real(self, beta)
            _seen.append({k: v.detach().clone() for k, v in self.module.state_dict().items()})
            return dict(row, val_loss=script[len(_seen) - 1])

        monkeypatch.setattr(train._Loop, "_validate", scripted)
        vae = VAE(x.shape[1], likelihood="nb", latent_dim=3, hidden=[16], seed=0)
        vae.fit(x, epochs=6, patience=10, batch_size=64, validation_split=0.2, seed=1, progress=False,
                restore_best=restore)
        final = vae.module.state_dict()
        want, last = seen[2], seen[-1]
        assert len(seen) == 6
        assert all(torch.equal(final[k], (want if restore else last)[k]) for k in final)
        assert not all(torch.equal(want[k], last[k]) for k in final)
