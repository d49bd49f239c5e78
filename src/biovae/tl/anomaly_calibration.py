"""Calibrated anomaly calls: per-cell p-values of a score from held-out normal cells.

    detector = fit_detector(train_cells)              # 3 folds: each model calibrated on the cells it never saw
    calls = detector.score(new_cells)                 # scores + p_value + novel (p < alpha)
    detector = fit_detector(train_cells, folds=None)  # the round-3 form: fit 80 %, calibrate on 20 %

A score is only a ranking; a p-value says how unusual a cell is against cells of the training
distribution that the model never fitted. With calibration scores s_1..s_m of such cells, the
conformal p-value of a new cell's score s is (1 + #{s_i >= s}) / (m + 1): for a normal cell
(exchangeable with the calibration cells) P(p <= a) <= a; the smoothed form (a seeded uniform
draw breaks the ranks' ties) makes it exact, so flagging p < 0.05 flags 5 % of normal cells
whatever the score's scale (benchmarks/anomaly_groups.py measures the share).

With a held-out 20 % the p-values are exact on average but the share below 0.05 swings with
the few calibration cells (one of 20 moves it by 0.05; lung, split 0: 0.082). Cross-fitted
calibration (folds, the default) lets every training cell calibrate: the cells are split into
K folds, model k is fitted without fold k and scores it, and a new cell's p-value counts, fold
by fold, the calibration scores at or above the new cell's score under the same model
(cross-conformal, Vovk 2015): (1 + sum_k #{s_k(x_i) >= s_k(x)}, i in fold k) / (n + 1). It
costs K fits, as many as the ensemble of fit_anomaly_models (3), and ranks by the score
averaged over the K models. It is not exact in theory (it may exceed alpha, at worst 2 alpha),
which benchmarks/anomaly_groups.py measures (docs/exploration.md, round 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from biovae.errors import require

DEFAULT_SCORE = "knn_resid"  # chosen on the development sets, docs/exploration.md (round 3)
CALIBRATION_FRACTION = 0.2
CALIBRATION_FOLDS = 3


def conformal_pvalues(scores, calibration, seed: int | None = None) -> np.ndarray:
    """(1 + #{calibration >= s}) / (m + 1) for each score s (higher score = more unusual).

    With a seed, the smoothed form (#{calibration > s} + U (1 + #{calibration == s})) / (m + 1),
    U uniform on (0, 1): for a normal cell P(p < a) = a exactly instead of at most a (the plain
    form can only take the values k / (m + 1), so with m = 30 calibration cells "p < 0.05" means
    "above all of them", 1 normal cell in 31)."""
    cal = np.sort(np.asarray(calibration, dtype=np.float64).ravel())
    require(cal.size >= 1, "calibration needs scores of at least one held-out normal cell")
    s = np.asarray(scores, dtype=np.float64).ravel()
    at_or_above = cal.size - np.searchsorted(cal, s, side="left")
    if seed is None:
        return (1.0 + at_or_above) / (cal.size + 1.0)
    above = cal.size - np.searchsorted(cal, s, side="right")
    u = np.random.default_rng(seed).uniform(size=s.size)
    return (above + u * (1.0 + at_or_above - above)) / (cal.size + 1.0)


def cross_conformal_pvalues(scores, calibration, seed: int | None = None) -> np.ndarray:
    """Cross-conformal p-values: scores[k] (n,) are the new cells' scores under model k and
    calibration[k] the scores of the cells model k never fitted (its fold), under model k.
    (1 + sum_k #{calibration[k] >= scores[k]}) / (m + 1), m = all calibration cells; with a
    seed, smoothed as conformal_pvalues (ties broken by a seeded uniform draw)."""
    require(len(scores) == len(calibration) >= 1, "cross-conformal p-values need one calibration set per model")
    m = sum(np.asarray(c).size for c in calibration)
    require(m >= 1, "calibration needs scores of at least one held-out normal cell")
    above = at_or_above = 0
    for s, c in zip(scores, calibration):
        c = np.sort(np.asarray(c, dtype=np.float64).ravel())
        s = np.asarray(s, dtype=np.float64).ravel()
        above = above + c.size - np.searchsorted(c, s, side="right")
        at_or_above = at_or_above + c.size - np.searchsorted(c, s, side="left")
    if seed is None:
        return (1.0 + at_or_above) / (m + 1.0)
    u = np.random.default_rng(seed).uniform(size=np.size(above))
    return (above + u * (1.0 + at_or_above - above)) / (m + 1.0)


COMBINATIONS = {"knn_recon": ("latent_knn", "recon_mse"), "knn_elbo": ("latent_knn", "neg_elbo"),
                "knn_kl": ("latent_knn", "kl")}


def robust_z(values, calibration) -> np.ndarray:
    """(values - median) / (interquartile range / 1.349) of the calibration scores: a score on
    the scale of its spread over normal held-out cells (sd units for a Gaussian)."""
    cal = np.asarray(calibration, dtype=np.float64)
    q1, med, q3 = np.percentile(cal, [25, 50, 75])
    return (np.asarray(values, dtype=np.float64) - med) / max((q3 - q1) / 1.349, 1e-12)


def combined_scores(frame: pd.DataFrame, calibration: pd.DataFrame) -> pd.DataFrame:
    """Each COMBINATIONS entry: the mean of its scores' robust_z against the calibration cells."""
    return pd.DataFrame({name: np.mean([robust_z(frame[c], calibration[c]) for c in parts], axis=0)
                         for name, parts in COMBINATIONS.items()}, index=frame.index)


@dataclass
class Detector:
    """Anomaly models plus the default score's values on held-out normal cells."""

    models: list
    calibration: np.ndarray
    score_name: str = DEFAULT_SCORE
    alpha: float = 0.05
    info: dict = field(default_factory=dict)

    def score(self, cells, *, seed: int = 0) -> pd.DataFrame:
        """biovae.tl.anomaly_scores of `cells` plus 'p_value' (of score_name against the
        calibration cells, smoothed with `seed`; see conformal_pvalues) and 'novel' (p_value < alpha)."""
        from biovae.tl.anomaly import anomaly_scores

        frame = anomaly_scores(self.models, cells, seed=seed)
        frame["p_value"] = conformal_pvalues(frame[self.score_name].to_numpy(), self.calibration, seed=seed)
        frame["novel"] = frame["p_value"] < self.alpha
        return frame


@dataclass
class CrossDetector:
    """One anomaly model per fold of the normal cells, each fitted without its fold; the
    default score of every fold's cells under its own model (see the module notes)."""

    models: list
    calibration: list
    score_name: str = DEFAULT_SCORE
    alpha: float = 0.05
    info: dict = field(default_factory=dict)

    def score(self, cells, *, seed: int = 0) -> pd.DataFrame:
        """biovae.tl.anomaly_scores of `cells` averaged over the fold models, plus 'p_value'
        (cross-conformal, smoothed with `seed`) and 'novel' (p_value < alpha)."""
        from biovae.tl.anomaly import anomaly_scores

        frames = [anomaly_scores(m, cells, seed=seed) for m in self.models]
        frame = pd.DataFrame(np.mean([f.to_numpy(np.float64) for f in frames], axis=0), index=frames[0].index,
                             columns=frames[0].columns)
        own = [f[self.score_name].to_numpy() for f in frames]
        frame["p_value"] = cross_conformal_pvalues(own, self.calibration, seed=seed)
        frame["novel"] = frame["p_value"] < self.alpha
        return frame


def fit_detector(data, *, folds: int | None = CALIBRATION_FOLDS, calibration_fraction: float = CALIBRATION_FRACTION,
                 score: str = DEFAULT_SCORE, alpha: float = 0.05, seed: int = 0, **settings):
    """Anomaly models and calibration from AnnData `data` (normal cells), settings going to
    biovae.tl.fit_anomaly_models. folds=K (default 3): a CrossDetector, one model per fold
    fitted on the other folds (seeds seed, seed+1, ...), every cell calibrating. folds=None: a
    Detector, the models fitted on a seeded 1 - calibration_fraction of the cells and the rest
    scored to calibrate."""
    from biovae.tl.anomaly import SCORES, anomaly_scores
    from biovae.tl.anomaly_model import fit_anomaly_models

    require(score in SCORES, f"unknown anomaly score {score!r}", f"choose one of {', '.join(SCORES)}")
    order = np.random.default_rng(seed).permutation(data.n_obs)
    if folds is not None:
        require(isinstance(folds, (int, np.integer)) and folds >= 2, f"folds must be a whole number >= 2, got {folds!r}",
                "use 3 (the default), or folds=None for one held-out calibration part")
        require(data.n_obs >= 20 * int(folds), f"{data.n_obs} cells are too few for {folds} folds",
                f"give at least {20 * int(folds)} normal cells, or fewer folds")
        require("n_models" not in settings, "with folds, each fold fits one model: n_models does not apply",
                "leave n_models out, or use folds=None")
        parts = np.array_split(order, int(folds))
        models, calibration = [], []
        for k, part in enumerate(parts):
            rest = np.sort(np.concatenate([q for j, q in enumerate(parts) if j != k]))
            model = fit_anomaly_models(data[rest].copy(), n_models=1, seed=seed + k, **settings)[0]
            models.append(model)
            calibration.append(anomaly_scores(model, data[np.sort(part)], seed=seed)[score].to_numpy())
        return CrossDetector(models, calibration, score, alpha,
                             {"folds": int(folds), "fit_cells": int(data.n_obs - len(parts[0])),
                              "calibration_cells": int(data.n_obs)})
    require(0 < calibration_fraction < 1, f"calibration_fraction must lie in (0, 1), got {calibration_fraction}")
    n_cal = int(round(calibration_fraction * data.n_obs))
    require(n_cal >= 19 and data.n_obs - n_cal >= 20,
            f"{data.n_obs} cells are too few to fit and calibrate (a p-value below 0.05 needs 19 calibration cells)",
            "give more normal cells or a larger calibration_fraction")
    cal, fit = np.sort(order[:n_cal]), np.sort(order[n_cal:])
    models = fit_anomaly_models(data[fit].copy(), seed=seed, **settings)
    calibration = anomaly_scores(models, data[cal], seed=seed)[score].to_numpy()
    return Detector(models, calibration, score, alpha, {"fit_cells": int(fit.size), "calibration_cells": int(n_cal)})
