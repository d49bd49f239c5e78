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

from biovae.engine import likelihoods
from biovae.engine.config import ModelConfig
from biovae.engine.networks import ConditionInput, build


def kl_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per sample: (n,)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def reparameterize(mean: torch.Tensor, logvar: torch.Tensor, generator=None) -> torch.Tensor:
    """One draw z ~ N(mean, exp(logvar)), differentiable in mean and logvar."""
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + torch.exp(0.5 * logvar) * eps


class VAEModule(nn.Module):
    """Encoder, decoder and one likelihood object per input block."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.condition = ConditionInput([len(c) for c in cfg.conditions.values()], cfg.condition_embedding)
        self.encoder, self.decoder = build(cfg, self.condition.width)
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
        total = sum(per_block[name] if w == 1 else w * per_block[name] for name, _, _, w in self.bounds)
        return total, per_block

    # -- the training objective ---------------------------------------------------------------
    def forward(self, x: torch.Tensor, codes: torch.Tensor | None, beta: float, sample: bool = True):
        """Per-sample terms of the negative ELBO (recon + beta * KL). Returns a dict of (n,) tensors:
        loss, recon, kl. With sample=False, z is the posterior mean (a deterministic score)."""
        mean, logvar = self.inference(x, codes)
        z = reparameterize(mean, logvar) if sample else mean
        raw = self.generative(z, codes)
        recon, _ = self.reconstruction_nll(x, raw, self.libraries(x))
        kl = kl_normal(mean, logvar)
        return {"loss": recon + beta * kl, "recon": recon, "kl": kl}
