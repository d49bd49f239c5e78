"""Expression-specific likelihoods, registered in the engine's registry on import of biovae.expr.

hurdle_cell  Hurdle Gaussian whose scale, like its location and zero probability, is decoded per
             cell and gene (softplus, floored at MIN_SCALE so a Gaussian cannot collapse on one
             value of discrete data). The engine's "hurdle" has one learned scale per gene for
             every cell.
"""

from __future__ import annotations

import torch
from torch import nn

from biovae.engine.likelihoods import Hurdle, Likelihood, register

MIN_SCALE = 0.05  # model units (per-gene standardised values)


@register("hurdle_cell")
class CellScaleHurdle(Likelihood):
    """Exact zeros with probability sigmoid(zero_logit), else Normal(loc, scale), all three per
    cell and gene from the decoder (n_params 3). For non-negative data whose zeros are exact."""

    n_params = 3

    def distribution(self, raw, library=None):
        loc, zero_logits, scale_raw = self._split(raw)
        return Hurdle(zero_logits, loc, nn.functional.softplus(scale_raw) + MIN_SCALE)
