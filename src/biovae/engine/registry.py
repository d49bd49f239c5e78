"""The network registry: encoder/decoder families by name (ModelConfig.network). A leaf module, so
that config (which validates names against it), the networks that register themselves here
(engine.networks: "mlp", engine.conv: "conv") and code outside the package share one table:

    @register_network("mine")
    def build(cfg, cond_width): return MyEncoder(cfg, cond_width), MyDecoder(cfg, cond_width)

The encoder maps (x (n, n_features), cond (n, cond_width)) to (mean, logvar), each
(n, latent_dim); the decoder maps (z, cond) to {block name: raw (n, n_params * block size)}.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from biovae.errors import BiovaeError

NetworkBuilder = Callable[[object, int], tuple[nn.Module, nn.Module]]
_NETWORKS: dict[str, NetworkBuilder] = {}


def register_network(name: str):
    """Decorator: `builder(cfg, cond_width) -> (encoder, decoder)` becomes network `name`."""

    def wrap(builder: NetworkBuilder) -> NetworkBuilder:
        _NETWORKS[name] = builder
        return builder

    return wrap


def network_names() -> list[str]:
    """Names of the registered networks, sorted."""
    return sorted(_NETWORKS)


def get_network(name: str) -> NetworkBuilder:
    try:
        return _NETWORKS[name]
    except KeyError:
        raise BiovaeError(f"unknown network {name!r}", f"choose one of {', '.join(network_names())}") from None
