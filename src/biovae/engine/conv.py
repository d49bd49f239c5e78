"""Convolutional encoder and decoder: the engine's "conv" network (ModelConfig.network = "conv").

The VAE API is unchanged: rows stay flat (n, H * W * C), read as row-major images of
`cfg.image_shape` (H, W) or (H, W, C). Pixel values keep their units; the likelihood of the one
input block decides what they mean (e.g. "bernoulli" for intensities scaled to [0, 1]).

Encoder: image (n, C, H, W) -> one stride-2 convolution per entry of `conv_channels` (kernel 4,
padding 1: each halves H and W exactly) -> flatten -> [ | condition] -> `hidden` dense layers ->
(mean, log-variance), each (n, latent_dim), linear as in the MLP encoder.
Decoder: [z | condition] -> `decoder_layers` dense layers -> dense to the smallest feature map
-> transposed convolutions that mirror the encoder (each doubles H and W) -> n_params * C
output maps, returned flat in the likelihood's layout (n, n_params * H * W * C).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from biovae.engine import likelihoods
from biovae.engine.layers import activation, mlp
from biovae.engine.registry import register_network
from biovae.errors import BiovaeError

if TYPE_CHECKING:
    from biovae.engine.config import ModelConfig

KERNEL, STRIDE, PADDING = 4, 2, 1  # (size + 2 * 1 - 4) / 2 + 1 = size / 2 for even sizes


def image_dims(cfg: ModelConfig) -> tuple[int, int, int]:
    """(height, width, channels) of a conv model's input; clear errors for configs it cannot take."""
    if cfg.image_shape is None:
        raise BiovaeError("the conv network needs image_shape (height, width[, channels])",
                          "give image_shape, e.g. [64, 64] for 64 x 64 grey patches")
    if len(cfg.blocks) != 1:
        raise BiovaeError(f"the conv network takes one input block (the image), got {len(cfg.blocks)}",
                          "use network='mlp' for several blocks")
    if not cfg.conv_channels:
        raise BiovaeError("the conv network needs at least one conv_channels entry")
    h, w, *c = cfg.image_shape
    step = 2 ** len(cfg.conv_channels)
    if h % step or w % step:
        raise BiovaeError(f"image_shape {h} x {w} cannot be halved {len(cfg.conv_channels)} times "
                          f"(one per conv_channels entry)", f"use sizes divisible by {step}, or fewer conv layers")
    return h, w, (c[0] if c else 1)


def _norm2d(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)  # normalises over (C, H, W) of each sample, like LayerNorm
    return nn.Identity()


class ConvEncoder(nn.Module):
    """x (n, H * W * C), cond (n, cond_width) -> mean, logvar (n, latent_dim)."""

    def __init__(self, cfg: ModelConfig, cond_width: int):
        super().__init__()
        self.h, self.w, self.c = image_dims(cfg)
        chans = [self.c] + list(cfg.conv_channels)
        layers: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(a, b, KERNEL, STRIDE, PADDING), _norm2d(cfg.norm, b), activation(cfg.activation)]
        self.conv = nn.Sequential(*layers)
        step = 2 ** len(cfg.conv_channels)
        flat = chans[-1] * (self.h // step) * (self.w // step)
        self.use_condition = cfg.condition_encoder
        width = flat + (cond_width if cfg.condition_encoder else 0)
        self.body = mlp([width] + list(cfg.hidden), cfg.activation, cfg.norm, cfg.dropout)
        last = cfg.hidden[-1] if cfg.hidden else width
        self.mean = nn.Linear(last, cfg.latent_dim)
        self.logvar = nn.Linear(last, cfg.latent_dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = x.reshape(x.shape[0], self.h, self.w, self.c).permute(0, 3, 1, 2)
        h = self.conv(images).flatten(1)
        h = self.body(torch.cat([h, cond], dim=1) if self.use_condition else h)
        return self.mean(h), self.logvar(h)


class ConvDecoder(nn.Module):
    """z (n, latent_dim), cond (n, cond_width) -> {block name: raw (n, n_params * H * W * C)}."""

    def __init__(self, cfg: ModelConfig, cond_width: int):
        super().__init__()
        self.h, self.w, self.c = image_dims(cfg)
        block = cfg.blocks[0]
        self.name = block.name
        self.n_params = likelihoods.get(block.likelihood).n_params
        step = 2 ** len(cfg.conv_channels)
        chans = list(reversed(cfg.conv_channels))
        self.start = (chans[0], self.h // step, self.w // step)
        sizes = [cfg.latent_dim + cond_width] + cfg.decoder_layers
        self.body = mlp(sizes, cfg.activation, cfg.norm, cfg.dropout)
        self.project = nn.Sequential(nn.Linear(sizes[-1], chans[0] * self.start[1] * self.start[2]),
                                     activation(cfg.activation))
        layers: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [nn.ConvTranspose2d(a, b, KERNEL, STRIDE, PADDING), _norm2d(cfg.norm, b),
                       activation(cfg.activation)]
        layers.append(nn.ConvTranspose2d(chans[-1], self.n_params * self.c, KERNEL, STRIDE, PADDING))
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> dict[str, torch.Tensor]:
        n = z.shape[0]
        h = self.project(self.body(torch.cat([z, cond], dim=1))).reshape(n, *self.start)
        maps = self.deconv(h)  # (n, n_params * C, H, W)
        # back to the flat row-major layout, parameter-major as Likelihood.split expects
        out = maps.reshape(n, self.n_params, self.c, self.h, self.w).permute(0, 1, 3, 4, 2)
        return {self.name: out.reshape(n, -1)}


@register_network("conv")
def _conv_networks(cfg: ModelConfig, cond_width: int) -> tuple[nn.Module, nn.Module]:
    return ConvEncoder(cfg, cond_width), ConvDecoder(cfg, cond_width)
