"""Calibrated anomaly calls: per-cell p-values of a score from held-out normal cells.

    detector = fit_detector(train_cells)              # fits on 2/3, calibrates on the other 1/3
    calls = detector.score(new_cells)                 # scores + p_value + novel (p < alpha)

A score is only a ranking; a p-value says how unusual a cell is against cells of the training
distribution that the model never fitted. With calibration scores s_1..s_m of such cells, the
conformal p-value of a new cell's score s is (1 + #{s_i >= s}) / (m + 1): for a normal cell
(exchangeable with the calibration cells) P(p <= a) <= a; the smoothed form (a seeded uniform
draw breaks the ranks' ties) makes it exact, so flagging p < 0.05 flags 5 % of normal cells
whatever the score's scale (benchmarks/anomaly_groups.py measures the share).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from biovae.errors import require

DEFAULT_SCORE = "knn_resid"  # chosen on the development sets, docs/exploration.md (round 3)
# round 4, chosen on development sets (lung, hsmm, all_b; split seeds 0 and 1, benchmarks/anomaly_groups.py):
# share of normal test cells with smoothed p < 0.05 at 1/3: 0.047 / 0.053 / 0.053, at 0.2: 0.075 / 0.057 /
# 0.027 (the share swings with the few calibration cells); mean AUROC 0.920 / 0.752 / 0.649 vs 0.920 / 0.748 / 0.652
CALIBRATION_FRACTION = 1 / 3


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


def fit_detector(data, *, calibration_fraction: float = CALIBRATION_FRACTION, score: str = DEFAULT_SCORE,
                 alpha: float = 0.05, seed: int = 0, **settings) -> Detector:
    """Split AnnData `data` (normal cells) into fit and calibration cells (seeded; a third calibrates), fit
    biovae.tl.fit_anomaly_models on the first (settings go there), score the second."""
    from biovae.tl.anomaly import SCORES, anomaly_scores
    from biovae.tl.anomaly_model import fit_anomaly_models

    require(score in SCORES, f"unknown anomaly score {score!r}", f"choose one of {', '.join(SCORES)}")
    require(0 < calibration_fraction < 1, f"calibration_fraction must lie in (0, 1), got {calibration_fraction}")
    n_cal = int(round(calibration_fraction * data.n_obs))
    require(n_cal >= 19 and data.n_obs - n_cal >= 20,
            f"{data.n_obs} cells are too few to fit and calibrate (a p-value below 0.05 needs 19 calibration cells)",
            "give more normal cells or a larger calibration_fraction")
    order = np.random.default_rng(seed).permutation(data.n_obs)
    cal, fit = np.sort(order[:n_cal]), np.sort(order[n_cal:])
    models = fit_anomaly_models(data[fit].copy(), seed=seed, **settings)
    calibration = anomaly_scores(models, data[cal], seed=seed)[score].to_numpy()
    return Detector(models, calibration, score, alpha, {"fit_cells": int(fit.size), "calibration_cells": int(n_cal)})
