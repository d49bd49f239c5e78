"""The VAE as maths: inference q(z|x,c), generative p(x|z,c), and the per-sample loss.

Shapes: x (n, n_features) float; codes (n, n_covariates) long, or None without conditions;
z (n, latent_dim). Libraries (per-sample total counts of a count block) are (n, 1).

The sampler draws z = mean + exp(logvar / 2) * eps, and the KL term is the closed form of
KL(N(mean, exp(logvar)) || N(0, I)) in that same parameterisation:
    KL = 1/2 * sum_j (mean_j^2 + exp(logvar_j) - 1 - logvar_j).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from biovae.engine import likelihoods
from biovae.engine.config import ModelConfig
from biovae.engine.layers import ConditionInput
from biovae.engine.registry import get_network


def kl_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per sample: (n,)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def reparameterize(mean: torch.Tensor, logvar: torch.Tensor, generator=None) -> torch.Tensor:
    """One draw z ~ N(mean, exp(logvar)), differentiable in mean and logvar."""
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + torch.exp(0.5 * logvar) * eps


class SampleAndKL(torch.autograd.Function):
    """(z, KL) of `reparameterize` and `kl_normal` (its PyTorch reference) as one autograd node
    with its gradient written out (the two as separate tensor operations are ten nodes; on the CPU
    at SCVI's sizes their per-node cost was larger than their arithmetic):
        d mean   = dz + dKL mean
        d logvar = dz eps sigma / 2 + dKL (sigma^2 - 1) / 2,   sigma = exp(logvar / 2)."""

    @staticmethod
    def forward(ctx, mean, logvar, eps):
        sigma = torch.exp(0.5 * logvar)
        z = torch.addcmul(mean, sigma, eps)
        kl = 0.5 * (torch.addcmul(mean * mean, sigma, sigma) - logvar).sum(-1) - 0.5 * mean.shape[-1]
        ctx.save_for_backward(mean, sigma, eps)
        return z, kl

    @staticmethod
    @once_differentiable
    def backward(ctx, dz, dkl):
        mean, sigma, eps = ctx.saved_tensors
        g = dkl[:, None]
        d_mean = torch.addcmul(dz, g, mean)
        d_logvar = 0.5 * (dz * eps * sigma + g * (sigma * sigma - 1.0))
        return d_mean, d_logvar, None


def sample_and_kl(mean: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(reparameterize(mean, logvar), kl_normal(mean, logvar)) with the same draw of eps, as one
    autograd node; (n, latent_dim) and (n,)."""
    eps = torch.randn(mean.shape, device=mean.device, dtype=mean.dtype)
    return SampleAndKL.apply(mean, logvar, eps)


class VAEModule(nn.Module):
    """Encoder, decoder and one likelihood object per input block."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.condition = ConditionInput([len(c) for c in cfg.conditions.values()], cfg.condition_embedding)
        self.encoder, self.decoder = get_network(cfg.network)(cfg, self.condition.width)
        self.likelihoods = nn.ModuleDict({b.name: likelihoods.get(b.likelihood)(b.size) for b in cfg.blocks})
        bounds, start = [], 0
        for b in cfg.blocks:
            bounds.append((b.name, start, start + b.size, b.weight))
            start += b.size
        self.bounds = bounds

    # -- pieces ---------------------------------------------------------------------------
    def split(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The columns of each block: name -> (n, block size)."""
        return {name: x[:, a:b] for name, a, b, _ in self.bounds}

    def libraries(self, x: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """Observed library size (n, 1) for blocks whose likelihood uses one, else None."""
        return {
            name: part.sum(1, keepdim=True) if self.likelihoods[name].uses_library else None
            for name, part in self.split(x).items()
        }

    def inference(self, x: torch.Tensor, codes: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance, each (n, latent_dim)."""
        cond = self.condition(codes, x.shape[0], x.device)
        return self.encoder(x, cond)

    def generative(self, z: torch.Tensor, codes: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Raw decoder outputs per block."""
        cond = self.condition(codes, z.shape[0], z.device)
        return self.decoder(z, cond)

    def distributions(self, raw: dict[str, torch.Tensor], libraries: dict[str, torch.Tensor | None]):
        """Block name -> torch Distribution of the data given the decoder output."""
        return {name: self.likelihoods[name].distribution(raw[name], libraries.get(name)) for name in raw}

    def reconstruction_nll(self, x, raw, libraries) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted negative log-likelihood summed over blocks (n,), and the unweighted per-block terms."""
        parts = self.split(x)
        per_block = {name: -self.likelihoods[name].log_prob(parts[name], raw[name], libraries[name])
                     for name, *_ in self.bounds}
        terms = [per_block[name] if w == 1 else w * per_block[name] for name, _, _, w in self.bounds]
        total = terms[0] if len(terms) == 1 else sum(terms[1:], terms[0])
        return total, per_block

    # -- the training objective ---------------------------------------------------------------
    def forward(self, x: torch.Tensor, codes: torch.Tensor | None, beta: float, sample: bool = True):
        """Per-sample terms of the negative ELBO (recon + beta * KL). Returns a dict of (n,) tensors:
        loss, recon, kl. With sample=False, z is the posterior mean (a deterministic score)."""
        mean, logvar = self.inference(x, codes)
        z, kl = sample_and_kl(mean, logvar) if sample else (mean, kl_normal(mean, logvar))
        raw = self.generative(z, codes)
        recon, _ = self.reconstruction_nll(x, raw, self.libraries(x))
        return {"loss": recon + beta * kl, "recon": recon, "kl": kl}
