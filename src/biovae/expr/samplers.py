"""Where generated cells start in latent space, per label.

prior      z ~ N(0, I): what the VAE's objective promises; decoded under the label's condition.
mixture    z from a Gaussian mixture (full covariances, sampled with its noise, not only its
           means) fitted to the latent means of that label's training cells. Closer to the
           aggregate posterior than the prior when the KL term has not pulled it onto N(0, I).
           Up to GMM_COMPONENTS (10) components, one per 25 cells. With 4 at most, the forest
           of benchmarks/expr_forest_tells.py told unlabelled pbmc68k_counts cells by their
           principal components (AUC 0.66) more than by any gene (0.55) or cell total (0.54):
           several cell types in one group, one latent region each, and 4 Gaussians smear
           them. Held-out RF-AUC, development sets, 3 splits, same fits
           (benchmarks/expr_choice_dev.py): pbmc68k_counts hurdle_cell 0.696 -> 0.601, hurdle
           0.606 -> 0.578; pbmc68k_reduced hurdle_cell 0.602 -> 0.607, hurdle 0.624 -> 0.591
           (20 components: 0.619, 0.550, 0.607, 0.591).
posterior  z ~ q(z | x) of training cells of that label picked at random: new draws around real
           cells (an augmentation in the style of perturbing encoded samples).

What they need is fitted once at the end of training and saved with the model as typed state
records (biovae.engine.state): LatentSamplers ("samplers.gmm.<label index>.*",
"samplers.post.<label index>.*", and for lattice models "samplers.size.<label index>") and
InputLibraries (the engine's library-size model of the input-scale totals, per label).
Files written before these records load through `upgrade_state`.

Size factors (lattice models, and counts modelled on a continuous scale, whose log1p(k * target /
library) is the same lattice; see expr.preprocess): a cell's size factor s = target / total
counts falls as its number of detected genes rises (log-log correlation -0.83 on
pbmc68k_reduced; it is the same sequencing depth seen twice). So log s is regressed on
log(detected genes) of the training cells: one slope pooled within labels, one intercept per
label, Gaussian residuals (pooled sd). A generated cell draws its s from that regression at its
own number of detected genes, which keeps depth and detection consistent within the cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from sklearn.mixture import GaussianMixture

from biovae.engine import state

METHODS = ("prior", "mixture", "posterior")
GMM_COMPONENTS, CELLS_PER_COMPONENT = 10, 25  # mixture components per label: at most 10, >= 25 cells each
POSTERIOR_CELLS = 2000  # per label: enough variety, bounded model files for large atlases
_OLD_PREFIXES = ("gmm.", "post.", "size.")  # flat keys of files written before the records


@dataclass
class LabelSampler:
    """One label's (or, without labels, all cells') latent samplers: a Gaussian mixture of the
    training latent means, up to POSTERIOR_CELLS posteriors (mean, log-variance), and for size
    factors [intercept, slope, residual sd, mean log s] of log s ~ log detected (or None)."""

    gmm_weights: np.ndarray
    gmm_means: np.ndarray
    gmm_covariances: np.ndarray
    post_mean: np.ndarray
    post_logvar: np.ndarray
    size: np.ndarray | None = None


@dataclass
class LatentSamplers(state.Record):
    """The samplers of every label, by label index (the model's label order)."""

    namespace: ClassVar[str] = "samplers"
    labels: list[LabelSampler] = field(default_factory=list)

    def posterior_means(self, i: int | None = None) -> np.ndarray:
        """Stored training latent means of label index i, or of all labels (None)."""
        parts = self.labels if i is None else [self.labels[i]]
        return np.concatenate([p.post_mean for p in parts])

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for i, p in enumerate(self.labels):
            out.update({f"gmm.{i}.weights": p.gmm_weights, f"gmm.{i}.means": p.gmm_means,
                        f"gmm.{i}.covariances": p.gmm_covariances, f"post.{i}.mean": p.post_mean,
                        f"post.{i}.logvar": p.post_logvar})
            if p.size is not None:
                out[f"size.{i}"] = p.size
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "LatentSamplers":
        count = 1 + max(int(k.split(".")[1]) for k in arrays)
        return cls([LabelSampler(arrays[f"gmm.{i}.weights"], arrays[f"gmm.{i}.means"],
                                 arrays[f"gmm.{i}.covariances"], arrays[f"post.{i}.mean"],
                                 arrays[f"post.{i}.logvar"], arrays.get(f"size.{i}")) for i in range(count)])


class InputLibraries(state.LibrarySizes):
    """The engine's library-size model, of the input-scale totals of the training cells per
    label (block "cells"); drawn for library-normalised Gaussian models."""

    namespace: ClassVar[str] = "input_library"


def upgrade_state(arrays: dict[str, np.ndarray]) -> None:
    """Move a model file's flat sampler keys (written before the typed records) into the records,
    in place: "gmm.*", "post.*", "size.*" under LatentSamplers, "lib.<i>" ([mean, sd(, min,
    max)] of log totals per label) into an InputLibraries table."""
    for key in [k for k in arrays if k.startswith(_OLD_PREFIXES)]:
        arrays[f"{LatentSamplers.namespace}.{key}"] = arrays.pop(key)
    old = sorted((int(k.split(".")[1]), k) for k in arrays if k.startswith("lib."))
    if old:
        rows = [np.asarray(arrays.pop(k), dtype=np.float64) for _, k in old]
        width = min(len(r) for r in rows)
        table = np.vstack([rows[0][:width]] + [r[:width] for r in rows]) if len(rows) > 1 else rows[0][None, :width]
        state.put(arrays, InputLibraries({"cells": table}))


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
    samplers = LatentSamplers()
    for i, idx in _groups(labels, known):
        idx = np.arange(len(x)) if idx is None else idx
        m = mean[idx].astype(np.float64)
        k = int(min(GMM_COMPONENTS, max(1, len(idx) // CELLS_PER_COMPONENT)))
        gmm = GaussianMixture(k, covariance_type="full", reg_covar=1e-4, random_state=seed).fit(m)
        keep = idx if len(idx) <= POSTERIOR_CELLS else rng.choice(idx, POSTERIOR_CELLS, replace=False)
        samplers.labels.append(LabelSampler(gmm.weights_, gmm.means_, gmm.covariances_, mean[keep], logvar[keep]))
    if sizes is not None:
        for p, row in zip(samplers.labels, _fit_sizes(np.log(sizes), np.log(np.maximum(detected, 1)), labels, known)):
            p.size = row
    state.put(vae.state, samplers)
    codes = None if labels is None else np.searchsorted(np.asarray(known), labels)
    logs = np.log(np.maximum(raw_library, 1e-12))
    state.put(vae.state, InputLibraries({"cells": InputLibraries.fit(logs, codes, len(known or []))}))


def _fit_sizes(log_s: np.ndarray, log_d: np.ndarray, labels, known) -> list[np.ndarray]:
    """Per label, [intercept, slope, residual sd, mean log s] of log s ~ log detected."""
    groups = [np.arange(len(log_s)) if idx is None else idx for _, idx in _groups(labels, known)]
    ds = np.concatenate([log_d[g] - log_d[g].mean() for g in groups if len(g)])
    ss = np.concatenate([log_s[g] - log_s[g].mean() for g in groups if len(g)])
    slope = float((ds * ss).sum() / (ds * ds).sum()) if (ds * ds).sum() > 0 else 0.0
    sd = float(np.std(ss - slope * ds))
    rows = []
    for g in groups:
        mean_s, mean_d = (log_s[g].mean(), log_d[g].mean()) if len(g) else (log_s.mean(), log_d.mean())
        rows.append(np.array([mean_s - slope * mean_d, slope, sd, mean_s]))
    return rows


def _index(model, label: str | None) -> int:
    return 0 if label is None else model.labels.index(label)


def draw_latent(model, method: str, label: str | None, n: int, rng: np.random.Generator) -> np.ndarray:
    """n latent points (n, latent_dim) float32 for `label` by `method`."""
    d = model.vae.latent_dim
    if method == "prior":
        z = rng.standard_normal((n, d))
    elif method == "mixture":
        p = model.samplers.labels[_index(model, label)]
        w, mu, cov = p.gmm_weights, p.gmm_means, p.gmm_covariances
        comp = rng.choice(len(w), size=n, p=w / w.sum())
        z = np.empty((n, d))
        for c in np.unique(comp):
            sel = comp == c
            z[sel] = rng.multivariate_normal(mu[c], cov[c], size=int(sel.sum()))
    else:
        p = model.samplers.labels[_index(model, label)]
        pm, plv = p.post_mean, p.post_logvar
        pick = rng.integers(0, len(pm), size=n)
        z = pm[pick] + np.exp(0.5 * plv[pick]) * rng.standard_normal((n, d))
    return z.astype(np.float32)


def draw_size(model, label: str | None, y: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """Size factors (n,) for decoded model-scale cells y (n, genes) of `label`; None unless the
    model is a lattice model or models counts on a continuous scale (`pre.integer`, where
    s = target / library). Detected genes are counted at the label's typical size factor."""
    size = model.samplers.labels[_index(model, label)].size
    if not (model.pre.lattice or model.pre.integer) or size is None:
        return None
    a, b, sd, mean_s = size
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
    record = state.get(model.vae.state, InputLibraries)
    codes = None if label is None else np.full(n, _index(model, label))
    return record.draw("cells", codes, n, rng)
