"""The expression workflow's likelihoods: "hurdle_cell" is the default of biovae.expr.fit.

hurdle_cell  Hurdle Gaussian whose scale, like its location and zero probability, is decoded per
             cell and gene (softplus, floored at MIN_SCALE so a Gaussian cannot collapse on one
             value of discrete data). The engine's "hurdle" has one learned scale per gene for
             every cell. It lives in the engine's registry (biovae.engine.likelihoods), so that a
             saved model loads with VAE.load alone; it is re-exported here.
"""

from __future__ import annotations

from biovae.engine.likelihoods import HURDLE_CELL_MIN_SCALE as MIN_SCALE
from biovae.engine.likelihoods import CellScaleHurdle

__all__ = ["CellScaleHurdle", "MIN_SCALE"]
