"""Disentanglement where the generative factors are known: a factor simulator and the MIG.

simulate_factors draws cells from a few independent factors (think: cell-cycle phase, a
differentiation stage, a stress response), each driving its own gene program through switch-like
responses. mig(latents, factors) is the mutual information gap of Chen et al. (2018, "Isolating
sources of disentanglement in VAEs"): for each factor, the gap between the two latent dimensions
that share the most information with it, divided by the factor's entropy, averaged over factors.
1 = each factor captured by exactly one dimension; 0 = no dimension singles any factor out.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from biovae.errors import require


def simulate_factors(n_cells: int = 1000, n_factors: int = 3, genes_per_factor: int = 20, levels: int = 10,
                     noise: float = 0.3, decay: float = 0.6, n_background: int = 0, seed: int = 0) -> ad.AnnData:
    """Expression-like data from independent discrete factors.

    Each factor k takes `levels` equally likely values u_k in {0, 1/(levels-1), ..., 1},
    independently per cell. Factor k owns `genes_per_factor` genes; gene g of it has
    log-expression  base_g + amp_g * sigmoid(slope_g * (u_k - threshold_g))  with
    base ~ U(0.5, 2), amp ~ decay**k * U(1, 3), threshold ~ U(0.2, 0.8) and slope = +-U(6, 14) (up
    or down with u_k), so each factor moves its genes nonlinearly and at different points of its
    range. Factors differ in strength (decay < 1): with equally strong factors every rotation of
    them explains the data equally well, and no model could prefer the factor axes.
    `n_background` further genes are constant. Gaussian noise (sd `noise`) is added and values
    are clipped at 0, giving a non-negative log-expression-like matrix.

    Returns AnnData: X (n_cells, n_factors * genes_per_factor + n_background) float32;
    obs 'factor_0'.. integer levels (0..levels-1); var 'factor' (owning factor, -1 background).
    """
    require(n_cells >= 2 and n_factors >= 1 and genes_per_factor >= 1 and levels >= 2,
            "simulate_factors needs n_cells >= 2, n_factors >= 1, genes_per_factor >= 1, levels >= 2")
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, levels, size=(n_cells, n_factors))
    u = codes / (levels - 1)
    blocks = []
    for k in range(n_factors):
        base = rng.uniform(0.5, 2.0, genes_per_factor)
        amp = decay ** k * rng.uniform(1.0, 3.0, genes_per_factor)
        thr = rng.uniform(0.2, 0.8, genes_per_factor)
        slope = rng.uniform(6.0, 14.0, genes_per_factor) * rng.choice([-1.0, 1.0], genes_per_factor)
        blocks.append(base + amp / (1.0 + np.exp(-slope * (u[:, [k]] - thr))))
    if n_background:
        blocks.append(np.broadcast_to(rng.uniform(0.5, 2.0, n_background), (n_cells, n_background)))
    mean = np.hstack(blocks)
    x = np.maximum(mean + noise * rng.standard_normal(mean.shape), 0.0).astype(np.float32)
    obs = pd.DataFrame({f"factor_{k}": codes[:, k] for k in range(n_factors)},
                       index=[f"cell_{i}" for i in range(n_cells)])
    owner = np.r_[np.repeat(np.arange(n_factors), genes_per_factor), -np.ones(n_background, int)]
    var = pd.DataFrame({"factor": owner}, index=[f"gene_{j}" for j in range(x.shape[1])])
    out = ad.AnnData(X=x, obs=obs, var=var)
    return out


def discretize(values: np.ndarray, n_bins: int = 20) -> np.ndarray:
    """Integer codes (n,) of a 1-D array: its distinct values when there are at most n_bins,
    else n_bins equal-width bins over its range."""
    values = np.asarray(values, dtype=np.float64).ravel()
    distinct = np.unique(values)
    if len(distinct) <= n_bins:
        return np.searchsorted(distinct, values)
    edges = np.linspace(values.min(), values.max(), n_bins + 1)[1:-1]
    return np.digitize(values, edges)


def _entropy(codes: np.ndarray) -> float:
    p = np.bincount(codes) / len(codes)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """Mutual information (nats) of two integer code arrays (n,), from their joint histogram."""
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    joint /= joint.sum()
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())


def mig(latents: np.ndarray, factors, n_bins: int = 20, *, logvar: np.ndarray | None = None, seed: int = 0) -> dict:
    """Mutual information gap of latents (n, d) for known factors (n, k) (array or DataFrame).

    Each latent dimension is cut into `n_bins` equal-width bins; factors with more than n_bins
    values are binned too. For factor j: gap_j = (I(z_a; v_j) - I(z_b; v_j)) / H(v_j) with a, b
    the dimensions of highest and second-highest mutual information. Needs d >= 2.
    latents are posterior means; with their `logvar` (n, d), one draw z ~ q(z | x) per sample
    (seeded) is binned instead, so that, as in Chen et al.'s estimator over q(z | x), a
    dimension the encoder ignores (posterior = prior) carries no information even when its
    mean wiggles with the input.
    Returns {"mig": mean gap, "per_factor": [gap_j], "mi": (k, d) mutual information, nats}.
    """
    z = np.asarray(latents, dtype=np.float64)
    if logvar is not None:
        lv = np.asarray(logvar, dtype=np.float64)
        require(lv.shape == z.shape, f"logvar has shape {lv.shape}, latents {z.shape}")
        z = z + np.exp(0.5 * lv) * np.random.default_rng(seed).standard_normal(z.shape)
    v = np.asarray(factors.to_numpy() if hasattr(factors, "to_numpy") else factors)
    v = v.reshape(len(v), -1)
    require(z.ndim == 2 and z.shape[1] >= 2, f"MIG needs latents (n, d >= 2), got shape {z.shape}")
    require(len(v) == len(z), f"{len(v)} factor rows for {len(z)} latent rows")
    zc = [discretize(z[:, i], n_bins) for i in range(z.shape[1])]
    gaps, mi = [], np.zeros((v.shape[1], z.shape[1]))
    for j in range(v.shape[1]):
        vc = discretize(v[:, j], n_bins)
        mi[j] = [mutual_information(c, vc) for c in zc]
        top = np.sort(mi[j])[::-1]
        h = _entropy(vc)
        gaps.append(float((top[0] - top[1]) / h) if h > 0 else 0.0)
    return {"mig": float(np.mean(gaps)), "per_factor": gaps, "mi": mi}
