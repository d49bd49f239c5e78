"""Encoder and decoder networks, built from a ModelConfig by `build` (registry keyed by
`cfg.network`: "mlp" here, "conv" in engine/conv.py).

Encoder: [x | condition] -> hidden layers -> (mean, log-variance), each (n, latent_dim).
The log-variance is a plain linear output: no softplus or other floor, so the posterior standard
deviation can fall below 1 (a softplus on the variance forces sigma >= 1 and blurs the latent).
Decoder: [z | condition] -> hidden layers -> one linear head per input block, sized
n_params * block size for that block's likelihood.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from biovae.engine import likelihoods, norm_act
from biovae.engine.config import ModelConfig
from biovae.engine.dropout import Dropout
from biovae.engine.linear import Linear

_ACT = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
}
# activations that can overwrite their input: in `mlp` that input is the output of a Linear or
# norm layer, whose backward pass needs only its own input, so no (batch, width) copy is kept
_IN_PLACE = {"relu", "leaky_relu", "elu", "silu"}


class MLP(nn.Sequential):
    """The layers of `mlp` in order (so state-dict keys are an nn.Sequential's); while training
    on the CPU, each batch norm -> ReLU [-> dropout] run is one fused node (engine/norm_act.py),
    the other layers run module by module."""

    def __init__(self, *layers: nn.Module):
        super().__init__(*layers)
        self.runs: dict[int, tuple[float, int]] = {}  # BatchNorm1d index -> (dropout p, layers covered)
        for i, layer in enumerate(layers):
            if type(layer) is nn.BatchNorm1d and i + 1 < len(layers) and type(layers[i + 1]) is nn.ReLU:
                drop = layers[i + 2] if i + 2 < len(layers) and type(layers[i + 2]) is Dropout else None
                self.runs[i] = (drop.p, 3) if drop is not None else (0.0, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.runs):
            return super().forward(x)
        skip = 0
        for i, layer in enumerate(self._modules.values()):
            if skip:
                skip -= 1
            elif i in self.runs and norm_act.fusable(x, layer):
                p, width = self.runs[i]
                x, skip = norm_act.batch_norm_relu_dropout(x, layer, p), width - 1
            else:
                x = layer(x)
        return x


def mlp(sizes: list[int], activation: str, norm: str, dropout: float) -> MLP:
    """Linear -> norm -> activation -> dropout for each consecutive pair in `sizes`."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers.append(Linear(n_in, n_out))
        if norm == "batch":
            layers.append(nn.BatchNorm1d(n_out))
        elif norm == "layer":
            layers.append(nn.LayerNorm(n_out))
        layers.append(_ACT[activation](inplace=True) if activation in _IN_PLACE else _ACT[activation]())
        if dropout > 0:
            layers.append(Dropout(dropout))
    return MLP(*layers)


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
        self.mean = Linear(last, cfg.latent_dim)
        self.logvar = Linear(last, cfg.latent_dim)

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
            {b.name: Linear(width, likelihoods.get(b.likelihood).n_params * b.size) for b in cfg.blocks}
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


NetworkBuilder = Callable[[ModelConfig, int], tuple[nn.Module, nn.Module]]
_NETWORKS: dict[str, NetworkBuilder] = {}


def register_network(name: str):
    """Decorator: `builder(cfg, cond_width) -> (encoder, decoder)` becomes network `name`.

    The encoder maps (x (n, n_features), cond (n, cond_width)) to (mean, logvar), each
    (n, latent_dim); the decoder maps (z, cond) to {block name: raw (n, n_params * block size)}.
    """

    def wrap(builder: NetworkBuilder) -> NetworkBuilder:
        _NETWORKS[name] = builder
        return builder

    return wrap


@register_network("mlp")
def _mlp_networks(cfg: ModelConfig, cond_width: int) -> tuple[nn.Module, nn.Module]:
    return Encoder(cfg, cond_width), Decoder(cfg, cond_width)


def build(cfg: ModelConfig, cond_width: int) -> tuple[nn.Module, nn.Module]:
    """The (encoder, decoder) pair of the network family `cfg.network`."""
    from biovae.engine import conv  # noqa: F401  registers "conv"; imported late as it imports this module

    return _NETWORKS[cfg.network](cfg, cond_width)
