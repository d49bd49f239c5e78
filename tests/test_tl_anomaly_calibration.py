"""Conformal p-values of anomaly scores (biovae.tl.anomaly_calibration)."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from biovae.errors import BiovaeError
from biovae.tl.anomaly_calibration import conformal_pvalues, cross_conformal_pvalues, fit_detector


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
    detector = fit_detector(_blobs(300, 0.0, 0), folds=None, genes=None, n_models=1, epochs=30, progress=False, seed=0)
    assert detector.info == {"fit_cells": 240, "calibration_cells": 60}
    normal = detector.score(_blobs(200, 0.0, 1))
    novel = detector.score(_blobs(200, 1.5, 2))
    assert normal["novel"].mean() < 0.15 and novel["novel"].mean() > 0.8
    with pytest.raises(BiovaeError, match="too few"):
        fit_detector(_blobs(50, 0.0, 3), folds=None, genes=None, n_models=1, epochs=2, progress=False)


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


def test_cross_conformal_p_values_pool_the_folds():
    # two folds: the new cell scores 0.5 / 2.5 under models 0 / 1; 2 + 2 calibration scores at or above, of 5
    p = cross_conformal_pvalues([[0.5], [2.5]], [[0.0, 1.0, 2.0], [2.5, 3.0]])
    assert np.allclose(p, [(1 + 2 + 2) / 6])
    rng = np.random.default_rng(0)
    shares = [np.mean(cross_conformal_pvalues([rng.normal(size=500)] * 3, [rng.normal(size=40) for _ in range(3)],
                                              seed=i) < 0.05) for i in range(40)]
    assert abs(np.mean(shares) - 0.05) < 0.01
    with pytest.raises(BiovaeError, match="one calibration set per model"):
        cross_conformal_pvalues([[1.0]], [[0.0], [1.0]])


def test_cross_fitted_detector_calibrates_on_every_cell():
    detector = fit_detector(_blobs(120, 0.0, 0), genes=None, epochs=20, progress=False, seed=0)
    assert detector.info == {"folds": 3, "fit_cells": 80, "calibration_cells": 120}
    assert [len(c) for c in detector.calibration] == [40, 40, 40] and len(detector.models) == 3
    normal, novel = detector.score(_blobs(200, 0.0, 1)), detector.score(_blobs(200, 1.5, 2))
    assert normal["novel"].mean() < 0.15 and novel["novel"].mean() > 0.8
    assert np.array_equal(normal["p_value"], detector.score(_blobs(200, 0.0, 1))["p_value"])
    with pytest.raises(BiovaeError, match="too few for 3 folds"):
        fit_detector(_blobs(50, 0.0, 3), genes=None, epochs=2, progress=False)
    with pytest.raises(BiovaeError, match="n_models does not apply"):
        fit_detector(_blobs(120, 0.0, 3), genes=None, n_models=2, epochs=2, progress=False)
