"""Encoder and decoder networks (MLPs), built from a ModelConfig.

Encoder: [x | condition] -> hidden layers -> (mean, log-variance), each (n, latent_dim).
The log-variance is a plain linear output: no softplus or other floor, so the posterior standard
deviation can fall below 1 (a softplus on the variance forces sigma >= 1 and blurs the latent).
Decoder: [z | condition] -> hidden layers -> one linear head per input block, sized
n_params * block size for that block's likelihood.
"""

from __future__ import annotations

import torch
from torch import nn

from biovae.engine import likelihoods
from biovae.engine.config import ModelConfig

_ACT = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
}


def mlp(sizes: list[int], activation: str, norm: str, dropout: float) -> nn.Sequential:
    """Linear -> norm -> activation -> dropout for each consecutive pair in `sizes`."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers.append(nn.Linear(n_in, n_out))
        if norm == "batch":
            layers.append(nn.BatchNorm1d(n_out))
        elif norm == "layer":
            layers.append(nn.LayerNorm(n_out))
        layers.append(_ACT[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class ConditionInput(nn.Module):
    """Turns integer codes (n, n_covariates) into one float vector per sample: one-hot per
    covariate, or a learned embedding of `dim` per covariate."""

    def __init__(self, sizes: list[int], dim: int):
        super().__init__()
        self.sizes = sizes
        self.embed = nn.ModuleList(nn.Embedding(k, dim) for k in sizes) if dim > 0 else None
        self.width = (dim * len(sizes)) if dim > 0 else sum(sizes)

    def forward(self, codes: torch.Tensor | None, n: int, device) -> torch.Tensor:
        if not self.sizes:
            return torch.zeros(n, 0, device=device)
        if self.embed is not None:
            return torch.cat([e(codes[:, i]) for i, e in enumerate(self.embed)], dim=1)
        return torch.cat(
            [nn.functional.one_hot(codes[:, i], k).float() for i, k in enumerate(self.sizes)], dim=1
        )


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig, cond_width: int):
        super().__init__()
        width_in = cfg.n_features + (cond_width if cfg.condition_encoder else 0)
        self.use_condition = cfg.condition_encoder
        self.body = mlp([width_in] + list(cfg.hidden), cfg.activation, cfg.norm, cfg.dropout)
        last = cfg.hidden[-1] if cfg.hidden else width_in
        self.mean = nn.Linear(last, cfg.latent_dim)
        self.logvar = nn.Linear(last, cfg.latent_dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(torch.cat([x, cond], dim=1) if self.use_condition else x)
        return self.mean(h), self.logvar(h)


class Decoder(nn.Module):
    def __init__(self, cfg: ModelConfig, cond_width: int):
        super().__init__()
        sizes = [cfg.latent_dim + cond_width] + cfg.decoder_layers
        self.body = mlp(sizes, cfg.activation, cfg.norm, cfg.dropout)
        self.heads = nn.ModuleDict(
            {b.name: nn.Linear(sizes[-1], likelihoods.get(b.likelihood).n_params * b.size) for b in cfg.blocks}
        )

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.body(torch.cat([z, cond], dim=1))
        return {name: head(h) for name, head in self.heads.items()}
