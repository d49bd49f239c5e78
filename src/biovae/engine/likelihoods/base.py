"""Likelihoods: the distribution of the data given the decoder's output, as objects in a registry.

A likelihood turns the decoder's raw output for one block of features into a
torch.distributions.Distribution. The model never branches on a likelihood's name: it asks the
registry for the class, and the class says how many numbers it needs per feature (`n_params`),
which learnable per-feature parameters it owns (dispersion, scale), how to check data, and how
to build the distribution. Adding a likelihood is one decorated class, here or anywhere else:

    @register("mine")
    class Mine(Likelihood): ...

Shapes: decoder output `raw` is (batch, n_params * n_features); `library` is (batch, 1) or None.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn
from torch.distributions import Distribution

from biovae.errors import BiovaeError

HALF_LOG_2PI = 0.9189385332046727  # log(2 pi) / 2

_REGISTRY: dict[str, type["Likelihood"]] = {}


def register(name: str):
    """Class decorator: make a Likelihood subclass available under `name`."""

    def wrap(cls):
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def get(name: str) -> type["Likelihood"]:
    """The Likelihood class registered as `name`; a clear error for an unknown name."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise BiovaeError(
            f"unknown likelihood {name!r}", f"choose one of: {', '.join(available())}"
        ) from None


def available() -> list[str]:
    """Names of the registered likelihoods, sorted."""
    return sorted(_REGISTRY)


class Likelihood(nn.Module):
    """Base class. Subclasses set `n_params`, `uses_library`, and implement `distribution`."""

    name: ClassVar[str] = "base"
    n_params: ClassVar[int] = 1  # decoder outputs per feature
    uses_library: ClassVar[bool] = False  # counts scale with a per-sample library size
    counts: ClassVar[bool] = False  # data must be non-negative integers

    def __init__(self, n_features: int):
        super().__init__()
        self.n_features = n_features

    def distribution(self, raw: torch.Tensor, library: torch.Tensor | None = None) -> Distribution:
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor, raw: torch.Tensor, library=None) -> torch.Tensor:
        """Per-sample log-likelihood summed over features: (batch,)."""
        return self.distribution(raw, library).log_prob(x).sum(-1)

    def start(self, marginals) -> np.ndarray | None:
        """Decoder output (n_params * n_features,) under which every sample follows each
        feature's marginal in the training data (`marginals`: biovae.engine.marginals.Marginals),
        or None where this likelihood has no such start (the default). May also set the
        likelihood's own per-feature parameters. VAE.start_at_marginals puts it in the decoder's
        output biases before training."""
        return None

    def check(self, x: np.ndarray, where: str) -> None:
        """Raise BiovaeError if the data cannot come from this likelihood. `where` names the data."""
        if not self.counts:
            return
        if np.any(x < 0):
            raise BiovaeError(
                f"{where} has negative values, which the {self.name!r} likelihood cannot model",
                "give raw non-negative counts, or choose the 'gaussian' likelihood",
            )
        if not np.all(np.abs(x - np.round(x)) < 1e-6):
            raise BiovaeError(
                f"{where} has non-integer values, but the {self.name!r} likelihood models counts",
                "give raw integer counts, or choose 'gaussian' for normalised data",
            )

    def split(self, raw: torch.Tensor) -> list[torch.Tensor]:
        """The decoder output's n_params parts, each (batch, n_features)."""
        return list(raw.reshape(raw.shape[0], self.n_params, self.n_features).unbind(1))


def log_library(x: np.ndarray) -> np.ndarray:
    """log of the per-sample total count (floored at 1): (n,) float64."""
    return np.log(np.maximum(np.asarray(x.sum(axis=1), dtype=np.float64).ravel(), 1.0))
