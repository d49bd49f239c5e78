"""Latent-space tools: interpolation and time-course prediction, anomaly scores, disentanglement.

    path = biovae.tl.interpolate(model, "E14.5", "E18.5", data=adata, label_key="Time")
    cells = biovae.tl.intermediate_cells(None, adata, "age", hold_out="Embryonic day 16.5")
    res = biovae.tl.predict_intermediate(None, adata, "age", hold_out="Embryonic day 16.5")
    scores = biovae.tl.anomaly_scores(model, new_cells)
    models = biovae.tl.fit_anomaly_models(train_cells); biovae.tl.anomaly_scores(models, new_cells)
    detector = biovae.tl.fit_detector(train_cells); detector.score(new_cells)   # + p_value, novel
    biovae.tl.mig(latents, factors)["mig"]
"""

from biovae.tl.anomaly import SCORES, anomaly_scores, fit_reference, fit_score_scales
from biovae.tl.anomaly_calibration import DEFAULT_SCORE, Detector, conformal_pvalues, fit_detector
from biovae.tl.anomaly_model import ANOMALY_SETTINGS, fit_anomaly_models
from biovae.tl.disentangle import mig, simulate_factors
from biovae.tl.intermediate import intermediate_cells
from biovae.tl.interpolate import interpolate, load_model
from biovae.tl.timecourse import Intermediate, predict_intermediate
from biovae.tl.times import time_value

__all__ = ["interpolate", "intermediate_cells", "load_model", "predict_intermediate", "Intermediate", "time_value", "anomaly_scores",
           "fit_reference", "fit_score_scales", "SCORES", "DEFAULT_SCORE", "Detector", "conformal_pvalues", "fit_detector", "fit_anomaly_models", "ANOMALY_SETTINGS", "mig", "simulate_factors"]
