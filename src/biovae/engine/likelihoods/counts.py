"""Count likelihoods: "poisson", "nb" (negative binomial) and "zinb" (zero-inflated NB), each
with the mean library * softmax(raw) (a per-sample library size) or exp(raw) without one. The NB
and ZINB densities are count_kernel's one definition; training evaluates them with its kernel."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from torch.distributions import Distribution, Gamma, Poisson

from biovae.engine.likelihoods.base import Likelihood, register
from biovae.engine.likelihoods.count_kernel import count_log_density, count_log_prob_raw, count_mean


@register("poisson")
class PoissonLikelihood(Likelihood):
    """Poisson counts with mean library * softmax(raw) (or exp(raw) without a library size)."""

    uses_library = True
    counts = True

    def distribution(self, raw, library=None):
        return Poisson(count_mean(raw, library).clamp(min=1e-8), validate_args=False)


class NegBinomial(Distribution):
    """Negative binomial with mean mu (batch, features) and inverse dispersion
    theta = exp(log_theta) (features,): Var = mu + mu^2 / theta; zero_logits (batch, features)
    make it zero-inflated (P(0) = pi + (1 - pi) NB(0), pi = sigmoid(zero_logits)). log_prob is
    count_kernel.count_log_density."""

    arg_constraints: dict = {}

    def __init__(self, mu: torch.Tensor, log_theta: torch.Tensor, zero_logits: torch.Tensor | None = None):
        self.mu, self.log_theta, self.zero_logits = mu, log_theta, zero_logits
        super().__init__(batch_shape=mu.shape, validate_args=False)

    def _keep(self):
        return None if self.zero_logits is None else torch.sigmoid(-self.zero_logits)

    @property
    def mean(self):
        keep = self._keep()
        return self.mu if keep is None else keep * self.mu

    @property
    def variance(self):
        v = self.mu + self.mu**2 / torch.exp(self.log_theta)
        keep = self._keep()
        return v if keep is None else keep * (v + self.mu**2) - (keep * self.mu) ** 2

    def log_prob(self, x):
        return count_log_density(x, self.mu, self.log_theta, self.zero_logits)

    def sample(self, sample_shape=torch.Size()):
        """Gamma-Poisson draws: lambda ~ Gamma(theta, theta / mu), x ~ Poisson(lambda); zeroed
        with probability pi where zero-inflated."""
        with torch.no_grad():
            theta = torch.exp(self.log_theta).expand_as(self.mu)
            rate = Gamma(theta, theta / self.mu.clamp(min=1e-8)).sample(sample_shape)
            draws = torch.poisson(rate)
            keep = self._keep()
            if keep is not None:
                draws = draws * torch.bernoulli(keep.expand(sample_shape + self.batch_shape))
            return draws


@register("nb")
class NB(Likelihood):
    """Negative binomial with mean mu and per-feature inverse dispersion theta:
    Var = mu + mu^2 / theta (see NegBinomial)."""

    uses_library = True
    counts = True
    zero_inflated: ClassVar[bool] = False

    def __init__(self, n_features: int):
        super().__init__(n_features)
        self.log_theta = nn.Parameter(torch.zeros(n_features))

    def distribution(self, raw, library=None):
        if not self.zero_inflated:
            return NegBinomial(count_mean(raw, library), self.log_theta)
        mean_raw, zero_logits = self.split(raw)
        return NegBinomial(count_mean(mean_raw, library), self.log_theta, zero_logits)

    def log_prob(self, x, raw, library=None):
        # the value of self.distribution(raw, library).log_prob(x).sum(-1), through the kernel
        return count_log_prob_raw(x, raw, self.log_theta, library, self.zero_inflated)


@register("zinb")
class ZINB(NB):
    """Zero-inflated negative binomial: NB plus a per-sample, per-feature dropout logit."""

    n_params = 2
    zero_inflated = True
