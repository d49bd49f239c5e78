"""Predict an unobserved time point from its neighbours through a VAE's latent space.

    res = predict_intermediate(None, adata, "age", hold_out="Embryonic day 16.5")
    res.metrics        # Pearson r and RMSE of each prediction against the real held-out mean

The held-out cells are removed before anything is fitted. The VAE is fitted on the other time
points; the latent centroids of the two neighbouring time points are interpolated at the held-out
time's fraction between them, f = (t - t_before) / (t_after - t_before), and that point is
decoded ("vae"). "cells" is the mean of the cells biovae.tl.intermediate_cells generates (pairs
of neighbour cells matched by optimal transport, mixed at f, decoded by sampling). Two baselines
are computed in the same run: the linear interpolation of the neighbours'
mean profiles at f, and each neighbour's own mean profile ("nearest": the nearer one; at f = 0.5
both are equally near and both are reported).

Evaluation space: log1p of the input values (library-normalised first for integer counts), over
the `n_genes` genes with the highest variance across the training (not held-out) cells.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anndata as ad
import numpy as np
import pandas as pd

from biovae.errors import require
from biovae.evaluate.generation import pearson
from biovae.io.expression import as_matrix, get_labels
from biovae.tl.intermediate import cells_between
from biovae.tl.interpolate import interpolate, model_parts
from biovae.tl.times import fit_models, log_mode, neighbours, time_value, to_log

PREDICTIONS = ("vae", "cells", "linear", "before", "after")


@dataclass
class Intermediate:
    """Result of predict_intermediate.

    profiles: AnnData (rows: 'observed', 'vae', 'cells', 'linear', 'before', 'after'; columns: the
      evaluated genes), mean profiles in the evaluation space. metrics: DataFrame indexed like
      the predictions with pearson_r, rmse, and 'nearer' (True for the nearer neighbour(s)).
    """

    hold_out: str
    before: str
    after: str
    fraction: float
    times: dict[str, float]
    space: str
    profiles: ad.AnnData
    metrics: pd.DataFrame
    models: list = field(default_factory=list, repr=False)

    def beats_baselines(self) -> dict[str, bool]:
        """Whether the VAE has a higher r and a lower RMSE than each baseline."""
        m, out = self.metrics, {}
        for row in ("linear", "before", "after"):
            if row == "linear" or m.loc[row, "nearer"]:
                out[row] = bool(m.loc["vae", "pearson_r"] > m.loc[row, "pearson_r"]
                                and m.loc["vae", "rmse"] < m.loc[row, "rmse"])
        return out

    def summary(self) -> dict:
        """JSON-able: the set-up, the metrics table and beats_baselines()."""
        return {"hold_out": self.hold_out, "before": self.before, "after": self.after,
                "fraction": self.fraction, "times": self.times, "space": self.space,
                "genes": int(self.profiles.n_vars),
                "metrics": self.metrics.reset_index(names="prediction").to_dict(orient="records"),
                "vae_beats": self.beats_baselines()}


def predict_intermediate(model_or_settings, data: ad.AnnData, time_key: str, hold_out, *,
                         times: dict | None = None, layer: str | None = None, n_genes: int = 200,
                         n_models: int = 1, seed: int = 0) -> Intermediate:
    """Predict the mean profile of the held-out time point and score it against the real one.

    model_or_settings: None or a dict of biovae.expr.fit options (merged over biovae.tl.times.DEFAULT_SETTINGS)
      to fit new models on the other time points; or a fitted ExpressionModel that never saw
      the held-out cells (it is then used as is, on its own genes).
    data: AnnData cells x genes, non-negative (e.g. FPKM or counts), with obs[time_key].
    hold_out: the time-point label to predict; times: label -> days for labels without a number.
    n_genes: genes evaluated (highest variance over the training cells; all when fewer).
    n_models: models fitted with seeds seed, seed+1, ...; their decoded profiles are averaged.
    """
    require(isinstance(data, ad.AnnData), "time-course prediction needs AnnData with a time column")
    labels = get_labels(data, time_key)
    present = sorted(set(labels))
    hold_out = str(hold_out)
    require(hold_out in present, f"unknown time point {hold_out!r} in column {time_key!r}",
            f"use one of: {', '.join(present)}")
    values = {k: time_value(k, times) for k in present}
    before, after, f = neighbours(values, hold_out)

    x, genes, _ = as_matrix(data, layer)
    dense = x.toarray() if hasattr(x, "toarray") else x
    train = labels != hold_out
    fitted = not (model_or_settings is None or isinstance(model_or_settings, dict))
    if fitted:
        _, expr = model_parts(model_or_settings)
        require(expr is not None, "time-course prediction needs an expression model")
        require(not (expr.conditional and hold_out in (expr.labels or [])),
                f"the model was fitted with cells of the held-out time point {hold_out!r}",
                "fit it without them, or pass settings and let predict_intermediate fit")
        keep = pd.Index(genes).get_indexer(expr.genes)
        require(bool(np.all(keep >= 0)), "the data lacks some of the model's genes")
        mode = expr.pre.transform
    else:
        mode = log_mode(dense[train], (model_or_settings or {}).get("transform", "auto"))
        variance = to_log(dense[train], mode).var(0)
        keep = np.sort(np.argsort(-variance, kind="stable")[: min(n_genes, len(genes))])
    logs = to_log(dense[:, keep], mode)
    observed = logs[labels == hold_out].mean(0)
    mean_before, mean_after = logs[labels == before].mean(0), logs[labels == after].mean(0)

    work = ad.AnnData(X=dense[train][:, keep],
                      obs=pd.DataFrame({time_key: labels[train]}, index=np.asarray(data.obs_names)[train].astype(str)),
                      var=pd.DataFrame(index=[str(g) for g in genes[keep]]))
    models = [model_or_settings] if fitted else fit_models(work, model_or_settings, n_models, seed)
    # decoded values come back on the input scale, per 1e4 counts for library-normalised models
    decoded = [to_log(interpolate(m, before, after, data=work, label_key=time_key, positions=[f]).X, mode,
                      normalised=True)[0] for m in models]
    vae_profile = np.mean(decoded, axis=0)
    n_cells = int(np.sum(labels == hold_out))
    generated = [to_log(cells_between(m, work, time_key, before, after, f, hold_out, n_cells, seed + i).X, mode)
                 for i, m in enumerate(models)]
    cells_profile = np.mean([g.mean(0) for g in generated], axis=0)

    rows = {"observed": observed, "vae": vae_profile, "cells": cells_profile,
            "linear": (1 - f) * mean_before + f * mean_after, "before": mean_before, "after": mean_after}
    profiles = ad.AnnData(X=np.vstack(list(rows.values())).astype(np.float32), obs=pd.DataFrame(index=list(rows)),
                          var=pd.DataFrame(index=[str(g) for g in genes[keep]]))
    nearer = {"before": f <= 0.5, "after": f >= 0.5}
    metrics = pd.DataFrame(
        {"pearson_r": [pearson(rows[k], observed) for k in PREDICTIONS],
         "rmse": [float(np.sqrt(np.mean((rows[k] - observed) ** 2))) for k in PREDICTIONS],
         "nearer": [None, None, None, nearer["before"], nearer["after"]]},
        index=pd.Index(list(PREDICTIONS), name="prediction"))
    scale = {"normalize_log1p": "log1p(counts per 1e4)", "log1p": "log1p(input values)"}.get(mode, "input values")
    space = (f"{scale} over {len(keep)} genes"
             + ("" if fitted else " (highest variance over the training time points)"))
    return Intermediate(hold_out, before, after, float(f), values, space, profiles, metrics, models)
