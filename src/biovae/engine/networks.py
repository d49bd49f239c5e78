"""The "mlp" network: dense encoder and decoder, registered in engine.registry (engine.conv
registers "conv").

Encoder: [x | condition] -> hidden layers -> (mean, log-variance), each (n, latent_dim).
The log-variance is a plain linear output: no softplus or other floor, so the posterior standard
deviation can fall below 1 (a softplus on the variance forces sigma >= 1 and blurs the latent).
Decoder: [z | condition] -> hidden layers -> one linear head per input block, sized
n_params * block size for that block's likelihood.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from biovae.engine import likelihoods
from biovae.engine.layers import mlp
from biovae.engine.registry import register_network

if TYPE_CHECKING:
    from biovae.engine.config import ModelConfig


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
    """[z | condition] -> hidden layers -> heads; with cfg.condition_every_layer the condition is
    also concatenated to the input of every later layer and of the heads."""

    def __init__(self, cfg: ModelConfig, cond_width: int):
        super().__init__()
        self.every = cfg.condition_every_layer and cond_width > 0
        if self.every:
            sizes = [cfg.latent_dim] + cfg.decoder_layers
            self.layers = nn.ModuleList(mlp([a + cond_width, b], cfg.activation, cfg.norm, cfg.dropout)
                                        for a, b in zip(sizes[:-1], sizes[1:]))
            width = sizes[-1] + cond_width
        else:
            sizes = [cfg.latent_dim + cond_width] + cfg.decoder_layers
            self.body = mlp(sizes, cfg.activation, cfg.norm, cfg.dropout)
            width = sizes[-1]
        self.heads = nn.ModuleDict(
            {b.name: nn.Linear(width, likelihoods.get(b.likelihood).n_params * b.size) for b in cfg.blocks}
        )

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.every:
            h = z
            for layer in self.layers:
                h = layer(torch.cat([h, cond], dim=1))
            h = torch.cat([h, cond], dim=1)
        else:
            h = self.body(torch.cat([z, cond], dim=1) if cond.shape[1] else z)
        return {name: head(h) for name, head in self.heads.items()}


@register_network("mlp")
def _mlp_networks(cfg: ModelConfig, cond_width: int) -> tuple[nn.Module, nn.Module]:
    return Encoder(cfg, cond_width), Decoder(cfg, cond_width)
