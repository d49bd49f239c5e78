"""The hurdle likelihoods, for log-normalised expression whose zeros mean "not detected":
an exact zero with probability pi, else a Normal. "hurdle" learns one scale per feature,
"hurdle_cell" decodes the scale per sample and feature (the expression workflow's default).

Both have a start (Likelihood.start): hurdle data are scaled but not centred (zeros must stay
exact zeros; biovae.expr.preprocess), so a gene's non-zero values sit near mean / sd, far from
the 0 that a freshly built output head predicts (RPS24 on pbmc68k_reduced at 5.5, FTL at 4.2).
With a few hundred cells early stopping leaves only a few hundred optimizer steps, and in that
time the decoder never carried such genes' location to the data: the decoded scale absorbed the
residual, and generated cells spread these genes twice as wide as real cells (RPS24 within
monocytes: sd 1.03 against 0.54), the strongest feature of a real-vs-generated forest. Starting
at each gene's non-zero mean, zero fraction (as a logit) and non-zero spread lets training spend
its steps on what differs between cells; on pbmc68k_reduced (6 splits) the held-out RF-AUC of
the CVAE fell from 0.70 to 0.61 (benchmarks/expr_realism.py).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.distributions import Distribution, Normal

from biovae.engine.likelihoods.base import HALF_LOG_2PI, Likelihood, register
from biovae.engine.likelihoods.hurdle_kernel import hurdle_log_prob_raw

HURDLE_CELL_MIN_SCALE = 0.05  # floor of hurdle_cell's scale, in the data's (standardised) units
MIN_SHARE = 1e-3  # zero fractions are clipped to [MIN_SHARE, 1 - MIN_SHARE] before the logit


def zero_logit(marginals) -> np.ndarray:
    share = np.clip(marginals.zero_fraction, MIN_SHARE, 1 - MIN_SHARE)
    return np.log(share / (1 - share))


class Hurdle(Distribution):
    """Exact zeros with probability pi, else Normal(loc, scale): P(0) = pi; density elsewhere
    (1 - pi) N(x; loc, scale). For log-normalised expression, where zero means 'not detected'."""

    arg_constraints: dict = {}

    def __init__(self, zero_logits: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor):
        self.zero_logits, self.normal = zero_logits, Normal(loc, scale, validate_args=False)
        super().__init__(batch_shape=loc.shape, validate_args=False)

    @property
    def mean(self):
        return torch.sigmoid(-self.zero_logits) * self.normal.loc

    @property
    def variance(self):
        keep = torch.sigmoid(-self.zero_logits)
        m, v = self.normal.loc, self.normal.scale**2
        return keep * (v + m**2) - (keep * m) ** 2

    def log_prob(self, x):
        # Normal.log_prob written out with products instead of pow, and one softplus for both
        # log(1 - pi) and log pi = l + log(1 - pi): the same values, fewer and faster kernels
        log_keep = -nn.functional.softplus(self.zero_logits)
        scale = self.normal.scale
        z = (x - self.normal.loc) / scale
        normal = -0.5 * z * z - torch.log(scale) - HALF_LOG_2PI
        return torch.where(x == 0, self.zero_logits + log_keep, log_keep + normal)

    def sample(self, sample_shape=torch.Size()):
        with torch.no_grad():
            keep = torch.bernoulli(torch.sigmoid(-self.zero_logits).expand(sample_shape + self.batch_shape))
            return self.normal.sample(sample_shape) * keep


@register("hurdle")
class HurdleNormal(Likelihood):
    """Hurdle Gaussian: a per-sample, per-feature probability of an exact zero, and a Gaussian with
    learned per-feature scale for the rest. Data must keep their zeros as exact zeros."""

    n_params = 2

    def __init__(self, n_features: int):
        super().__init__(n_features)
        self.log_scale = nn.Parameter(torch.zeros(n_features))

    def distribution(self, raw, library=None):
        loc, zero_logits = self.split(raw)
        return Hurdle(zero_logits, loc, torch.exp(self.log_scale).expand_as(loc))

    def log_prob(self, x, raw, library=None):
        """The training objective: the C kernel (engine.likelihoods.hurdle_kernel) where it runs,
        else the distribution's log_prob (the reference)."""
        out = hurdle_log_prob_raw(x, raw, self.log_scale)
        return super().log_prob(x, raw, library) if out is None else out

    def start(self, marginals) -> np.ndarray:
        with torch.no_grad():
            self.log_scale.copy_(torch.as_tensor(np.log(marginals.nonzero_sd), dtype=self.log_scale.dtype))
        return np.concatenate([marginals.nonzero_mean, zero_logit(marginals)])


@register("hurdle_cell")
class CellScaleHurdle(Likelihood):
    """Hurdle Gaussian whose scale, like its location and zero probability, is decoded per sample
    and feature (n_params 3: loc, zero logit, raw scale; scale = softplus(raw) + a floor of
    HURDLE_CELL_MIN_SCALE, so that it cannot collapse onto one value of discrete data). The
    expression workflow's default (biovae.expr.fit). Data must keep their zeros as exact zeros."""

    n_params = 3

    def distribution(self, raw, library=None):
        loc, zero_logits, scale_raw = self.split(raw)
        return Hurdle(zero_logits, loc, nn.functional.softplus(scale_raw) + HURDLE_CELL_MIN_SCALE)

    def log_prob(self, x, raw, library=None):
        """The training objective: the C kernel (engine.likelihoods.hurdle_kernel) where it runs,
        else the distribution's log_prob (the reference)."""
        out = hurdle_log_prob_raw(x, raw, None, HURDLE_CELL_MIN_SCALE)
        return super().log_prob(x, raw, library) if out is None else out

    def start(self, marginals) -> np.ndarray:
        s = np.maximum(marginals.nonzero_sd - HURDLE_CELL_MIN_SCALE, 1e-3)  # softplus(raw) = s
        return np.concatenate([marginals.nonzero_mean, zero_logit(marginals), s + np.log(-np.expm1(-s))])
