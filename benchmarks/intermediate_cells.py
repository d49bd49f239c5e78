"""Cells of a held-out time point from its neighbours: biovae.tl.intermediate_cells against
cell-level and mean-level baselines, on three public time courses (benchmarks/explore_data.py).

  lung  (development: settings chosen here)  hold out E16.5, between E14.5 and E18.5 (f = 0.5)
  hsmm  (confirmation)                       hold out 48 h, between 24 h and 72 h (f = 0.5)
  guo   (confirmation)                       hold out the 16-cell stage, between 8 and 32 (f = 0.5)
  flu_time (round 4 confirmation)            hold out the 45-60 h window, between 21-36 and 69-84 h (f = 0.5)

For each seed one VAE (biovae.tl.times.DEFAULT_SETTINGS) is fitted on the other time points
over `--genes` genes of highest variance across the training cells (all genes when fewer). Rows:
  intermediate_cells  biovae.tl.intermediate_cells, method "shift" (OT-paired real cells moved to the
                      pair's latent mix by the decoded change)
  intermediate_sampled  the same, method "sample" (mixed posterior draws decoded by sampling)
  intermediate_nearest  the same, method "nearest" (round 4): the real neighbour cells nearest the mixed
                      latent points, distinct while possible; copies of real cells, nothing generated
  pooled_neighbours   the real cells of both neighbouring time points, together
  linear_mixes        (1 - f) x_B + f x_A for random pairs of real neighbour cells (evaluation space)
  ot_mixes            the same for pairs drawn from the exact optimal-transport plan between the two
                      neighbours' cells in the evaluation space (no model)
  latent_midpoint     cells sampled from the likelihood at the decoded latent-centroid midpoint
                      (its mean-profile r / RMSE are those of the decoded mean, as predict_intermediate)
  linear_mean         (1 - f) mean_B + f mean_A: a profile, no cells (no RF-AUC)
Columns: RF-AUC (random forest, real held-out cells vs the row's cells, 5 folds; 0.5 = alike),
mean-profile Pearson r and RMSE against the real held-out mean. Evaluation space: log1p of the
values (FPKM) or the values themselves (guo's qPCR), over the model's genes.

    OMP_NUM_THREADS=1 python benchmarks/intermediate_cells.py [--data lung hsmm guo] [--seeds 0 1 2]
Writes benchmarks/out/intermediate_cells.json and prints one table per data set (means over seeds).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from biovae.evaluate.generation import classifier_auc, pearson
from biovae.io.atomic import write_json
from biovae.tl.intermediate import cells_between, time_setup, transport_pairs
from biovae.tl.interpolate import interpolate
from biovae.tl.times import fit_models, log_mode, to_log

import explore_data

ROOT = Path(__file__).resolve().parents[1]
ROWS = ("intermediate_cells", "intermediate_sampled", "intermediate_nearest", "pooled_neighbours", "linear_mixes", "ot_mixes", "latent_midpoint",
        "linear_mean")


def setup(name: str, n_genes: int, seed: int, settings: dict | None = None, hold: str | None = None):
    """(key, labels, before, after, f, mode, kept genes, training cells, fitted model, evaluation-space
    values of all cells) for holding out `hold` of data set `name`."""
    key = explore_data.DATASETS[name][0]
    data = explore_data.load(name)
    hold = hold or explore_data.HOLD_OUT[name]
    labels, _, before, after, f = time_setup(data, key, hold)
    x = np.asarray(data.X, dtype=np.float64)
    train = labels != hold
    mode = log_mode(x[train])
    keep = np.sort(np.argsort(-to_log(x[train], mode).var(0), kind="stable")[: min(n_genes, data.n_vars)])
    work = data[train][:, keep].copy()
    if name in explore_data.NO_ZEROS:  # qPCR / microarray values with no zeros: a hurdle has nothing to do
        settings = {**(settings or {}), "likelihood": "normal"}
    model = fit_models(work, settings, 1, seed)[0]
    return key, labels, before, after, f, mode, keep, work, model, to_log(x[:, keep], mode)


def one_run(name: str, n_genes: int, seed: int, settings: dict | None = None, hold: str | None = None) -> dict:
    hold = hold or explore_data.HOLD_OUT[name]
    key, labels, before, after, f, mode, keep, work, model, logs = setup(name, n_genes, seed, settings, hold)
    real = logs[labels == hold]
    xb, xa = logs[labels == before], logs[labels == after]
    rng = np.random.default_rng(seed)
    n = len(real)
    mixes = (1 - f) * xb[rng.integers(len(xb), size=n)] + f * xa[rng.integers(len(xa), size=n)]
    ib, ia = transport_pairs(xb, xa, n, rng)  # pairs of the exact OT plan in the evaluation space
    ot_mixes = (1 - f) * xb[ib] + f * xa[ia]
    ours = to_log(cells_between(model, work, key, before, after, f, hold, n, seed).X, mode)
    mid = interpolate(model, before, after, data=work, label_key=key, positions=[f])
    mid_cells = model.vae.decode_sample(np.repeat(mid.obsm["X_biovae"], n, axis=0), seed=seed)
    mid_cells = to_log(model.pre.inverse(mid_cells), mode)
    sampled = to_log(cells_between(model, work, key, before, after, f, hold, n, seed, method="sample").X, mode)
    nearest = to_log(cells_between(model, work, key, before, after, f, hold, n, seed, method="nearest").X, mode)
    profiles = {"intermediate_cells": ours, "intermediate_sampled": sampled, "intermediate_nearest": nearest,
                "pooled_neighbours": np.vstack([xb, xa]), "linear_mixes": mixes,
                "ot_mixes": ot_mixes,
                "latent_midpoint": mid_cells, "linear_mean": None}
    means = {k: (v.mean(0) if v is not None else None) for k, v in profiles.items()}
    means["latent_midpoint"] = to_log(mid.X, mode, normalised=True)[0]
    means["linear_mean"] = (1 - f) * xb.mean(0) + f * xa.mean(0)
    target = real.mean(0)
    table = {}
    for row in ROWS:
        auc = classifier_auc(real, profiles[row], seed=seed)[0] if profiles[row] is not None else float("nan")
        table[row] = {"rf_auc": auc, "pearson_r": pearson(means[row], target),
                      "rmse": float(np.sqrt(np.mean((means[row] - target) ** 2)))}
    return {"table": table, "genes": int(len(keep)), "held_out_cells": int(n), "before": before, "after": after,
            "fraction": float(f)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", default=["lung", "hsmm", "guo"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--genes", type=int, default=500, help="genes of highest training variance")
    ap.add_argument("--hold-out", nargs="*", default=[], metavar="NAME=LABEL",
                    help="other hold-outs than explore_data.HOLD_OUT, e.g. 'lung=Embryonic day 18.5'")
    ap.add_argument("--likelihood", default="hurdle_cell",
                    help="biovae.expr.fit likelihood (chosen on lung, seed 0: hurdle_cell r 0.850, hurdle 0.821, "
                    "normal 0.803); guo's qPCR values (no zeros) use 'normal'")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "intermediate_cells.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    holds = {**explore_data.HOLD_OUT, **dict(h.split("=", 1) for h in args.hold_out)}
    results = {}
    for name in args.data:
        t0 = time.time()
        runs = [one_run(name, args.genes, s, {"likelihood": args.likelihood}, holds[name]) for s in args.seeds]
        cols = ("rf_auc", "pearson_r", "rmse")
        mean = pd.DataFrame({r: np.nanmean([[run["table"][r][c] for c in cols] for run in runs], axis=0)
                             for r in ROWS}, index=list(cols)).T
        check = {"rf_auc_0.05_below_pooled": bool(mean.loc["intermediate_cells", "rf_auc"]
                                                  <= mean.loc["pooled_neighbours", "rf_auc"] - 0.05),
                 "r_at_least_linear_mean": bool(mean.loc["intermediate_cells", "pearson_r"]
                                                >= mean.loc["linear_mean", "pearson_r"])}
        role = explore_data.DATASETS[name][1]
        print(f"\n{name} ({role}; hold out {holds[name]!r}, {runs[0]['genes']} genes, "
              f"{runs[0]['held_out_cells']} held-out cells, seeds {args.seeds}, {time.time() - t0:.0f} s)")
        print(mean.round(3).to_string())
        print(", ".join(f"{k}: {v}" for k, v in check.items()), flush=True)
        results[name] = {"role": role, "mean": mean.to_dict(orient="index"), "check": check,
                         "runs": runs, "seconds": round(time.time() - t0, 1)}
    write_json(args.out, {"seeds": args.seeds, "genes": args.genes, "results": results})
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
