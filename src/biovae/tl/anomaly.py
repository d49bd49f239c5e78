"""Per-sample anomaly scores from a fitted VAE: how poorly a sample is explained by the model.

    ref = fit_reference(model, train)            # once, stored in model.vae.state (saved with it)
    scores = anomaly_scores(model, new_cells)    # DataFrame, one row per cell, higher = stranger
    scores = anomaly_scores([m1, m2, m3], new_cells)   # an ensemble: each score averaged

For finding cells of unseen types or states, fit the models with biovae.tl.fit_anomaly_models
(settings measured for that, see biovae.tl.anomaly_model; it also stores the training cells'
ScoreScales) and rank cells by knn_resid, the default (biovae.tl.DEFAULT_SCORE).

Scores (all "higher is more unusual"):
  neg_elbo      -ELBO (beta 1) = recon_nll + kl, in nats per sample
  recon_nll     negative log-likelihood of the sample under its decoded distribution (nats)
  recon_mse     mean squared error of the mean reconstruction on the model's scale (per feature)
  kl            KL(q(z | x) || N(0, I)) in nats
  encoder_var   mean posterior variance over latent dimensions (the encoder's uncertainty)
  mahalanobis   distance of the posterior mean to the training latents' Gaussian (mean, covariance)
  latent_knn    mean Euclidean distance of the posterior mean to its k nearest training latents
  std_resid     mean over features of ((x - decoded posterior mean) / that feature's residual sd
                over the training cells)^2: the reconstruction error in units the training cells
                set per gene (NaN unless fit_score_scales stored them)
  knn_resid     (latent_knn and std_resid, each minus its median over the training cells and
                divided by its spread there (IQR / 1.349)), averaged: where a cell lies and how
                much of it the latent leaves unexplained (NaN unless fit_score_scales ran)

The training latent distribution comes from `reference` data, else from what fit_reference
stored, else (expression models) from the encoded training cells the samplers stored.

Why the scores behave as they do (leave-one-group-out on four public data sets, genes chosen on
training cells only; benchmarks/anomaly_groups.py and anomaly_choose.py, docs/exploration.md):
  - encoder_var ranks novel cells *below* normal ones (AUROC 0.26-0.49). The encoder learns its
    variance on training cells only, where cells with more extreme values pin z down better; on
    a novel cell, whose standardised values lie further from the training means, it
    extrapolates that rule: encoder_var falls as their mean square rises (Spearman -0.30 to
    -0.77 over the scored cells). It is confidence learned in-distribution.
  - neg_elbo is almost all reconstruction (it tracks recon_mse and PCA error within 0.03).
  - latent_knn: the encoder maps a held-out time point of one lineage onto its neighbours
    (novel / normal median distance 1.2 on guo and hsmm, against 1.5 for pbmc's cell types),
    so it loses there (AUROC 0.75 guo, 0.69 hsmm, below PCA error); std_resid sees what the
    latent leaves out (ratio 1.8 on both) but not T-cell subsets (ratio 1.0-1.2), where
    latent_knn is the better half. knn_resid takes both.
  - Round 4: with few training samples (all_b, 50-60 leukaemia patients) the latent does not set
    a new subtype apart (novel / normal latent_knn 0.96) and PCA error is best (0.74 vs 0.64);
    for a new person in a blood time course (flu_subject, confirmation) latent_knn is at chance
    (0.51) and std_resid carries knn_resid (0.80, above PCA error 0.77). No mix of latent,
    residual and PCA-space scores beat every baseline on every development set.
Calibrated calls: biovae.tl.anomaly_calibration (conformal p-values from held-out normal cells).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

import anndata as ad
import numpy as np
import pandas as pd

from biovae.engine import state
from biovae.errors import BiovaeError, require
from biovae.expr.samplers import LatentSamplers
from biovae.images.model import TrainingPatches
from biovae.tl.interpolate import expression_input, model_parts

SCORES = ("neg_elbo", "recon_nll", "recon_mse", "kl", "encoder_var", "mahalanobis", "latent_knn", "std_resid",
          "knn_resid")
REFERENCE_CELLS = 5000  # latents kept for the k-nearest-neighbour score (seeded subsample)


@dataclass
class TrainingLatents(state.Record):
    """Latent means of up to REFERENCE_CELLS training cells (fit_reference), saved with the model."""

    namespace: ClassVar[str] = "anomaly"
    latents: np.ndarray

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"latents": self.latents}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "TrainingLatents":
        return cls(arrays["latents"])


@dataclass
class ScoreScales(state.Record):
    """What std_resid and knn_resid need from the training cells (fit_score_scales), saved with
    the model: each feature's residual sd (input minus the decoded posterior mean, model scale),
    and the median and spread (IQR / 1.349) of latent_knn (each cell left out of its own
    neighbours) and std_resid over the training cells."""

    namespace: ClassVar[str] = "anomaly_scales"
    feature_sd: np.ndarray
    centers: np.ndarray  # latent_knn, std_resid
    spreads: np.ndarray

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"feature_sd": self.feature_sd, "centers": self.centers, "spreads": self.spreads}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "ScoreScales":
        return cls(arrays["feature_sd"], arrays["centers"], arrays["spreads"])


def _center_spread(values: np.ndarray) -> tuple[float, float]:
    q1, med, q3 = np.percentile(np.asarray(values, dtype=np.float64), [25, 50, 75])
    return float(med), max(float(q3 - q1) / 1.349, 1e-12)


def fit_score_scales(model, data, *, labels=None, layer=None, k: int = 10, seed: int = 0) -> ScoreScales:
    """Store ScoreScales of the training cells `data` in the model (biovae.tl.fit_anomaly_models
    calls it): needed by std_resid and knn_resid. Also keeps the training latents (fit_reference)."""
    vae, _ = model_parts(model)
    ref = fit_reference(model, data, labels=labels, layer=layer, seed=seed)
    with _input(model, data, labels, layer, "the training data") as (x, cond, _):
        x = np.asarray(x, dtype=np.float32)  # training cells, in memory
        resid = x - vae.reconstruct(x, cond)
        mean, _ = vae.encode(x, cond)
    sd = np.maximum(resid.std(0), 1e-3 * max(float(resid.std()), 1e-12)).astype(np.float32)
    kk = int(min(k, len(ref) - 1))
    require(kk >= 1, "fit_score_scales needs at least two training cells")
    from sklearn.neighbors import NearestNeighbors

    dist, _ = NearestNeighbors(n_neighbors=kk + 1).fit(ref).kneighbors(mean)
    knn_fit = dist[:, 1:].mean(1)  # the cell itself is its own nearest reference latent
    std_fit = ((resid / sd) ** 2).mean(1)
    (c1, s1), (c2, s2) = _center_spread(knn_fit), _center_spread(std_fit)
    scales = ScoreScales(sd, np.array([c1, c2]), np.array([s1, s2]))
    state.put(vae.state, scales)
    return scales


def _is_backed(data) -> bool:
    from biovae.io.backed import BackedExpression

    return isinstance(data, BackedExpression) or (isinstance(data, ad.AnnData) and data.isbacked)


def _backed_input(expr, data, labels, layer, source):
    """The cells of an .h5ad opened for reading by rows (AnnData with backed="r" or a
    BackedExpression) as a ChunkedRows of model input, their conditions and names; the open
    file is closed by the caller (returned last)."""
    from biovae.io.backed import open_backed
    from biovae.io.expression import get_labels

    opened = open_backed(data, layer)
    cond = None
    if expr.conditional:
        key = labels if labels is not None else expr.label_key
        cond = {"label": get_labels(ad.AnnData(obs=opened.obs), key)}
    return expr.chunked_input(opened, source), cond, [str(c) for c in opened.cells], opened


@contextmanager
def _input(model, data, labels, layer, source):
    """Model-scale matrix (n, features) (a ChunkedRows read by rows for backed data), its
    conditions and sample names; a file opened here is closed on leaving."""
    vae, expr = model_parts(model)
    if expr is not None and _is_backed(data):
        x, cond, names, opened = _backed_input(expr, data, labels, layer, source)
        try:
            yield x, cond, names
        finally:
            if opened is not data:
                opened.close()
        return
    yield _dense_input(model, data, labels, layer, source)


def _dense_input(model, data, labels, layer, source):
    vae, expr = model_parts(model)
    if expr is not None:
        x, cond = expression_input(expr, data, layer, labels, source)
        names = getattr(data, "obs_names", getattr(data, "index", None))
        return x, cond, [str(n) for n in names] if names is not None else [f"cell_{i}" for i in range(len(x))]
    x = np.asarray(data, dtype=np.float32)
    if x.ndim > 2:  # e.g. image patches (n, H, W) for a model over flattened images
        x = x.reshape(len(x), -1)
    require(x.ndim == 2 and x.shape[1] == vae.n_features,
            f"{source} has shape {np.shape(data)}, but the model takes {vae.n_features} values per sample",
            f"give data of the kind the model ({vae.metadata.get('kind', 'engine')}) was fitted on")
    cond = None
    if vae.config.conditions:
        require(isinstance(labels, dict), "this model is conditional: pass labels={covariate: labels}")
        cond = labels
    return x, cond, [f"sample_{i}" for i in range(len(x))]


def fit_reference(model, data, *, labels=None, layer=None, seed: int = 0) -> np.ndarray:
    """Encode the training data and keep up to REFERENCE_CELLS latent means in model.vae.state
    (saved with the model), for the mahalanobis and latent_knn scores. Returns them (n, d)."""
    vae, _ = model_parts(model)
    latents = _encode_reference(model, data, labels, layer, seed)
    state.put(vae.state, TrainingLatents(latents))
    return latents


def _encode_reference(model, data, labels, layer, seed) -> np.ndarray:
    vae, _ = model_parts(model)
    with _input(model, data, labels, layer, "the reference data") as (x, cond, _):
        mean, _ = vae.encode(x, cond)
    if len(mean) > REFERENCE_CELLS:
        mean = mean[np.sort(np.random.default_rng(seed).choice(len(mean), REFERENCE_CELLS, replace=False))]
    return mean.astype(np.float32)


def reference_latents(model, reference=None, *, labels=None, layer=None, seed: int = 0) -> np.ndarray:
    """Latent means (n, latent_dim) of the training distribution (see the module notes)."""
    vae, _ = model_parts(model)
    if reference is not None:
        return _encode_reference(model, reference, labels, layer, seed)
    kept = state.get(vae.state, TrainingLatents)
    if kept is not None:
        return np.asarray(kept.latents, dtype=np.float32)
    stored = state.get(vae.state, LatentSamplers)
    if stored is not None:
        return stored.posterior_means().astype(np.float32)
    raise BiovaeError("the model holds no training latents for the latent-distance scores",
                      "pass reference=<training data>, or call fit_reference(model, training data) once")


def mahalanobis(z: np.ndarray, ref: np.ndarray, ridge: float = 1e-6) -> np.ndarray:
    """Mahalanobis distance (n,) of rows of z (n, d) to the Gaussian fitted to ref (m, d); the
    covariance gets `ridge` times its mean variance on the diagonal, so that it inverts."""
    mu = ref.mean(0)
    cov = np.atleast_2d(np.cov(ref.astype(np.float64), rowvar=False))
    cov += ridge * max(float(np.trace(cov)) / len(cov), 1e-12) * np.eye(len(cov))
    d = z.astype(np.float64) - mu
    return np.sqrt(np.maximum(np.einsum("ij,ij->i", d @ np.linalg.inv(cov), d), 0.0))


def knn_distance(z: np.ndarray, ref: np.ndarray, k: int = 10) -> np.ndarray:
    """Mean Euclidean distance (n,) from each row of z to its k nearest rows of ref."""
    from sklearn.neighbors import NearestNeighbors

    k = int(min(k, len(ref)))
    require(k >= 1, "the reference holds no latents")
    dist, _ = NearestNeighbors(n_neighbors=k).fit(ref).kneighbors(z)
    return dist.mean(1)


def anomaly_scores(model, data, *, labels=None, layer=None, reference=None, n_samples: int = 1,
                   k: int = 10, seed: int = 0) -> pd.DataFrame:
    """Anomaly scores of each sample of `data`: a DataFrame (samples x SCORES), index = names.

    model: a list of models (an ensemble, e.g. from fit_anomaly_models) gives each score
      averaged over them (each model reads its own genes from `data`); or one ExpressionModel (data: AnnData/DataFrame/matrix over its genes, on the input scale;
      an AnnData opened with backed="r" or a biovae.io.backed.BackedExpression is read in row
      chunks, so memory does not grow with the number of cells beyond the scores themselves)
      or engine VAE (data: (n, n_features) array on the model's scale; (n, H, W) is flattened).
    labels: for a conditional model, an obs column / label array (expression) or a condition
      dict (engine). reference: training data to define the latent distribution (default: the
      stored one, see reference_latents). n_samples: posterior draws for recon_nll (seeded).
    k: neighbours for latent_knn.
    """
    if isinstance(model, (list, tuple)):
        require(len(model) >= 1, "anomaly_scores got an empty list of models")
        frames = [anomaly_scores(m, data, labels=labels, layer=layer, reference=reference, n_samples=n_samples,
                                 k=k, seed=seed) for m in model]
        values = np.mean([f.to_numpy(np.float64) for f in frames], axis=0)
        return pd.DataFrame(values, index=frames[0].index, columns=frames[0].columns)
    vae, _ = model_parts(model)
    require(n_samples >= 1, f"n_samples must be >= 1, got {n_samples}")
    if (reference is None and state.get(vae.state, TrainingLatents) is None
            and state.get(vae.state, TrainingPatches) is not None):
        ref = None  # an image model keeps only the Gaussian of its training latents
    else:
        ref = reference_latents(model, reference, labels=labels, layer=layer, seed=seed)
    scales = state.get(vae.state, ScoreScales)
    with _input(model, data, labels, layer, "the data to score") as (x, cond, names):
        terms = vae.elbo(x, cond, n_samples=n_samples, seed=seed,  # one pass; also gives the posterior
                         scale=None if scales is None else scales.feature_sd)
    mean, logvar = terms["mean"], terms["logvar"]
    knn = knn_distance(mean, ref, k) if ref is not None else np.full(len(mean), np.nan)
    std_resid = terms["scaled_mse"] if scales is not None else np.full(len(mean), np.nan)
    knn_resid = np.full(len(mean), np.nan)
    if scales is not None:
        knn_resid = 0.5 * ((knn - scales.centers[0]) / scales.spreads[0]
                           + (std_resid - scales.centers[1]) / scales.spreads[1])
    frame = pd.DataFrame({
        "neg_elbo": -terms["elbo"], "recon_nll": terms["recon"], "recon_mse": terms["mse"], "kl": terms["kl"],
        "encoder_var": np.exp(logvar.astype(np.float64)).mean(1),
        "mahalanobis": mahalanobis(mean, ref) if ref is not None else state.get(vae.state, TrainingPatches).mahalanobis(mean),
        "latent_knn": knn, "std_resid": std_resid, "knn_resid": knn_resid,
    }, index=pd.Index(names, name="sample"))
    return frame[list(SCORES)]
