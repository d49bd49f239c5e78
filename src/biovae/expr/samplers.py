"""Where generated cells start in latent space, per label.

prior      z ~ N(0, I): what the VAE's objective promises; decoded under the label's condition.
mixture    z from a Gaussian mixture (full covariances, sampled with its noise, not only its
           means) fitted to the latent means of that label's training cells. Closer to the
           aggregate posterior than the prior when the KL term has not pulled it onto N(0, I).
posterior  z ~ q(z | x) of training cells of that label picked at random: new draws around real
           cells (an augmentation in the style of perturbing encoded samples).

What they need is fitted once at the end of training and saved with the model as arrays
("gmm.<label index>.*", "post.<label index>.*", "lib.<label index>").
"""

from __future__ import annotations

import numpy as np
from sklearn.mixture import GaussianMixture

METHODS = ("prior", "mixture", "posterior")
POSTERIOR_CELLS = 2000  # per label: enough variety, bounded model files for large atlases


def _groups(labels: np.ndarray | None, known: list[str] | None):
    if labels is None:
        yield 0, None
    else:
        for i, lab in enumerate(known):
            yield i, np.flatnonzero(labels == lab)


def fit(vae, x: np.ndarray, raw_library: np.ndarray, labels: np.ndarray | None, known: list[str] | None,
        seed: int) -> None:
    """Store the samplers' state in vae.state. x: model-scale training cells (n, genes);
    raw_library: their input-scale totals (n,); labels: (n,) str or None."""
    cond = None if labels is None else {"label": labels}
    mean, logvar = vae.encode(x, cond)
    rng = np.random.default_rng(seed)
    for i, idx in _groups(labels, known):
        idx = np.arange(len(x)) if idx is None else idx
        m = mean[idx].astype(np.float64)
        k = int(min(4, max(1, len(idx) // 25)))
        gmm = GaussianMixture(k, covariance_type="full", reg_covar=1e-4, random_state=seed).fit(m)
        vae.state[f"gmm.{i}.weights"] = gmm.weights_
        vae.state[f"gmm.{i}.means"] = gmm.means_
        vae.state[f"gmm.{i}.covariances"] = gmm.covariances_
        keep = idx if len(idx) <= POSTERIOR_CELLS else rng.choice(idx, POSTERIOR_CELLS, replace=False)
        vae.state[f"post.{i}.mean"] = mean[keep]
        vae.state[f"post.{i}.logvar"] = logvar[keep]
        logs = np.log(np.maximum(raw_library[idx], 1e-12))
        vae.state[f"lib.{i}"] = np.array([logs.mean(), logs.std()])


def _index(model, label: str | None) -> int:
    return 0 if label is None else model.labels.index(label)


def draw_latent(model, method: str, label: str | None, n: int, rng: np.random.Generator) -> np.ndarray:
    """n latent points (n, latent_dim) float32 for `label` by `method`."""
    d, st, i = model.vae.latent_dim, model.vae.state, _index(model, label)
    if method == "prior":
        z = rng.standard_normal((n, d))
    elif method == "mixture":
        w, mu, cov = st[f"gmm.{i}.weights"], st[f"gmm.{i}.means"], st[f"gmm.{i}.covariances"]
        comp = rng.choice(len(w), size=n, p=w / w.sum())
        z = np.empty((n, d))
        for c in np.unique(comp):
            sel = comp == c
            z[sel] = rng.multivariate_normal(mu[c], cov[c], size=int(sel.sum()))
    else:
        pm, plv = st[f"post.{i}.mean"], st[f"post.{i}.logvar"]
        pick = rng.integers(0, len(pm), size=n)
        z = pm[pick] + np.exp(0.5 * plv[pick]) * rng.standard_normal((n, d))
    return z.astype(np.float32)


def draw_library(model, label: str | None, n: int, rng: np.random.Generator) -> np.ndarray | None:
    """Per-cell totals (n,) on the input scale, log-normal per label; None when the
    preprocessing does not need one (only library-normalised Gaussian models do)."""
    if model.pre.transform != "normalize_log1p":
        return None
    mu, sd = model.vae.state[f"lib.{_index(model, label)}"]
    return np.exp(rng.normal(mu, sd, size=n))
