"""The likelihood package: the registry and base class (base), and the likelihoods that register
themselves on import: gaussian ("gaussian", "normal", "bernoulli"), counts ("poisson", "nb",
"zinb", their density in count_kernel) and hurdle ("hurdle", "hurdle_cell")."""

from biovae.engine.likelihoods import counts, gaussian, hurdle  # noqa: F401  (they register)
from biovae.engine.likelihoods.base import HALF_LOG_2PI, Likelihood, available, get, log_library, register

__all__ = ["HALF_LOG_2PI", "Likelihood", "available", "get", "log_library", "register"]
