"""Layers shared by the engine's networks (engine.networks' MLP, engine.conv): the activations,
the dense stack `mlp`, and the condition input. Each fast operation in them is built here by name
(norm_act.BatchNormReluDropout, dropout.Dropout), never found later by inspecting the layers."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from biovae.engine.dropout import Dropout
from biovae.engine.norm_act import BatchNormReluDropout

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
}
NORMS = ("batch", "layer", "none")
# activations that can overwrite their input: in `mlp` that input is the output of a Linear or
# norm layer, whose backward pass needs only its own input, so no (batch, width) copy is kept
IN_PLACE = {"relu", "leaky_relu", "elu", "silu"}


def activation(name: str) -> nn.Module:
    return ACTIVATIONS[name](inplace=True) if name in IN_PLACE else ACTIVATIONS[name]()


def mlp(sizes: list[int], act: str, norm: str, dropout: float) -> nn.Sequential:
    """Linear -> norm -> activation -> dropout for each consecutive pair in `sizes`; batch norm
    then ReLU (then dropout) is one BatchNormReluDropout layer. Layers are named by their place in
    the unfused stack (Linear, norm, activation, dropout numbered in order, a layer without norm or
    dropout taking no number), so the state-dict keys, and model files, are those of the separate
    layers."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    has_norm = norm in ("batch", "layer")
    per_layer = 2 + has_norm + (dropout > 0)
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        at = k * per_layer
        layers[str(at)] = nn.Linear(n_in, n_out)
        if norm == "batch" and act == "relu":
            layers[str(at + 1)] = BatchNormReluDropout(n_out, dropout)
            continue
        if has_norm:
            layers[str(at + 1)] = nn.BatchNorm1d(n_out) if norm == "batch" else nn.LayerNorm(n_out)
        layers[str(at + 1 + has_norm)] = activation(act)
        if dropout > 0:
            layers[str(at + 2 + has_norm)] = Dropout(dropout)
    return nn.Sequential(layers)


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
