"""Where generated cells start in latent space, per label.

prior      z ~ N(0, I): what the VAE's objective promises; decoded under the label's condition.
mixture    z from a Gaussian mixture (full covariances, sampled with its noise, not only its
           means) fitted to the latent means of that label's training cells. Closer to the
           aggregate posterior than the prior when the KL term has not pulled it onto N(0, I).
posterior  z ~ q(z | x) of training cells of that label picked at random: new draws around real
           cells (an augmentation in the style of perturbing encoded samples).

What they need is fitted once at the end of training and saved with the model as arrays
("gmm.<label index>.*", "post.<label index>.*", "lib.<label index>", and for lattice models
"size.<label index>").

Size factors (lattice models, and counts modelled on a continuous scale, whose log1p(k * target /
library) is the same lattice; see expr.preprocess): a cell's size factor s = target / total
counts falls as its number of detected genes rises (log-log correlation -0.83 on
pbmc68k_reduced; it is the same sequencing depth seen twice). So log s is regressed on
log(detected genes) of the training cells: one slope pooled within labels, one intercept per
label, Gaussian residuals (pooled sd). A generated cell draws its s from that regression at its
own number of detected genes, which keeps depth and detection consistent within the cell.
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
        seed: int, sizes: np.ndarray | None = None, detected: np.ndarray | None = None,
        cond: dict | None = None) -> None:
    """Store the samplers' state in vae.state. x: model-scale training cells (n, genes);
    raw_library: their input-scale totals (n,); labels: (n,) str or None; sizes / detected:
    size factors and detected-gene counts (n,) of the cells of a lattice model, else None;
    cond: the cells' conditions as given to the VAE (default: the labels)."""
    cond = cond if cond is not None else (None if labels is None else {"label": labels})
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
        vae.state[f"lib.{i}"] = np.array([logs.mean(), logs.std(), logs.min(), logs.max()])
    if sizes is not None:
        _fit_sizes(vae, np.log(sizes), np.log(np.maximum(detected, 1)), labels, known)


def _fit_sizes(vae, log_s: np.ndarray, log_d: np.ndarray, labels, known) -> None:
    """state["size.<i>"] = [intercept, slope, residual sd, mean log s] of log s ~ log detected."""
    groups = [np.arange(len(log_s)) if idx is None else idx for _, idx in _groups(labels, known)]
    ds = np.concatenate([log_d[g] - log_d[g].mean() for g in groups if len(g)])
    ss = np.concatenate([log_s[g] - log_s[g].mean() for g in groups if len(g)])
    slope = float((ds * ss).sum() / (ds * ds).sum()) if (ds * ds).sum() > 0 else 0.0
    sd = float(np.std(ss - slope * ds))
    for i, g in enumerate(groups):
        mean_s, mean_d = (log_s[g].mean(), log_d[g].mean()) if len(g) else (log_s.mean(), log_d.mean())
        vae.state[f"size.{i}"] = np.array([mean_s - slope * mean_d, slope, sd, mean_s])


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


def draw_size(model, label: str | None, y: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """Size factors (n,) for decoded model-scale cells y (n, genes) of `label`; None unless the
    model is a lattice model or models counts on a continuous scale (`pre.integer`, where
    s = target / library). Detected genes are counted at the label's typical size factor."""
    if not (model.pre.lattice or model.pre.integer) or f"size.{_index(model, label)}" not in model.vae.state:
        return None
    a, b, sd, mean_s = model.vae.state[f"size.{_index(model, label)}"]
    v = y.astype(np.float64) * model.pre.scale + model.pre.center
    typical = np.full((len(y), 1), np.exp(mean_s))
    detected = (model.pre.lattice_counts(y, v, typical) > 0).sum(axis=1)
    return np.exp(a + b * np.log(np.maximum(detected, 1)) + sd * rng.standard_normal(len(y)))


def draw_library(model, label: str | None, n: int, rng: np.random.Generator) -> np.ndarray | None:
    """Per-cell totals (n,) on the input scale, log-normal per label and kept within the label's
    training range (models saved before that range was stored are not clipped); None when the
    preprocessing does not need one (only library-normalised Gaussian models do)."""
    if model.pre.transform != "normalize_log1p":
        return None
    params = model.vae.state[f"lib.{_index(model, label)}"]
    logs = rng.normal(params[0], params[1], size=n)
    if len(params) >= 4:
        logs = np.clip(logs, params[2], params[3])
    return np.exp(logs)
