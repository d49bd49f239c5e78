"""Conformal p-values of anomaly scores (biovae.tl.anomaly_calibration)."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from biovae.errors import BiovaeError
from biovae.tl.anomaly_calibration import conformal_pvalues, fit_detector


def test_p_values_count_calibration_scores_at_or_above():
    cal = np.array([1.0, 2.0, 3.0, 4.0])
    assert np.allclose(conformal_pvalues([0.5, 2.0, 2.5, 9.0], cal), [5 / 5, 4 / 5, 3 / 5, 1 / 5])
    with pytest.raises(BiovaeError, match="at least one"):
        conformal_pvalues([1.0], [])


def test_p_values_of_exchangeable_scores_are_uniform():
    rng = np.random.default_rng(0)
    shares = [np.mean(conformal_pvalues(rng.normal(size=2000), rng.normal(size=200)) < 0.05) for _ in range(20)]
    assert abs(np.mean(shares) - 0.05) < 0.01


def _blobs(n, shift, seed):
    rng = np.random.default_rng(seed)
    x = np.expm1(np.maximum(rng.normal(1.5 + shift, 0.4, (n, 20)), 0)).astype(np.float32)
    return ad.AnnData(x, var=pd.DataFrame(index=[f"g{j}" for j in range(20)]),
                      obs=pd.DataFrame(index=[f"{seed}_{i}" for i in range(n)]))


def test_detector_flags_a_shifted_population_and_few_normal_cells():
    detector = fit_detector(_blobs(300, 0.0, 0), genes=None, n_models=1, epochs=30, progress=False, seed=0)
    assert detector.info == {"fit_cells": 200, "calibration_cells": 100}
    normal = detector.score(_blobs(200, 0.0, 1))
    novel = detector.score(_blobs(200, 1.5, 2))
    assert normal["novel"].mean() < 0.15 and novel["novel"].mean() > 0.8
    with pytest.raises(BiovaeError, match="too few"):
        fit_detector(_blobs(50, 0.0, 3), genes=None, n_models=1, epochs=2, progress=False)


def test_smoothed_p_values_are_exact_with_few_calibration_cells():
    rng = np.random.default_rng(1)
    plain, smooth = [], []
    for i in range(200):
        cal, new = rng.normal(size=30), rng.normal(size=200)
        plain.append(np.mean(conformal_pvalues(new, cal) < 0.05))
        smooth.append(np.mean(conformal_pvalues(new, cal, seed=i) < 0.05))
    assert abs(np.mean(plain) - 1 / 31) < 0.005 and abs(np.mean(smooth) - 0.05) < 0.005
    same = conformal_pvalues([0.1, 5.0], [0.0, 1.0], seed=3)
    assert np.array_equal(same, conformal_pvalues([0.1, 5.0], [0.0, 1.0], seed=3)) and same[1] < 1 / 3
